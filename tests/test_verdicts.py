"""Verdicts with confidence on synthetic series with known slopes and noise.

The property tests simulate many data sets per drawn case and check what a 95 %
interval promises: it covers the true slope (at least 90 % of the time, allowing for
the simulation's own spread), and a flat series is called a leak no more often than
the 2.5 % a one-sided 95 % bound allows.
"""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import theilslopes

from leaklab.model import baseline, intervals, sequential, verdicts, windows
from leaklab.model import settings as leaklab_settings

MIB = 2**20
CONFIG = {
    "verdict": {
        "metrics": {
            "rss_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB},
            "deleted_fds": {"leak_per_unit": 0.5, "retained": 16},
        },
    },
    "experiments": {"rocksdb_merge": {"warmup_units": 1, "variants": ["binding-dummy", "capi-real"]},
                    "dict_shrink": {"warmup_units": 1, "variants": ["rebuilt", "dict"]}},
}
RESOLVED = leaklab_settings.resolve(CONFIG)
BASELINES = {"rocksdb_merge": "binding-dummy", "dict_shrink": "rebuilt"}


def units_table(slope: float, *, experiment: str = "rocksdb_merge", variant: str = "capi-real",
                metric: str = "rss_bytes", units: int = 10, replicates: int = 2, level: float = 100 * MIB,
                noise: float = 0.0, seed: int = 0, first_unit: float | None = None) -> pd.DataFrame:
    """The ``units`` table of ``replicates`` runs: level + slope x unit + normal noise.

    ``first_unit`` replaces the value before the first unit (unit 0), to model a
    fill/empty experiment that starts low and keeps what the first cycle took.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for replicate in range(1, replicates + 1):
        offset = rng.normal(0, 5 * MIB)  # runs differ in level, not in growth
        for unit in range(units + 1):
            value = level + offset + slope * unit + rng.normal(0, noise)
            if unit == 0 and first_unit is not None:
                value = first_unit
            rows.append({"experiment": experiment, "variant": variant, "profiler": "plain",
                         "replicate": replicate, "unit": unit, "t": float(unit), "metric": metric,
                         "value": value})
    return pd.DataFrame(rows)


def judge(units: pd.DataFrame) -> pd.DataFrame:
    per_run = verdicts.replicate_slopes(units, verdicts.warmup_units(RESOLVED))
    return verdicts.pooled_growth(per_run, RESOLVED, units)


def only(table: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= table[column] == value
    [row] = table[mask].itertuples(index=False)
    return pd.Series(row._asdict())


# --- the interval itself ---------------------------------------------------------------

def test_exact_null_distribution_is_the_inversion_count_of_permutations():
    for n in range(1, 7):
        counts = np.zeros(n * (n - 1) // 2 + 1)
        for perm in itertools.permutations(range(n)):
            counts[sum(a > b for a, b in itertools.combinations(perm, 2))] += 1
        assert intervals._inversions_pmf(n) == pytest.approx(counts / counts.sum())


def test_interval_agrees_with_scipy_where_its_approximation_holds_and_refuses_where_not():
    rng = np.random.default_rng(1)
    x = np.arange(2, 40.0)
    y = 3 * x + rng.normal(0, 5, x.size)
    scipy_fit = theilslopes(y, x)
    assert intervals.sen_interval(intervals.pairwise_slopes(x, y), [x.size]) == pytest.approx(
        (scipy_fit.low_slope, scipy_fit.high_slope))
    # 3 or 4 points: no interval reaches 95 % (scipy's [min, max] covers 67 % / 92 %)
    for n in (3, 4):
        xs = np.arange(n, dtype=float)
        assert all(math.isnan(v) for v in intervals.sen_interval(intervals.pairwise_slopes(xs, xs ** 1.5), [n]))
    assert intervals.kendall_rank([5]) == 1 and intervals.kendall_rank([3, 3]) is None
    # points exactly on a line: the interval is that slope, however few
    assert intervals.sen_interval(np.array([2.0, 2.0, 2.0]), [3]) == (2.0, 2.0)


def test_serial_correlation_widens_the_interval_only_when_there_is_some():
    rng = np.random.default_rng(4)
    x = np.arange(60.0)
    independent = x + rng.normal(0, 1, x.size)
    steps = np.empty(x.size)
    steps[0] = 0.0
    for i in range(1, x.size):  # AR(1) deviations of 0.9: a run that is high stays high
        steps[i] = 0.9 * steps[i - 1] + rng.normal()
    correlated = x + steps
    assert intervals.serial_correlation_factor(x, independent, 1.0) < 1.5
    assert intervals.serial_correlation_factor(x, correlated, 1.0) > 4
    plain = intervals.sen_interval(intervals.pairwise_slopes(x, correlated), [x.size])
    wide = intervals.sen_interval(intervals.pairwise_slopes(x, correlated), [x.size],
                                 factors=[intervals.serial_correlation_factor(x, correlated, 1.0)])
    assert wide[0] < plain[0] and wide[1] > plain[1]


# --- verdicts on known series ----------------------------------------------------------

def test_a_clear_leak_is_a_leak_and_its_interval_holds_the_true_slope():
    table = judge(units_table(32 * MIB, noise=MIB, seed=3))
    row = only(table, metric="rss_bytes")
    assert row["verdict"] == "leak"
    assert row["ci_low"] <= 32 * MIB <= row["ci_high"]
    assert row["ci_method"] == "theil-sen" and row["n_replicates"] == 2 and row["n_units"] == 9
    assert row["verdict_reason"].startswith("CI [") and "above half the 1 MiB/pass threshold" in row["verdict_reason"]


def test_flat_with_noise_is_stable():
    row = only(judge(units_table(0.0, variant="binding-dummy", noise=0.25 * MIB, seed=5)), metric="rss_bytes")
    assert row["verdict"] == "stable", row["verdict_reason"]
    assert row["ci_high"] < MIB / 2 and "below" in row["verdict_reason"]


def test_a_slope_at_the_threshold_under_heavy_noise_is_inconclusive():
    row = only(judge(units_table(MIB, noise=20 * MIB, seed=7)), metric="rss_bytes")
    assert row["verdict"] == "inconclusive"
    assert row["ci_low"] < MIB / 2 < row["ci_high"] and "straddles" in row["verdict_reason"]


def test_growth_whose_late_half_is_lost_in_noise_is_inconclusive_and_says_why():
    """The whole window well above the bar, but the late half's interval reaches below
    zero and does not decelerate measurably: neither a leak nor settling."""
    fit = lambda slope, low, high: intervals.PooledSlope(slope, low, high, "theil-sen", 1)  # noqa: E731
    fitted = windows.Windows(fit(887, 658, 1217), early=fit(1117, 600, 1700), late=fit(579, -832, 1450),
                              n_units=49)
    verdict, reason = verdicts.decide(fitted, leak_per_unit=256, retained_threshold=math.inf, releases=False,
                                      retained=math.nan, metric="malloc_in_use_bytes", unit="dropped table")
    assert verdict == "inconclusive"
    assert reason == ("CI [0.643, 1.19] KiB/dropped table above half the 256 B/dropped table threshold, but the "
                      "late half, CI [-0.812, 1.42] KiB/dropped table, does not show it still growing")


def test_too_few_units_is_inconclusive_never_a_guess():
    # 2 units after the warm-up: no slope at all
    row = only(judge(units_table(32 * MIB, units=3)), metric="rss_bytes")
    assert row["verdict"] == "inconclusive" and math.isnan(row["growth_per_unit"])
    assert "(< 3)" in row["verdict_reason"]
    # 2 runs x 3 units: a slope, but no 95 % interval, even for a steep noisy leak
    row = only(judge(units_table(32 * MIB, units=4, noise=MIB, seed=1)), metric="rss_bytes")
    assert row["growth_per_unit"] > 16 * MIB
    assert row["verdict"] == "inconclusive" and math.isnan(row["ci_low"])
    assert "cannot give a 95% interval" in row["verdict_reason"]


def test_memory_kept_after_release_without_growth_is_retention():
    units = units_table(0.0, experiment="dict_shrink", variant="dict", units=6, level=60 * MIB,
                        noise=64 * 1024, first_unit=10 * MIB, seed=2)
    row = only(judge(units), metric="rss_bytes")
    assert row["verdict"] == "retention", row["verdict_reason"]
    assert row["retained"] == pytest.approx(50 * MIB, rel=0.2)
    assert row["verdict_reason"].startswith("retained")
    # the same series where units do not release memory: retained means nothing there
    row = only(judge(units.assign(experiment="rocksdb_merge")), metric="rss_bytes")
    assert row["verdict"] == "stable" and math.isnan(row["retained"])


def test_counts_leak_one_per_unit_and_an_outlier_does_not_make_a_leak():
    fds = units_table(1.0, metric="deleted_fds", level=0.0, units=30)
    fds["value"] = fds["unit"].astype(float)  # exactly one leaked handle per rotation
    row = only(judge(fds), metric="deleted_fds")
    assert (row["verdict"], row["ci_low"], row["ci_high"]) == ("leak", 1.0, 1.0)
    flat = units_table(0.0, variant="binding-dummy", noise=0.1 * MIB, seed=9)
    flat.loc[flat["unit"] == 6, "value"] += 500 * MIB  # one page-cache hiccup per run
    assert only(judge(flat), metric="rss_bytes")["verdict"] == "stable"


def test_three_replicates_add_the_bootstrap_and_the_result_is_deterministic():
    units = units_table(2 * MIB, replicates=4, noise=MIB, seed=11)
    first, again = judge(units), judge(units)
    pd.testing.assert_frame_equal(first, again)
    row = only(first, metric="rss_bytes")
    assert row["ci_method"] == "bootstrap-replicates" and row["n_replicates"] == 4
    assert row["ci_low"] == min(row["ts_ci_low"], row["boot_ci_low"])
    assert row["ci_high"] == max(row["ts_ci_high"], row["boot_ci_high"])


def test_per_run_slopes_and_their_columns():
    per_run = verdicts.replicate_slopes(units_table(4 * MIB, noise=0.1 * MIB, seed=12), warmup=1)
    assert list(per_run.columns) == verdicts.PER_RUN_COLUMNS and len(per_run) == 2
    for row in per_run.itertuples():
        assert row.n_units == 9 and row.slope_low <= row.slope <= row.slope_high
        assert row.slope == pytest.approx(4 * MIB, abs=0.1 * MIB)
        assert row.retained == pytest.approx(10 * 4 * MIB, abs=MIB)
        assert row.level == pytest.approx(100 * MIB + 2 * 4 * MIB, abs=15 * MIB)


# --- against the baseline ----------------------------------------------------------------

def test_comparison_gives_the_difference_with_its_interval_and_a_rank_test():
    units = pd.concat([
        units_table(32 * MIB, variant="capi-real", replicates=4, noise=MIB, seed=13),
        units_table(0.0, variant="binding-dummy", replicates=4, noise=MIB, seed=14),
    ], ignore_index=True)
    per_run = verdicts.replicate_slopes(units, verdicts.warmup_units(RESOLVED))
    pooled = verdicts.pooled_growth(per_run, RESOLVED, units)
    table = baseline.compare_to_baseline(per_run, pooled, BASELINES)
    assert list(table.columns) == baseline.COMPARISON_COLUMNS
    row = only(table, metric="rss_bytes")  # the baseline's own row is left out
    assert row["variant"] == "capi-real" and row["baseline"] == "binding-dummy"
    assert row["diff_ci_low"] <= 32 * MIB <= row["diff_ci_high"] and row["diff_ci_low"] > 0
    assert row["rank_test_p"] == pytest.approx(2 / 70)  # 4 vs 4, all apart: the exact floor
    assert (row["verdict"], row["baseline_verdict"]) == ("leak", "stable")
    # the units table gives the same answer as the per-run slopes
    pd.testing.assert_frame_equal(baseline.compare_to_baseline(units, pooled, BASELINES), table)


def test_rank_test_needs_two_replicates_a_side_and_mover_combines_intervals():
    assert math.isnan(baseline.rank_test([1.0], [0.0, 0.1]))
    assert baseline.rank_test([1.0, 1.0], [0.0, 0.0]) == pytest.approx(1 / 3)  # ties: still exact
    low, high = intervals.mover_difference(10.0, 7.0, 14.0, 2.0, 1.0, 5.0)
    assert low == pytest.approx(8 - math.hypot(3, 3)) and high == pytest.approx(8 + math.hypot(4, 1))
    assert all(math.isnan(v) for v in intervals.mover_difference(1.0, math.nan, 2.0, 0.0, -1.0, 1.0))


# --- properties over many simulated data sets ---------------------------------------------

SIMULATIONS = 60
PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None)


def simulate(rng: np.random.Generator, slope: float, noise: float, n_units: int, replicates: int,
             heavy: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Runs after the warm-up: a level per run, the slope, and normal or t(3) noise."""
    x = np.arange(2, 2 + n_units, dtype=float)
    draw = (lambda size: rng.standard_t(3, size)) if heavy else (lambda size: rng.normal(0, 1, size))
    return [(x, rng.normal(0, 100) + slope * x + noise * draw(n_units)) for _ in range(replicates)]


@pytest.mark.slow
@PROPERTY
@given(slope=st.floats(-50, 50), noise=st.floats(0.01, 20), n_units=st.integers(5, 40),
       replicates=st.integers(1, 4), heavy=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_the_95_interval_covers_the_true_slope(slope, noise, n_units, replicates, heavy, seed):
    rng = np.random.default_rng(seed)
    covered = 0
    for i in range(SIMULATIONS):
        fit = intervals.pooled_slope(simulate(rng, slope, noise, n_units, replicates, heavy), n_boot=500, seed=i)
        covered += fit.ci_low <= slope <= fit.ci_high
    # nominal 95 % (measured over 24,000 data sets: 96.8 %); 60 simulations at 95 %
    # cover fewer than 50 times with probability < 0.1 %
    assert covered >= 50


@pytest.mark.slow
@PROPERTY
@given(noise=st.floats(0.01, 20), n_units=st.integers(5, 40), replicates=st.integers(1, 4),
       heavy=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_a_flat_series_is_rarely_called_a_leak(noise, n_units, replicates, heavy, seed):
    rng = np.random.default_rng(seed)
    leaks = 0
    for i in range(SIMULATIONS):  # a threshold as strict as one gets
        judged = verdicts.judge(simulate(rng, 0.0, noise, n_units, replicates, heavy), leak_per_unit=1e-9 * noise,
                                n_boot=500, seed=i)
        leaks += judged.verdict == "leak"
    # a one-sided 95 % bound errs at most 2.5 % of the time, 1.5 in 60 (measured over
    # 24,000 data sets: 1.7 %); 7 or more in 60 would happen with p < 0.1 %
    assert leaks <= 6


# --- settling, families, one verdict per variant ------------------------------------------

def curve(values, replicates: int = 2, seed: int = 0, noise: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = np.asarray(values, dtype=float)
    x = np.arange(1, y.size + 1, dtype=float)
    return [(x, y + rng.normal(0, 5 * MIB) + rng.normal(0, noise, y.size)) for _ in range(replicates)]


def test_growth_that_levels_off_is_settling_not_a_leak():
    u = np.arange(1, 31, dtype=float)
    plateau = 40 * MIB * (1 - np.exp(-u / 6))  # a cache or an allocator filling up: +5 MiB/unit at first
    judged = verdicts.judge(curve(plateau, noise=0.05 * MIB), leak_per_unit=MIB)
    assert judged.verdict == "settling", judged.reason
    assert judged.reason.startswith("growth stopped") and judged.windows.late.ci_high < MIB / 2


def test_growth_slowing_but_still_above_the_bar_is_not_settling_and_needs_confirmation():
    u = np.arange(1, 31, dtype=float)
    rising = 100 * MIB * (1 - np.exp(-u / 18))  # ends at +1.1 MiB/unit: above the bar, slowing down
    judged = verdicts.judge(curve(rising, noise=0.05 * MIB), leak_per_unit=MIB)
    assert judged.windows.recent.ci_low > MIB / 2 and judged.windows.slowing
    assert judged.verdict == "inconclusive" and judged.reason.startswith("slowing"), judged.reason
    assert judged.needs_confirmation


def test_a_steady_leak_stays_a_leak_and_a_one_off_step_does_not_become_one():
    u = np.arange(1, 31, dtype=float)
    judged = verdicts.judge(curve(2 * MIB * u, noise=0.2 * MIB), leak_per_unit=MIB)
    assert judged.verdict == "leak" and not judged.windows.decelerating
    # one jump in the early half, flat after: one jump in 15 units cannot show the late half slower (a stair
    # every 15 units looks the same), so it waits for confirmation; 3 more windows of flat show it stopped
    longer = np.arange(1, 121, dtype=float)
    runs = curve(np.where(longer >= 8, 30 * MIB, 0.0), noise=0.05 * MIB)
    judged = verdicts.judge([(x[:30], y[:30]) for x, y in runs], leak_per_unit=MIB)
    assert judged.verdict == "inconclusive" and horizon_pending(judged), judged.reason
    assert verdicts.judge(runs, leak_per_unit=MIB).verdict in ("settling", "stable")


def test_short_runs_have_no_halves_and_the_whole_window_decides():
    judged = verdicts.judge(curve(2 * MIB * np.arange(1, 6, dtype=float)), leak_per_unit=MIB)
    assert judged.windows.late is None and judged.verdict == "leak"


def test_rss_and_uss_of_a_run_get_one_verdict_from_rss():
    rss = units_table(0.6 * MIB, noise=0.3 * MIB, seed=21)
    uss = units_table(0.6 * MIB, metric="uss_bytes", noise=0.3 * MIB, seed=22)
    resolved = leaklab_settings.resolve({**CONFIG, "verdict": {"metrics": {
        "rss_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB}, "uss_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB}}}})
    units = pd.concat([rss, uss], ignore_index=True)
    growth = verdicts.pooled_growth(verdicts.replicate_slopes(units, 1), resolved, units)
    rows = growth.set_index("metric")
    assert rows.loc["uss_bytes", "verdict"] == rows.loc["rss_bytes", "verdict"]
    assert rows.loc["uss_bytes", "decided_by"] == "rss_bytes" and rows.loc["uss_bytes", "verdict_reason"].startswith("as rss")


def test_the_variant_verdict_is_the_most_severe_deciding_metric_and_names_it():
    units = pd.concat([
        units_table(0.0, variant="capi-real", noise=0.1 * MIB, seed=23),
        units_table(1.0, variant="capi-real", metric="deleted_fds", level=0.0, units=30),
        units_table(0.0, variant="binding-dummy", noise=0.1 * MIB, seed=24),
    ], ignore_index=True)
    units.loc[units["metric"] == "deleted_fds", "value"] = units.loc[units["metric"] == "deleted_fds", "unit"]
    growth = verdicts.pooled_growth(verdicts.replicate_slopes(units, 1), RESOLVED, units)
    decided = verdicts.variant_verdicts(growth, RESOLVED).set_index("variant")
    assert decided.loc["capi-real", ["verdict", "metric"]].to_list() == ["leak", "deleted_fds"]
    assert decided.loc["binding-dummy", ["verdict", "metric"]].to_list() == ["stable", "rss_bytes"]  # RSS first among equals
    assert growth["decides"].sum() == 2


def test_a_finding_is_named_by_the_key_metric_that_shows_where_the_memory_is():
    units = pd.concat([units_table(MIB, variant="capi-real", seed=s, noise=0.01 * MIB, metric=m)
                       for s, m in ((25, "rss_bytes"), (26, "malloc_in_use_bytes"))], ignore_index=True)
    growth = verdicts.pooled_growth(verdicts.replicate_slopes(units, 1), RESOLVED, units)
    assert set(growth["verdict"]) == {"leak"}
    decided = verdicts.variant_verdicts(growth, RESOLVED).set_index("variant")
    assert decided.loc["capi-real", ["verdict", "metric"]].to_list() == ["leak", "malloc_in_use_bytes"]


def test_profiled_runs_are_never_judged():
    units = units_table(32 * MIB, noise=MIB, seed=3).assign(profiler="heaptrack")
    row = only(judge(units), metric="rss_bytes")
    assert row["verdict"] == "inconclusive" and row["verdict_reason"].startswith("not judged")
    assert row["growth_per_unit"] == pytest.approx(32 * MIB, rel=0.1)  # the numbers stay


def test_the_decision_is_deterministic():
    units = units_table(0.7 * MIB, replicates=3, noise=0.5 * MIB, seed=31)
    pd.testing.assert_frame_equal(judge(units), judge(units.sample(frac=1.0, random_state=1)))


def test_thresholds_default_and_are_overridden_per_experiment():
    resolved = leaklab_settings.resolve({"experiments": {
        "planted": {"variants": ["zero"], "verdict": {"rss_bytes": {"leak_per_unit": 65536}}},
        "fd_leak": {"variants": ["close"]}}})
    assert resolved["planted"].thresholds["rss_bytes"] == leaklab_settings.Threshold(65536, 16 * MIB)
    assert resolved["fd_leak"].thresholds["rss_bytes"].leak_per_unit == MIB
    assert resolved["fd_leak"].thresholds["deleted_fds"].leak_per_unit == 1
    assert leaklab_settings.from_params(leaklab_settings.to_params(resolved)) == resolved
    with pytest.raises(ValueError, match="'my_metric' has no default threshold; give retained"):
        leaklab_settings.resolve({"experiments": {"fd_leak": {"variants": ["close"], "verdict": {
            "my_metric": {"leak_per_unit": 1}}}}})


# --- where the growth is going: the recent rate, a late onset, confirmation (issue 20) ----

U30 = np.arange(1, 31, dtype=float)


def test_a_leak_that_starts_halfway_is_a_leak_with_its_onset_and_needs_confirmation():
    late = 2 * MIB * np.maximum(0.0, U30 - 15)  # flat, then 2 MiB/unit (4x the bar) from unit 15
    judged = verdicts.judge(curve(late, noise=0.1 * MIB), leak_per_unit=MIB)
    assert judged.verdict == "leak", judged.reason
    assert 13 <= judged.windows.onset <= 17 and "growth began at unit" in judged.reason
    assert judged.windows.recent.ci_low > MIB / 2 and judged.needs_confirmation


def test_a_leak_that_starts_at_two_thirds_is_a_leak():
    late = 2 * MIB * np.maximum(0.0, U30 - 20)
    judged = verdicts.judge(curve(late, noise=0.1 * MIB, seed=3), leak_per_unit=MIB)
    assert judged.verdict == "leak", judged.reason
    assert 18 <= judged.windows.onset <= 22


def test_a_transient_then_a_steady_leak_is_a_leak_not_settling():
    shape = 10 * MIB * (1 - np.exp(-U30 / 2)) + 2 * MIB * U30  # a fill in the first units, a leak under it
    judged = verdicts.judge(curve(shape, noise=0.1 * MIB), leak_per_unit=MIB)
    assert judged.windows.early.slope > judged.windows.late.slope  # it did slow down ...
    assert judged.verdict == "leak", judged.reason  # ... but where it is going is a leak


def test_allocator_reuse_fast_then_a_net_leak_is_a_leak():
    heap = 1.5 * MIB * U30 + 4.5 * MIB * (U30 % 10)  # a release every 10 units, reused before RSS grows again
    rss = np.maximum.accumulate(heap)  # 6 MiB/unit in the first period, then 1.5 MiB/unit net in steps
    judged = verdicts.judge(curve(rss, noise=0.05 * MIB), leak_per_unit=MIB / 2)
    assert judged.verdict == "leak", judged.reason


def test_stairs_every_ten_units_are_a_leak():
    stairs = 20 * MIB * np.floor(U30 / 10)  # 2 MiB/unit on average, in three stairs
    judged = verdicts.judge(curve(stairs, noise=0.05 * MIB), leak_per_unit=MIB)
    assert judged.verdict == "leak", judged.reason


def test_random_increments_are_never_settling():
    rng = np.random.default_rng(11)
    for _ in range(5):
        arrives = rng.random(30) < 0.5
        grown = np.cumsum(arrives * rng.exponential(2 * 3 * MIB, 30))  # mean 3 MiB/unit, on half the units
        judged = verdicts.judge(curve(grown, noise=0.05 * MIB, seed=int(rng.integers(100))), leak_per_unit=MIB)
        assert judged.verdict in ("leak", "inconclusive"), judged.reason


def test_fill_then_flat_is_settling_with_its_plateau_never_a_leak():
    fill = 2 * MIB * np.minimum(U30, 15)  # a cache filling at 2 MiB/unit until unit 15, full after
    judged = verdicts.judge(curve(fill, noise=0.05 * MIB), leak_per_unit=MIB)
    assert judged.verdict == "settling" and not judged.needs_confirmation, judged.reason
    runs = curve(fill, noise=0.05 * MIB)
    assert judged.windows.plateau == pytest.approx(np.median([np.median(y[15:]) for _, y in runs]), rel=0.01)


def test_saturation_slower_than_the_run_is_not_settling_while_it_still_grows_above_the_bar():
    u = np.arange(1, 31, dtype=float)
    slow = 4 * MIB * 30 * (1 - np.exp(-u / 30))  # 4 MiB/unit at first, levels off after several runs
    judged = verdicts.judge(curve(slow, noise=0.05 * MIB), leak_per_unit=MIB)
    assert judged.verdict != "settling" and judged.windows.recent.ci_low > MIB / 2
    # its rate did fall by 2/3 within the window: whatever the verdict, it asks for confirmation
    assert judged.needs_confirmation, judged.reason


def test_growth_rows_carry_the_recent_rate_onset_and_confirmation():
    units = units_table(0.0, units=31, noise=0.05 * MIB, seed=2)
    late = units["unit"] > 16
    units.loc[late, "value"] += 2 * MIB * (units.loc[late, "unit"] - 16)
    row = only(judge(units), metric="rss_bytes")
    assert row["verdict"] == "leak", row["verdict_reason"]
    assert row["recent_ci_low"] > MIB / 2 and row["recent_per_unit"] == pytest.approx(2 * MIB, rel=0.1)
    assert 14 <= row["onset_unit"] <= 18 and bool(row["needs_confirmation"]) and math.isnan(row["plateau_level"])
    flat = only(judge(units_table(0.0, units=31, noise=0.05 * MIB, seed=2)), metric="rss_bytes")
    assert flat["verdict"] == "stable" and math.isnan(flat["onset_unit"]) and not flat["needs_confirmation"]


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.0, 8.0), onset=st.floats(0.0, 0.8), tau=st.floats(0.05, 5.0),
       amplitude=st.floats(0.0, 60.0), noise=st.floats(0.01, 1.0), seed=st.integers(0, 1000))
def test_never_settling_or_stable_while_the_recent_interval_lies_above_the_bar(rate, onset, tau, amplitude, noise,
                                                                              seed):
    """Whatever the shape (a leak from any onset, a saturating curve of any time
    constant, both), a recent rate whose interval lies above the bar is never called
    settling or stable; and settling always comes with a late half whose rate is below it."""
    shape = (rate * MIB * np.maximum(0.0, U30 - onset * 30)
             + amplitude * MIB * (1 - np.exp(-U30 / (tau * 30))))
    judged = verdicts.judge(curve(shape, noise=noise * MIB, seed=seed), leak_per_unit=MIB)
    recent = judged.windows.recent
    if recent is not None and recent.ci_low > MIB / 2:
        assert judged.verdict not in ("settling", "stable"), judged.reason
    if judged.verdict == "settling":
        assert judged.windows.late.slope < MIB / 2 and (recent is None or recent.ci_low <= MIB / 2)


def jumps(units: int, chance: float, mean_rate: float, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Two runs whose growth arrives in random amounts on random units (mean ``mean_rate``)."""
    rng = np.random.default_rng(seed)
    u = np.arange(1, units + 1, dtype=float)
    return [(u, 100 * MIB + np.cumsum((rng.random(units) < chance) * rng.exponential(mean_rate / chance, units))
             + rng.normal(0, 0.02 * MIB, units)) for _ in range(2)]


def test_growth_in_sparse_jumps_is_a_leak_never_settling_and_more_units_decide_it():
    """Jumps on one unit in five at 4 MiB/unit on average: the median slope reads the flat
    stretches between jumps; the mean rate with a block bootstrap counts the jumps.  At
    most one draw of 12 is called settling or stable in the window (seed 9: neither run
    jumped in its late half after 4 and 6 jumps in its early half: a plateau by any count),
    and over 4x the units all are leaks."""
    window, confirmed = [], []
    for seed in range(12):
        runs = jumps(120, 0.2, 4 * MIB, seed)
        window.append(verdicts.judge([(x[:30], y[:30]) for x, y in runs], leak_per_unit=MIB).verdict)
        confirmed.append(verdicts.judge(runs, leak_per_unit=MIB).verdict)
    assert sum(v in ("settling", "stable") for v in window) <= 1, window
    assert window.count("leak") >= 9 and confirmed == ["leak"] * 12, (window, confirmed)


def test_a_step_in_the_late_half_is_not_a_plateau_until_what_follows_shows_it():
    """One step of 20 MiB at unit 20 of 30 and flat after: a stair cannot be told from it
    in the window, so settling waits for confirmation; over 4x the units it settled."""
    u = np.arange(1, 121, dtype=float)
    runs = curve(np.where(u >= 20, 20 * MIB, 0.0), noise=0.05 * MIB)
    judged = verdicts.judge([(x[:30], y[:30]) for x, y in runs], leak_per_unit=MIB)
    assert judged.verdict == "inconclusive" and horizon_pending(judged), judged.reason
    assert verdicts.judge(runs, leak_per_unit=MIB).verdict in ("settling", "stable")


def test_a_straight_line_is_a_final_leak_only_when_its_halves_keep_their_pace():
    """A curve saturating over 3 windows is straight in one: a leak, but one that needs
    confirmation (its late half runs at 85 % of its early half's pace); a steady leak
    with the same noise is final."""
    u = np.arange(1, 31, dtype=float)
    saturating = verdicts.judge(curve(4 * MIB * 90 * (1 - np.exp(-u / 90)), noise=0.01 * MIB), leak_per_unit=MIB)
    assert saturating.verdict == "leak" and saturating.needs_confirmation and not saturating.windows.keeps_pace
    steady = verdicts.judge(curve(4 * MIB * u, noise=0.01 * MIB), leak_per_unit=MIB)
    assert steady.verdict == "leak" and not steady.needs_confirmation and steady.windows.keeps_pace


def test_the_mean_rate_interval_widens_with_the_jumps_it_saw():
    """The same total growth spread evenly and in four jumps: the same mean rate, a wider
    block-bootstrap interval for the jumps; a line is its own interval."""
    u = np.arange(1, 31, dtype=float)
    even = [(u, 2.0 * u)]
    lumpy = [(u, np.where(u >= 8, 15.0, 0) + np.where(u >= 15, 15.0, 0) + np.where(u >= 22, 15.0, 0)
              + np.where(u >= 29, 13.0, 0))]
    a, b = intervals.rate_interval(even), intervals.rate_interval(lumpy)
    assert a.slope == pytest.approx(2.0) and b.slope == pytest.approx(2.0)
    assert (a.ci_low, a.ci_high) == pytest.approx((2.0, 2.0)) and b.ci_high - b.ci_low > 2.0
    assert b.ci_method == "block-bootstrap"


def horizon_pending(judged) -> bool:
    from leaklab.model import horizon

    return horizon.pending(judged, MIB / 2)


def test_a_random_increments_leak_whose_late_half_is_quiet_is_not_settling():
    """Jumps on one unit in five at 2 MiB/unit on average, 2 runs of 30 units: in these
    draws neither run jumped (much) in the late half, so its median slope and mean rate
    are below the bar.  A plateau needs the late half shown slower than the early half
    by mean rates at 99 % (``late_slower``), and a few jumps in the early half do not
    show it: these wait for confirmation instead of reading ``settling``."""
    for seed in (9, 15, 40, 100):
        runs = [(x[:30], y[:30]) for x, y in jumps(30, 0.2, 2 * MIB, seed)]
        judged = verdicts.judge(runs, leak_per_unit=MIB)
        assert judged.windows.late_rate.slope < MIB / 2 and judged.windows.late.ci_high < MIB / 2
        assert not judged.windows.late_slower
        assert judged.verdict == "inconclusive" and horizon_pending(judged), judged.reason


def test_a_fill_that_stops_shows_its_late_half_slower_and_settles():
    fill = 2 * MIB * np.minimum(U30, 12)  # steady growth until unit 12, full after: slower beyond doubt
    judged = verdicts.judge(curve(fill, noise=0.05 * MIB), leak_per_unit=MIB)
    assert judged.windows.late_slower and judged.verdict == "settling", judged.reason


def test_a_leak_whose_rate_swings_is_a_leak_over_the_confirmation_horizon():
    """A leak at 2x the threshold whose rate swings by 80 % over two windows, seen over 4
    windows (the synthetic tier's confirmation): after an early fall the stretch is the
    late half, one period, and its halves (a crest, a trough) differ by far; the window's
    halves (a period each) do not, so it is a leak, not ``slowing``."""
    from leaklab.benchmarks import accuracy

    got = [accuracy.judgement(case).verdict
           for case in accuracy.cases(6, seed=0, horizon=accuracy.HORIZON, classes=["varying_leak"])
           if case.detail == "rate=0.002, period=2"]
    assert got == ["leak"] * 6, got


def test_one_page_faulted_in_over_a_flat_window_is_stable():
    """A flat run (planted ``zero``) whose RSS took one 4 KiB page at unit 20: its
    deviations from the line are one step, whose ranks read as correlation near 1, and
    the window once had no 95 % interval at all (``inconclusive``, so the run went on to
    its horizon).  Deviations within a quarter of the bar are not noise to correct."""
    x = np.arange(3, 31, dtype=float)
    y = np.where(x < 20, 15_872_000.0, 15_876_096.0)
    judged = verdicts.judge([(x, y)], leak_per_unit=64 * 1024, metric="rss_bytes", unit="step",
                            confidence=sequential.look_confidence(4))  # a confirming look's, as the runner asks
    assert judged.verdict == "stable", judged.reason
