"""Confirmation beyond the window, for real: planted runs configured with a horizon
are stopped at the window's end when nothing depends on what follows, go on when it
does (a growth still slowing, a leak the config asks to confirm), and the tables say
the horizon each verdict covers and where a bounded growth levelled off."""

import sys

import pandas as pd
import pytest
import yaml

from leaklab.measure import config as leaklab_config
from leaklab.measure import config_check
from leaklab.model import horizon
from leaklab.tables import tables
from leaklab.measure.validation import ConfigError, check_before_schema
from leaklab import experiments
from measuring import measure

WINDOW, HORIZON = 30, 3


@pytest.fixture
def planted_config(root):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["experiments"] = {"planted": config["experiments"]["planted"]}
    config["experiments"]["planted"]["params"].update(steps=WINDOW, interval_s=0.05)
    config["experiments"]["planted"]["variants"] = ["zero", "native_small", "settle"]
    config["experiments"]["planted"]["confirm"] = {"horizon": HORIZON}
    return config


def run_planted(config, variant, out):
    plan = leaklab_config.stop_plan(config, "planted", "plain", variant)
    params = leaklab_config.run_params(config, "planted", "plain", variant)
    meta = measure("planted", variant, out / variant / "plain" / "rep1", params, interval_s=0.02,
                   timeout_s=120, stopping_plan=plan)
    return meta, plan, params


def test_the_horizon_reaches_the_run_through_its_params_and_plan(planted_config):
    plan = leaklab_config.stop_plan(planted_config, "planted", "plain", "zero")
    params = leaklab_config.run_params(planted_config, "planted", "plain", "zero")
    assert params["steps"] == WINDOW * HORIZON  # the program may run to the horizon
    assert plan["window_units"] == WINDOW and plan["max_units"] == WINDOW * HORIZON
    assert plan["sequential"] is False  # confirmation works with sequential stopping off
    # profiled runs are never stretched nor watched
    assert leaklab_config.stop_plan(planted_config, "planted", "massif", "zero") == {}
    assert horizon.confirm_looks(WINDOW, WINDOW * HORIZON, 2) == [30, 44, 65, 90]


def test_a_stable_run_stops_at_its_window(planted_config, tmp_path):
    meta, _, _ = run_planted(planted_config, "zero", tmp_path)
    assert meta["status"] == "ok" and meta["stop_reason"] == "window", {k: v for k, v in meta.items() if k.startswith(("decided", "stop"))}
    assert meta["decided_verdict"] == "stable" and meta["decided_at_unit"] == WINDOW
    # stopped there, after the units the program ran while the look was judged: far short of the horizon
    assert WINDOW <= meta["n_units"] < WINDOW * HORIZON


# A program whose cache grows 1 MiB per unit up to unit 34, then stays full (a reading
# scatters by up to 256 KiB), whatever length it is configured for: a bounded growth
# whose plateau lies just past a 30-unit window.
FILLS_PAST_THE_WINDOW = "34 0.03"  # tests/data/fills_cache.py: full at unit 34, a unit every 30 ms


def test_a_growth_that_levels_off_past_the_window_is_confirmed_settling(root, tmp_path):
    """At the window's end the growth is still straight: a leak by the window alone. With
    `leak: true` the run goes on, and once its recent rate is below the bar it is
    stopped, `settling`, with where it levelled off in the tables."""
    script = root / "tests" / "data" / "fills_cache.py"
    config = {"verdict": {"metrics": {}}, "replicates": 1, "experiments": {"fills": {
        "command": f"{sys.executable} {script} {{units}} {FILLS_PAST_THE_WINDOW}", "variants": ["cache"], "params": {"units": WINDOW},
        "length_param": "units", "key_metrics": ["cache_bytes"], "warmup_units": 2,
        "verdict": {"cache_bytes": {"leak_per_unit": 2**20 / 4, "retained": 2**30}}, "confirm": {"horizon": 5, "leak": True}}}}
    plan = leaklab_config.stop_plan(config, "fills", "plain", "cache")
    params = leaklab_config.run_params(config, "fills", "plain", "cache")
    assert params["units"] == WINDOW * 5
    rundir = tmp_path / "fills" / "cache" / "plain" / "rep1"
    meta = measure("fills", "cache", rundir, params, config, interval_s=0.02, timeout_s=120, stopping_plan=plan)
    built = tables.build([rundir], config)
    assert meta["stop_reason"] == "confirmed" and meta["decided_verdict"] == "settling"
    assert WINDOW < meta["decided_at_unit"] < WINDOW * 5
    row = built["growth"].set_index("metric").loc["cache_bytes"]
    # judged on all it observed: bounded (over 150 units the rule may call the early climb
    # `stable`), never a leak, and the table says how far it saw
    assert row["verdict"] in ("settling", "stable") and row["confirmation"] == "confirmed"
    assert row["units_observed"] > WINDOW
    units = built["units"][built["units"]["metric"] == "cache_bytes"]
    knee, level = horizon.levelled_off(units["unit"].to_numpy(), units["value"].to_numpy())
    assert 32 <= knee <= 36 and abs(level - 34 * 2**20) < 2**18
    if row["verdict"] == "settling":
        assert row["levelled_off_unit"] == knee


def test_a_leak_the_config_asks_to_confirm_is_confirmed_past_the_window(planted_config, tmp_path):
    planted_config["experiments"]["planted"]["confirm"]["leak"] = True
    meta, _, _ = run_planted(planted_config, "native_small", tmp_path)
    assert meta["status"] == "ok" and meta["stop_reason"] == "confirmed"
    assert meta["decided_verdict"] == "leak" and WINDOW < meta["decided_at_unit"] < WINDOW * HORIZON
    # unconfirmed, the same leak stops at its window
    planted_config["experiments"]["planted"]["confirm"]["leak"] = False
    meta, _, _ = run_planted(planted_config, "native_small", tmp_path / "plain")
    assert meta["stop_reason"] == "window" and meta["decided_verdict"] == "leak"


def test_the_tables_say_the_horizon_and_the_plateau(planted_config, tmp_path):
    for variant in ("zero", "settle"):
        run_planted(planted_config, variant, tmp_path / "runs" / "planted")
    config = {**planted_config}
    config["experiments"]["planted"]["variants"] = ["zero", "settle"]
    dirs = sorted((tmp_path / "runs").glob("planted/*/plain/rep1"))
    built = tables.build(dirs, config)
    growth = built["growth"].set_index(["variant", "metric"])
    zero = growth.loc[("zero", "rss_bytes")]
    assert zero["confirmation"] == "window" and WINDOW <= zero["units_observed"] < WINDOW * HORIZON
    settle = growth.loc[("settle", "malloc_in_use_bytes")]
    assert settle["units_observed"] > WINDOW
    if settle["verdict"] == "settling":
        # the ceiling is 32 x small_bytes above the start: the plateau is near it
        assert settle["plateau_level"] > 30 * 262144
        assert 2 < settle["levelled_off_unit"] <= settle["units_observed"]
    verdicts = built["variant_verdicts"].set_index("variant")
    assert {"units_observed", "confirmation", "runs_not_ok", "plateau_level"} <= set(verdicts.columns)
    assert (verdicts["runs_not_ok"] == "").all()


@pytest.mark.parametrize("confirm, message", [
    ({"horizon": 0.5}, "horizon"),
    ({"horizon": 2, "leaks": True}, "leaks"),
    ({"leak": True}, "horizon"),
])
def test_a_bad_confirm_block_names_the_key(root, confirm, message):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["experiments"]["planted"]["confirm"] = confirm
    with pytest.raises(ConfigError, match=f"experiments.planted.confirm.*{message}"):
        check_before_schema(config, root / "workflow" / "schemas" / "config.schema.yaml")


def test_confirmation_needs_a_known_length(root):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["experiments"] = {"mine": {"command": "true", "variants": ["a"], "unit": "step",
                                      "params": {"n": 3}, "confirm": {"horizon": 2}}}
    with pytest.raises(ConfigError, match="experiments.mine.confirm.*length_param"):
        config_check.check(config)


def test_levelled_off_finds_the_knee_of_a_climb_then_flat():
    x = pd.Series(range(1, 201), dtype=float)
    y = x.clip(upper=80) * 1000.0
    y[[120, 121, 150]] += 30_000  # readings taken mid-task
    unit, level = horizon.levelled_off(x.to_numpy(), y.to_numpy())
    assert level == pytest.approx(80_000, rel=0.01) and 75 <= unit <= 85


# ---------------------------------------------------------------- one answer per variant

def test_the_deciding_metric_tells_the_size_of_a_python_leak(planted_config, tmp_path):
    """`python_large` keeps 4 MiB of small Python objects per step: their arenas are
    mapped by the interpreter, outside malloc, so glibc's heap sees only the list that
    holds them (~0.38 MiB/step). RSS must name the leak, and the controls check the
    deciding metric's rate against the planted one."""
    entry = planted_config["experiments"]["planted"]
    entry.pop("confirm")
    entry["variants"] = ["python_large", "native_small"]
    entry["params"].update(steps=14)
    for variant in entry["variants"]:
        params = leaklab_config.run_params(planted_config, "planted", "plain", variant)
        measure("planted", variant, tmp_path / "planted" / variant / "plain" / "rep1", params, interval_s=0.02,
                timeout_s=120)
    built = tables.build(sorted(tmp_path.glob("planted/*/plain/rep1")), planted_config)
    growth = built["growth"].set_index(["variant", "metric"])
    heap = growth.loc[("python_large", "malloc_in_use_bytes")]
    assert heap["verdict"] == "leak" and heap["growth_per_unit"] < 0.2 * 4 * 2**20  # only the list's pointers
    named = built["variant_verdicts"].set_index("variant")
    assert named.loc["python_large", "metric"] == "rss_bytes"
    assert abs(named.loc["python_large", "growth_per_unit"] / (4 * 2**20) - 1) < 0.25
    assert named.loc["native_small", "metric"] == "malloc_in_use_bytes"  # the key metric, when it sees it all
    checked = built["controls"].set_index("variant")
    assert checked.loc["python_large", "deciding_metric"] == "rss_bytes"
    assert abs(checked.loc["python_large", "deciding_relative_error"]) < 0.25
    assert checked["passed"].all()


CRASHING = """
import os, sys, time
with open(os.environ["LEAKLAB_UNITS"], "a") as out:
    for unit in range(1, 13):
        time.sleep(0.02)
        out.write(f"{unit}\\n")
        out.flush()
os.abort()  # as cpp_merge's C++ program does at close
"""


def test_a_verdict_from_crashed_runs_says_so_in_the_tables_summary_and_figure(tmp_path):
    from leaklab.report import plots, summary

    script = tmp_path / "prog.py"
    script.write_text(CRASHING)
    config = {"verdict": {"metrics": {}}, "replicates": 1,
              "experiments": {"prog": {"command": f"{sys.executable} {script}", "variants": ["flat"],
                                       "warmup_units": 1}}}
    meta = measure("prog", "flat", tmp_path / "prog" / "flat" / "plain" / "rep1", {}, config, interval_s=0.02,
                   timeout_s=60)
    assert meta["status"] == "crashed"
    built = tables.build([tmp_path / "prog" / "flat" / "plain" / "rep1"], config)
    decided = built["variant_verdicts"].iloc[0]
    assert decided["runs_not_ok"] == "crashed x1"
    specs = experiments.specs(config)
    text = summary.render(built["runs"], built["growth"], built["controls"], built["attribution"],
                          built["variant_verdicts"], specs=specs)
    assert "did not end ok (crashed x1)" in text
    fig = plots.verdict_matrix(built["variant_verdicts"], tmp_path / "matrix.png", specs=specs)
    assert any("crashed x1" in t.get_text() for t in fig.axes[0].texts)


def test_retention_decides_a_look_only_once_a_leak_is_ruled_out():
    """`go_map` `kept`: each run alone read `retention` at its looks while the pooled
    runs read `leak`; a look's retention must rule the leak out (its interval below the bar)."""
    import numpy as np

    from leaklab.model import sequential, verdicts

    x = np.arange(1, 9, dtype=float)
    growing = 300 + 1.0 * x + np.random.default_rng(0).normal(0, 2.0, x.size)  # retained 300, +1/unit, noisy
    flat = 300 + np.random.default_rng(0).normal(0, 0.05, x.size)
    for series, rules_out in ((growing, False), (flat, True)):
        judgement = verdicts.judge([(x, series)], leak_per_unit=1.0, retained_threshold=16.0, releases=True,
                                   retained=float(series[-1]), metric="go_heap_alloc_bytes",
                                   confidence=sequential.look_confidence(3))
        assert judgement.verdict == "retention"
        assert sequential.decisive(judgement, bar=0.5) is rules_out
        assert horizon.pending(judgement, bar=0.5) is not rules_out


def test_a_leak_that_needs_confirmation_reads_inconclusive_until_its_horizon():
    """The rule's leak held for confirmation (a curve saturating over 3 windows is a
    straight line in one) is written ``inconclusive`` while its runs can still go on; at
    the horizon the leak stands, and so it does for runs never watched for confirmation
    (no ``confirm``: their window is their horizon), with the rule's reason that says it
    needs confirmation.  A final leak is a leak."""
    import numpy as np

    from leaklab.model import verdicts

    u = np.arange(1, 31, dtype=float)
    mib = 2**20
    runs = [(u, 100 * mib + 4 * mib * 90 * (1 - np.exp(-u / 90)) + np.random.default_rng(r).normal(0, 0.01 * mib, 30))
            for r in range(2)]
    held = verdicts.judge(runs, leak_per_unit=mib)
    assert held.verdict == "leak" and held.needs_confirmation  # the rule's own answer ...
    rows = pd.DataFrame([{"verdict": "leak", "needs_confirmation": True, "verdict_reason": held.reason,
                          "confirmation": ended} for ended in ("", "window,window", "horizon,confirmed")]
                        + [{"verdict": "leak", "needs_confirmation": False, "verdict_reason": "steady",
                            "confirmation": ""}])
    written = horizon.provisional(rows)  # ... and what the tables say
    assert written["verdict"].to_list() == ["leak", "inconclusive", "leak", "leak"]
    assert written.loc[1, "verdict_reason"].startswith(horizon.NOT_YET)
    assert "needs confirmation" in written.loc[0, "verdict_reason"]
