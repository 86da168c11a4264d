rule summary:
    """Verdict matrix, layer attribution and results/summary.md (controls first)."""
    input:
        runs="results/tables/runs.csv",
        growth="results/tables/growth.csv",
        controls="results/tables/controls.csv",
        attribution="results/tables/attribution.csv",
        variant_verdicts="results/tables/variant_verdicts.csv",
        sensitivity="results/tables/sensitivity.csv",
    output:
        summary=report("results/summary.md", caption="../report/summary.rst", category="Summary"),
        matrix=report("results/figures/verdict_matrix.png", caption="../report/verdict_matrix.rst",
                      category="Summary"),
        attribution=report("results/figures/attribution.png", caption="../report/attribution.rst",
                           category="Summary"),
    log:
        "results/logs/summary.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/summary.py"
