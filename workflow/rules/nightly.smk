# The nightly target: the whole pipeline, then tonight compared with earlier nights and
# appended to the history store (`make nightly`, i.e. `leaklab nightly`).
import hashlib
import json


def history_path():
    return config.get("history", {}).get("path", "history/leaklab-history.duckdb")


def history_store():
    """The history store once it exists: nightly_history reads earlier nights from it and
    appends tonight (ancient: its own appends do not make the night stale)."""
    return [ancient(history_path())] if os.path.exists(history_path()) else []


def config_sha256():
    """The configuration's hash, recorded with the night: changed settings show next to changed growth."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
        regressions=report("results/tables/regressions.csv", caption="../report/regressions.rst", category="Nightly"),
        trend=report("results/figures/nightly_trend.png", caption="../report/regressions.rst", category="Nightly"),
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
