"""Growth, verdicts and unit alignment on synthetic series with known slopes."""

import math

import numpy as np
import pandas as pd
import pytest

from leaklab import growth

THRESHOLDS = {"leak_per_unit": 1_000_000, "retained": 10_000_000}


def series(slope: float, units: int = 10, level: float = 50e6, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = np.arange(units + 1)
    return pd.DataFrame({"unit": unit, "rss_bytes": level + slope * unit + rng.normal(0, noise, unit.size)})


@pytest.mark.parametrize("slope", [0.0, 2e6, 3.2e7])
def test_slope_recovers_known_growth_despite_noise_and_an_outlier(slope):
    frame = series(slope, units=20, noise=1e5, seed=3)
    frame.loc[7, "rss_bytes"] += 5e7  # one page-cache hiccup must not make a leak
    [row] = growth.run_growth(frame, ["rss_bytes"], warmup=1, releases=False)
    assert row["growth_per_unit"] == pytest.approx(slope, abs=2e5)
    assert row["n_units"] == 19


def test_verdicts_follow_the_documented_thresholds():
    assert growth.verdict(3e7, math.nan, 5e7, 9, THRESHOLDS, 0.05, "rss_bytes") == "leak"
    assert growth.verdict(0.0, math.nan, 5e7, 9, THRESHOLDS, 0.05, "rss_bytes") == "stable"
    assert growth.verdict(0.0, 4e7, 5e7, 9, THRESHOLDS, 0.05, "rss_bytes") == "retention"
    assert growth.verdict(math.nan, math.nan, 5e7, 1, THRESHOLDS, 0.05, "rss_bytes") == "inconclusive"
    # over the threshold per unit but tiny against a 10 GB level: not a leak
    assert growth.verdict(1.1e6, math.nan, 1e10, 9, THRESHOLDS, 0.05, "rss_bytes") == "stable"
    # counts have no relative test: one deleted fd per rotation from zero is a leak
    fd = {"leak_per_unit": 0.5, "retained": 16}
    assert growth.verdict(1.0, math.nan, 0.0, 50, fd, 0.05, "deleted_fds") == "leak"


def test_retained_is_measured_only_for_experiments_that_release():
    frame = series(0.0)
    frame.loc[1:, "rss_bytes"] += 4e7  # the first cycle leaves 40 MB behind, then nothing more
    [kept] = growth.run_growth(frame, ["rss_bytes"], warmup=1, releases=True)
    [other] = growth.run_growth(frame, ["rss_bytes"], warmup=1, releases=False)
    assert kept["retained"] == pytest.approx(4e7)
    assert kept["growth_per_unit"] == 0.0
    assert math.isnan(other["retained"])


def test_unit_series_takes_the_last_sample_at_or_before_each_mark():
    samples = pd.DataFrame({
        "t": [0.0, 0.5, 1.0, 1.5, 2.0],
        **{m: [0] * 5 for m in growth.OUTSIDE_METRICS},
    })
    samples["uss_bytes"] = [10, 20, 30, 40, 50]
    marks = pd.DataFrame({
        "t": [0.1, 1.2, 1.3, 2.1], "unit": pd.array([0, 1, None, 2], dtype="Int64"),
        "phase": ["start", "unit", "filled", "unit"], "rss_bytes": [1, 2, 3, 4],
    })
    frame = growth.unit_series(samples, marks)
    assert frame["unit"].tolist() == [0, 1, 2]
    assert frame["rss_bytes"].tolist() == [1, 2, 4]  # read by the process at the mark
    assert frame["uss_bytes"].tolist() == [10, 30, 50]  # the sampler's last reading before it


def test_comparisons_against_the_baseline():
    pooled = pd.DataFrame({
        "experiment": ["e", "e"], "variant": ["base", "bad"], "profiler": ["plain"] * 2,
        "metric": ["rss_bytes"] * 2, "unit": ["pass"] * 2,
        "growth_per_unit": [1000.0, 3e7], "verdict": ["stable", "leak"],
    })
    table = growth.comparisons(pooled, {"e": "base"})
    bad = table[table["variant"] == "bad"].iloc[0]
    assert bad["ratio"] == pytest.approx(3e4)
    assert bad["difference"] == pytest.approx(3e7 - 1000)
    assert bad["baseline_verdict"] == "stable"
