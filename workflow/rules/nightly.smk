# The nightly target: the whole pipeline, then tonight compared with earlier nights and
# appended to the history store (`make nightly`, i.e. `leaklab nightly`).


rule nightly_history:
    """Compare tonight with the previous night, draw the trend, then append the night to
    the history store, last and in one transaction (a run set is recorded once)."""
    input:
        growth="results/tables/growth.csv",
        runs="results/tables/runs.csv",
        controls="results/tables/controls.csv",
        meta=run_outputs("meta.json"),
        night=all_outputs(),
        store=history_store(),
    output:
        regressions="results/tables/regressions.csv",
        trend="results/figures/nightly_trend.png",
        night="results/nightly/night.json",
    params:
        history=history_path(),
        analysis=analysis_settings(),
        config_sha256=config_sha256(),
    log:
        "results/logs/nightly_history.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/nightly_history.py"


rule nightly:
    input:
        "results/nightly/night.json",
