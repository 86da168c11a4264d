rule summary:
    """results/summary.md: controls first, failed runs, verdicts, layers."""
    input:
        runs="results/tables/runs.csv",
        growth="results/tables/growth.csv",
        controls="results/tables/controls.csv",
        attribution="results/tables/attribution.csv",
        variant_verdicts="results/tables/variant_verdicts.csv",
        sensitivity="results/tables/sensitivity.csv",
    output:
        summary="results/summary.md",
    params:
        specs=command_specs(),
    log:
        "results/logs/summary.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/summary.py"
