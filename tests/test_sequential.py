"""Time to verdict: the look schedule, its error control, and the replay of recorded runs."""

import math

import numpy as np
import pandas as pd
import pytest

from leaklab.model import sequential, verdicts
from leaklab.model.settings import ExperimentSettings, Threshold
from measuring import measure

MIB = 2**20
SETTINGS = ExperimentSettings(name="x", unit="step", releases=False, baseline="a", warmup_units=2,
                              thresholds={"rss_bytes": Threshold(MIB, 1e12)})


def run(slope: float, units: int = 60, noise: float = MIB, seed: int = 1, seconds_per_unit: float = 0.5):
    rng = np.random.default_rng(seed)
    u = np.arange(0, units + 1)
    return pd.DataFrame({"unit": u, "t": u * seconds_per_unit, "value": 1e8 + slope * u + rng.normal(0, noise, u.size)})


def test_looks_are_geometric_fixed_in_advance_and_end_at_the_full_length():
    assert sequential.looks(30) == [5, 8, 12, 18, 27, 30]
    assert sequential.looks(5) == [5]
    assert sequential.look_confidence(6) == pytest.approx(1 - 0.05 / 6)


def test_a_clear_leak_is_decided_early_with_its_time():
    """A leak decides a look only once its halves show it keeps its pace (a saturating
    curve is a straight line early on): with readings scattered by an eighth of a unit's
    growth that takes about half the run."""
    r = sequential.replay_run(run(4 * MIB, noise=0.5 * MIB), SETTINGS, "rss_bytes")
    assert r["stop_verdict"] == r["fixed_verdict"] == "leak"
    assert r["stop_units"] <= 30 and r["stop_seconds"] == pytest.approx(r["stop_units"] * 0.5)
    assert r["recorded_units"] == 60 and r["needed_units"] == r["stop_units"]


def test_a_flat_run_is_decided_stable():
    r = sequential.replay_run(run(0.0), SETTINGS, "rss_bytes")
    assert r["stop_verdict"] == "stable" and r["stop_units"] < 60


def test_an_undecided_run_says_what_length_would_decide_it():
    r = sequential.replay_run(run(0.65 * MIB, units=25, noise=2 * MIB), SETTINGS, "rss_bytes")
    assert r["stop_verdict"] == "inconclusive" and math.isnan(r["stop_units"])
    assert 25 < r["needed_units"] < math.inf
    assert r["needed_seconds"] == pytest.approx(r["needed_units"] * 0.5, rel=0.1)


def test_needed_units_follow_the_slope_interval_shrinking_as_n_to_the_minus_one_and_a_half():
    # half-width 2, distance to the bar 1: 2^(2/3) times the units
    assert sequential.needed_units(10, slope=3.0, low=1.0, high=5.0, bar=2.0) == pytest.approx(10 * 2 ** (2 / 3))
    assert sequential.needed_units(10, slope=1.0, low=0.0, high=1.5, bar=2.0) == 10  # already clear
    assert sequential.needed_units(10, slope=2.0, low=1.0, high=3.0, bar=2.0) == math.inf
    assert math.isnan(sequential.needed_units(3, slope=2.0, low=math.nan, high=math.nan, bar=1.0))  # no interval


@pytest.mark.slow
def test_repeated_looks_do_not_inflate_false_leaks_at_the_bar():
    """The true growth exactly at the decision bar (half the threshold): a one-sided 95 %
    rule calls it a leak 2.5 % of the time; with every look at 1 - 0.05/K, stopping at
    the first decisive look must not do worse than 5 %."""
    bar = 0.5 * MIB
    leaks = sum(sequential.replay_run(run(bar, units=40, seed=seed), SETTINGS, "rss_bytes")["stop_verdict"] == "leak"
                for seed in range(120))
    assert leaks <= 12  # 5 % of 120 is 6; 12 is beyond the binomial 99.5 % point


def test_the_table_replays_real_runs_and_the_figure_draws_it(tmp_path, root):
    """Two real fd_leak runs through the aggregation: the leak is decided early, at a
    run time the table gives from the runs' own clock."""
    import yaml

    from leaklab.report import timeline_plots
    from leaklab.tables import tables

    dirs = []
    for variant in ("leak", "close"):
        dirs.append(tmp_path / "runs" / "fd_leak" / variant / "plain" / "rep1")
        measure("fd_leak", variant, dirs[-1], {"rotations": 40, "interval_s": 0.01})
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    config["experiments"] = {"fd_leak": {**config["experiments"]["fd_leak"], "warmup_units": 2}}
    built = tables.build(dirs, config)
    table = built["time_to_verdict"].set_index(["variant", "metric"])
    leak = table.loc[("leak", "deleted_fds")]
    assert leak["stop_verdicts"] == "leak" and leak["table_verdict"] == "leak" and leak["agrees"]
    assert leak["stop_units"] <= 10 and 0 < leak["stop_seconds"] < leak["recorded_seconds"]
    assert leak["looks"] == "5,8,12,18,27,38"
    assert table.loc[("close", "deleted_fds"), "stop_verdicts"] == "stable"
    per_variant = sequential.by_variant(built["time_to_verdict"]).set_index("variant")
    assert per_variant.loc["leak", "verdict"] == "leak" and per_variant.loc["close", "verdict"] == "stable"
    assert per_variant.loc["leak", "seconds"] >= leak["stop_seconds"]  # the run waits for its slowest metric
    timeline_plots.time_to_verdict(built["time_to_verdict"], tmp_path / "ttv.png")
    assert (tmp_path / "ttv.png").stat().st_size > 10_000


def test_a_look_whose_verdict_needs_confirmation_does_not_decide():
    """A leak that began late is a leak, but the run goes on: what comes after the look
    could still change it (issue 20); the same series without the late start decides."""
    x = np.arange(1, 31, dtype=float)
    rng = np.random.default_rng(4)
    late = [(x, 50e6 + 4e6 * np.maximum(0.0, x - 15) + rng.normal(0, 1e5, x.size)) for _ in range(2)]
    judged = verdicts.judge(late, leak_per_unit=1e6)
    assert judged.verdict == "leak" and judged.needs_confirmation
    assert not sequential.decisive(judged)
    steady = [(x, 50e6 + 4e6 * x + rng.normal(0, 1e5, x.size)) for _ in range(2)]
    judged = verdicts.judge(steady, leak_per_unit=1e6)
    assert judged.verdict == "leak" and not judged.needs_confirmation and sequential.decisive(judged)
