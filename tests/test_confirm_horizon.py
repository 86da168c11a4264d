"""`confirm: {leak: horizon}`, for real: a leak is held at every look up to the horizon,
so a climb that levels off long after the window (DuckDB 1.2.2's heap in the version
sweep, after ~14,000 dropped tables in a 3,000-drop window) is seen to level off, while
`leak: true` confirms it as a leak at the first look past the window."""

import sys

import pytest
import yaml

from leaklab import experiments
from leaklab.measure import config as leaklab_config
from leaklab.measure import runner, stopping
from leaklab.measure.run_spec import RunSpec
from leaklab.measure.validation import ConfigError, check_before_schema
from leaklab.process import marks_file

WINDOW, HORIZON = 30, 6
# looks from the window on (horizon.confirm_looks with a warm-up of 2): 30, 44, 65, 97, 145, 180

# A cache that grows 1 MiB per unit up to unit 50, then stays full (tests/data/fills_cache.py):
# straight over the window and the first look past it, then flat.
FILLS_LATE = "50 0.05"  # full at unit 50, a unit every 50 ms


def fills_config(root, leak):
    script = root / "tests" / "data" / "fills_cache.py"
    return {"verdict": {"metrics": {}}, "replicates": 1, "experiments": {"fills": {
        "command": f"{sys.executable} {script} {{units}} {FILLS_LATE}", "variants": ["cache"], "params": {"units": WINDOW},
        "length_param": "units", "key_metrics": ["cache_bytes"], "warmup_units": 2,
        "verdict": {"cache_bytes": {"leak_per_unit": 2**20 / 4, "retained": 2**30}},
        "confirm": {"horizon": HORIZON, "leak": leak}}}}


def looks_of(configs, out):
    """The program run once to its horizon, then the Watcher's looks from the window's end
    on, each judged on the units up to it (what a watched run sees at that look), once per
    config (they differ only in how a leak is confirmed, not in what runs): for each, the
    decision of the first look that decides, and the look."""
    import pandas as pd

    params = leaklab_config.run_params(configs[0], "fills", "plain", "cache")
    assert all(leaklab_config.run_params(c, "fills", "plain", "cache") == params for c in configs)  # one run serves all
    spec = experiments.specs(configs[0])["fills"]
    meta = runner.run(RunSpec(spec, "cache", out, params, interval_s=0.05, timeout_s=120))
    samples = pd.read_parquet(out / "samples.parquet").to_dict("records")
    decisions = []
    for config in configs:
        plan = stopping.Plan.from_params(leaklab_config.stop_plan(config, "fills", "plain", "cache"))
        assert meta["status"] == "ok" and meta["n_units"] == plan.max_units
        watcher = stopping.Watcher(plan, out / "marks.jsonl", marks_file.mark_record)
        watcher._read_new()  # the marks, all there at once
        decisions.append(None)
        for look in plan.confirm_looks:
            watcher._confirm(look, samples)
            if watcher.decided:
                decisions[-1] = watcher.decided
                break
    return decisions


def test_a_late_plateau_is_a_leak_at_the_first_look_and_settling_when_held_to_the_horizon(root, tmp_path):
    first, held = looks_of([fills_config(root, True), fills_config(root, "horizon")], tmp_path)
    assert first["verdict"] == "leak" and first["reason"] == "confirmed" and WINDOW < first["look"] < 50
    assert held["verdict"] == "settling" and held["look"] > 50  # decided only once the plateau was in sight


def test_a_leak_held_to_the_horizon_runs_to_it(root, tmp_path):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["experiments"] = {"planted": config["experiments"]["planted"]}
    config["experiments"]["planted"]["params"].update(steps=WINDOW, interval_s=0.02)
    config["experiments"]["planted"]["confirm"] = {"horizon": HORIZON, "leak": "horizon"}
    plan = leaklab_config.stop_plan(config, "planted", "plain", "native_small")
    assert plan["confirm_leak"] == "horizon"
    params = leaklab_config.run_params(config, "planted", "plain", "native_small")
    meta = runner.run(RunSpec(experiments.specs(config)["planted"], "native_small", tmp_path / "native_small", params,
                              interval_s=0.02, timeout_s=120, stopping_plan=plan))
    assert meta["status"] == "ok" and meta["stop_reason"] == "horizon"
    assert meta["n_units"] == WINDOW * HORIZON and meta["decided_verdict"] in (None, "leak")  # never stopped early


def test_which_looks_hold_a_leak(root):
    config = fills_config(root, "horizon")
    plan = stopping.Plan.from_params(leaklab_config.stop_plan(config, "fills", "plain", "cache"))
    assert plan.window == WINDOW and plan.max_units == WINDOW * HORIZON and plan.confirm_looks[-1] == 180
    assert [plan.holds_leak(look) for look in (30, 44, 145, 180)] == [True, True, True, False]
    once = stopping.Plan(plan.settings, 180, 5, window_units=30, confirm_leak=True)
    assert [once.holds_leak(look) for look in (30, 44)] == [True, False]
    never = stopping.Plan(plan.settings, 180, 5, window_units=30)
    assert not never.holds_leak(30)


@pytest.mark.parametrize("leak", ["yes", 3, "Horizon"])
def test_a_bad_confirm_leak_names_the_key_and_the_allowed_values(root, leak):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["version_sweep"]["confirm"]["leak"] = leak
    with pytest.raises(ConfigError, match=r"version_sweep\.confirm\.leak: .*allowed: False, True, horizon"):
        check_before_schema(config, root / "workflow" / "schemas" / "config.schema.yaml")
