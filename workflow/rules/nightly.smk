# The nightly target: the whole pipeline, then tonight appended to the history store and
# compared with the previous night (`make nightly`, i.e. python -m leaklab.nightly).


rule nightly_history:
    """Append tonight's tables to the history store; list regressions; draw the trend."""
    input:
        growth="results/tables/growth.csv",
        runs="results/tables/runs.csv",
        controls="results/tables/controls.csv",
    output:
        regressions=report("results/tables/regressions.csv", caption="../report/regressions.rst", category="Nightly"),
        trend=report("results/figures/nightly_trend.png", caption="../report/regressions.rst", category="Nightly"),
    params:
        history=config.get("history", {}).get("path", "history/leaklab-history.duckdb"),
    log:
        "results/logs/nightly_history.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/nightly_history.py"


rule nightly:
    input:
        all_outputs(),
        "results/tables/regressions.csv",
        "results/figures/nightly_trend.png",
