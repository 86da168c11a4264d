"""Verdicts with confidence: growth per unit with a 95 % interval, and what it means.

``leaklab.growth`` gives one slope per run and pools replicates by their median; a
verdict from a point estimate cannot tell "no leak" from "too noisy to say".  Here every
slope comes with an interval, and a verdict is only given when the interval decides it
(``verdict``): ``leak`` when it lies above the threshold, ``stable`` when below,
``retention`` when a releasing experiment keeps memory but the interval does not lie
above, ``inconclusive`` otherwise -- never a guess.

- per run (``replicate_slopes``): the Theil–Sen slope over the units after the
  warm-up, with the distribution-free interval that belongs to it (the order statistics
  of the pairwise slopes that Kendall's S allows, Sen 1968);
- pooled (``pooled_growth``): the stratified Theil–Sen slope, the median of the pairwise
  slopes *within* each replicate (Sen's estimator over several series, as Hirsch, Slack
  & Smith 1982 do for seasons).  Pairs across replicates are left out on purpose: two
  runs differ in level (ASLR, arenas, page cache), and a pair that spans them would
  measure that difference, not growth.  Its interval (``ci_method`` ``theil-sen``)
  comes from the summed Kendall S of the replicates.  With 3 or more replicates
  (``bootstrap-replicates``) the replicates are also resampled with replacement
  (seeded) and the interval is the hull of that percentile interval and the Theil–Sen
  one: the bootstrap sees run-to-run differences that the within-run interval cannot,
  and the within-run interval keeps the bootstrap honest when runs are few (a
  percentile interval over 3 replicates is at most the range of their slopes and covers
  about 75 %; over 10, about 90 %);
- against the baseline (``compare_to_baseline``): the difference of the pooled slopes
  with an interval combined from the two intervals (MOVER, Zou & Donner 2008), and a
  Mann–Whitney rank test across the replicate slopes.

Three choices keep the 95 % honest on memory series:

- the exact null distribution of Kendall's S (the inversions of a random permutation,
  convolved across replicates), not the normal approximation of
  ``scipy.stats.theilslopes``: at 3 or 4 points that approximation returns [min, max],
  which covers 67 % and 92 %, and it is NaN for constant values.  From 5 points on the
  two agree.  When the points cannot give 95 % at all (one run of 3 or 4 points, two
  runs of 3), the interval is NaN and the verdict ``inconclusive``; points exactly on a
  line are the exception (every pairwise slope, and so the interval, is that slope);
- serial correlation (``serial_correlation_factor``): RSS moves in steps, so the
  deviations from the line are not independent, and Var(S) is inflated accordingly;
- ties (counts, page-sized steps) shrink the variance of S, so using the untied
  distribution errs on the wide side.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.stats import PermutationMethod, mannwhitneyu, norm, rankdata

from leaklab import config as leaklab_config
from leaklab import experiments
from leaklab.amounts import MIB, amount

RUN_KEYS = ["experiment", "variant", "profiler", "replicate"]
GROUP_KEYS = ["experiment", "variant", "profiler", "metric"]
MIN_UNITS = 3            # a slope needs at least this many units after the warm-up
MIN_BOOT_REPLICATES = 3  # below this, resampling replicates says nothing useful
CONFIDENCE = 0.95
N_BOOT = 2000
BOOT_SLOPES_PER_RUN = 2000  # order statistics a long run keeps in the bootstrap
MIN_ACF_UNITS = 6         # shorter runs give no usable autocorrelation
MAX_RHO = 0.99            # a lag-1 autocorrelation of 1 would make any interval infinite
EXACT_MAX_PAIRS = 10_000  # beyond this the normal approximation to Kendall's S is accurate

PER_RUN_COLUMNS = [*RUN_KEYS, "metric", "warmup_units", "n_units", "slope", "slope_low", "slope_high",
                   "level", "retained", "first_unit", "last_unit"]
POOLED_COLUMNS = [*GROUP_KEYS, "unit", "growth_per_unit", "ci_low", "ci_high", "ci_method",
                  "ts_ci_low", "ts_ci_high", "boot_ci_low", "boot_ci_high", "n_replicates", "n_units",
                  "warmup_units", "level", "retained", "leak_per_unit", "retained_threshold",
                  "verdict", "verdict_reason"]
COMPARISON_COLUMNS = ["experiment", "variant", "baseline", "profiler", "metric", "unit",
                      "growth_per_unit", "ci_low", "ci_high", "baseline_growth_per_unit",
                      "baseline_ci_low", "baseline_ci_high", "difference", "diff_ci_low", "diff_ci_high",
                      "diff_ci_method", "ratio", "rank_test_p", "n_replicates", "baseline_n_replicates",
                      "verdict", "baseline_verdict"]


# --------------------------------------------------------------------------------------
# The estimator and its interval
# --------------------------------------------------------------------------------------

def pairwise_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slopes between every pair of points of one run (x strictly increasing in unit)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    return (y[j] - y[i])[keep] / dx[keep]


@lru_cache(maxsize=256)
def _inversions_pmf(n: int) -> np.ndarray:
    """P(a random permutation of n items has k inversions), k = 0..n(n-1)/2.

    Kendall's S of n points with no trend and continuous noise is n(n-1)/2 - 2 x that
    number of inversions, so this is the exact null distribution of S.
    """
    pmf = np.ones(1)
    for k in range(2, n + 1):  # inserting the k-th item adds 0..k-1 inversions uniformly
        cumulative = np.cumsum(np.concatenate([np.zeros(k), pmf, np.zeros(k - 1)]))
        pmf = (cumulative[k:] - cumulative[:-k]) / k
    return pmf


def serial_correlation_factor(x: np.ndarray, y: np.ndarray, slope: float) -> float:
    """How much serial correlation inflates Var(S) of one run; 1 when there is none.

    Kendall's S assumes the deviations from the line are independent.  Memory rarely
    obliges: RSS moves in steps (arena growth, page faults in bursts), so a run that is
    high stays high for a while (the RSS of duckdb_load and fd_leak runs shows a lag-1
    autocorrelation of 0.8-0.95 around its line).  On a simulated AR(1) of 0.8 over 100
    units, two runs, the plain interval covers 53 % and this one 91 %.  The deviations from the Theil–Sen line are ranked (robust
    to outliers), their lag-1 autocorrelation r is corrected for its small-sample bias
    (Marriott & Pope 1954: (n r + 1) / (n - 3)) and taken as an AR(1) process, and
    Var(S) is multiplied by Hamed & Rao's (1998) n/n* = 1 + 2/(n(n-1)(n-2))
    sum_k (n-k)(n-k-1)(n-k-2) rho^k.  Never below 1: a negative correlation does not
    earn a narrower interval.  Runs shorter than MIN_ACF_UNITS get 1.
    """
    n = len(y)
    if n < MIN_ACF_UNITS or math.isnan(slope):
        return 1.0
    resid = np.asarray(y, dtype=float) - slope * np.asarray(x, dtype=float)
    if np.ptp(resid) == 0:
        return 1.0
    centred = rankdata(resid) - (n + 1) / 2.0
    r1 = float(centred[:-1] @ centred[1:]) / float(centred @ centred)
    rho = min((n * r1 + 1.0) / (n - 3.0), MAX_RHO)
    if rho <= 0:
        return 1.0
    k = np.arange(1, n - 2, dtype=float)
    total = float(np.sum((n - k) * (n - k - 1) * (n - k - 2) * rho**k))
    return max(1.0, 1.0 + 2.0 * total / (n * (n - 1) * (n - 2)))


def kendall_rank(sizes: Sequence[int], confidence: float = CONFIDENCE,
                 factors: Sequence[float] | None = None) -> int | None:
    """The order statistic k (1-based) such that [d_(k), d_(N+1-k)] of the N within-run
    pairwise slopes covers the true slope with at least ``confidence``; None when even
    [min, max] cannot.

    The true slope lies below d_(k) only if Kendall's S of the residuals is at least
    N - 2k + 2, i.e. their inversions number at most k - 1; so k is the largest with
    P(inversions <= k - 1) <= (1 - confidence) / 2.  Replicates are independent, so the
    null distribution of the pooled S is the convolution of theirs.  ``factors`` (one
    per run, from ``serial_correlation_factor``) inflate each run's Var(S); when any is
    above 1 the rank is also taken from the normal approximation with the inflated
    variance, and the smaller (wider interval) of the two wins.
    """
    factors = list(factors) if factors is not None else [1.0] * len(sizes)
    kept = [(int(n), f) for n, f in zip(sizes, factors) if n >= 2]
    sizes = [n for n, _ in kept]
    if not sizes:
        return None
    tail = (1.0 - confidence) / 2.0
    pairs = sum(n * (n - 1) // 2 for n in sizes)
    if pairs <= EXACT_MAX_PAIRS:
        pmf = np.ones(1)
        for n in sizes:
            pmf = np.convolve(pmf, _inversions_pmf(n))
        k = int(np.count_nonzero(np.cumsum(pmf) <= tail + 1e-12))
    else:
        sigma = math.sqrt(sum(n * (n - 1) * (2 * n + 5) for n in sizes) / 18.0)
        k = int(math.floor(pairs / 2.0 + norm.ppf(tail) * sigma / 2.0 + 0.5))
    if any(f > 1.0 for _, f in kept):
        sigma = math.sqrt(sum(f * n * (n - 1) * (2 * n + 5) for n, f in kept) / 18.0)
        k = min(k, int(math.floor(pairs / 2.0 + norm.ppf(tail) * sigma / 2.0 + 0.5)))
    return k if k >= 1 else None


def sen_interval(slopes: np.ndarray, sizes: Sequence[int], confidence: float = CONFIDENCE,
                 factors: Sequence[float] | None = None) -> tuple[float, float]:
    """Distribution-free interval of the (stratified) Theil–Sen slope; NaN when the
    points cannot give ``confidence`` (and are not exactly on a line)."""
    if slopes.size == 0:
        return math.nan, math.nan
    ordered = np.sort(slopes)
    if ordered[0] == ordered[-1]:
        return float(ordered[0]), float(ordered[-1])
    k = kendall_rank(sizes, confidence, factors)
    if k is None or k > ordered.size:
        return math.nan, math.nan
    return float(ordered[k - 1]), float(ordered[ordered.size - k])


@dataclass(frozen=True)
class PooledSlope:
    """A pooled growth per unit and its interval (see the module docstring)."""

    slope: float
    ci_low: float
    ci_high: float
    ci_method: str
    n_replicates: int
    ts_ci_low: float = math.nan
    ts_ci_high: float = math.nan
    boot_ci_low: float = math.nan
    boot_ci_high: float = math.nan


def _weighted_medians(ordered: np.ndarray, mass: np.ndarray, labels: np.ndarray,
                      weights: np.ndarray) -> np.ndarray:
    """Median of the slopes when replicate r counts weights[b, r] times, for every row b
    (``mass``: how many pairwise slopes each element stands for)."""
    out = np.empty(len(weights))
    for b, w in enumerate(weights):
        cumulative = np.cumsum(w[labels] * mass)
        out[b] = ordered[min(np.searchsorted(cumulative, cumulative[-1] / 2.0), ordered.size - 1)]
    return out


def _bootstrap_replicates(per_run: list[np.ndarray], confidence: float, n_boot: int,
                          seed: int | Sequence[int]) -> tuple[float, float]:
    """Percentile interval of the stratified slope when whole runs are resampled.

    Only a few distinct resamples exist with few replicates (10 with 3), so each is
    computed once.  A long run stands for its pairwise slopes by at most
    BOOT_SLOPES_PER_RUN evenly spaced order statistics, which keeps 100 replicates of
    300 units tractable and moves a median by less than the spacing of those.
    """
    values, mass, labels = [], [], []
    for r, d in enumerate(per_run):
        d = np.sort(d)
        if d.size > BOOT_SLOPES_PER_RUN:
            d = d[np.linspace(0, d.size - 1, BOOT_SLOPES_PER_RUN).round().astype(int)]
        values.append(d)
        mass.append(np.full(d.size, per_run[r].size / d.size))
        labels.append(np.full(d.size, r))
    values, mass, labels = (np.concatenate(a) for a in (values, mass, labels))
    order = np.argsort(values, kind="stable")
    r = len(per_run)
    draws = np.random.default_rng(seed).integers(0, r, size=(n_boot, r))
    counts = np.zeros((n_boot, r), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n_boot), r), draws.ravel()), 1)
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    stats = _weighted_medians(values[order], mass[order], labels[order], unique)[np.ravel(inverse)]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return float(low), float(high)


def pooled_slope(series: Sequence[tuple[np.ndarray, np.ndarray]], *, confidence: float = CONFIDENCE,
                 n_boot: int = N_BOOT, seed: int | Sequence[int] = 0) -> PooledSlope:
    """Stratified Theil–Sen slope of several runs' (unit, value) points, with its interval.

    Runs with fewer than MIN_UNITS points are left out (they have no slope of their
    own).  With fewer than MIN_BOOT_REPLICATES runs the interval is the Theil–Sen one
    (``theil-sen``); with more it is the hull of that and a percentile bootstrap over
    runs (``bootstrap-replicates``), seeded so the same data give the same interval.
    """
    kept = []
    for x, y in series:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() >= MIN_UNITS:
            kept.append((x[ok], y[ok]))
    if not kept:
        return PooledSlope(math.nan, math.nan, math.nan, "none", 0)
    per_run = [pairwise_slopes(x, y) for x, y in kept]
    sizes = [x.size for x, _ in kept]
    slopes = np.concatenate(per_run)
    slope = float(np.median(slopes))
    factors = [serial_correlation_factor(x, y, float(np.median(d))) for (x, y), d in zip(kept, per_run)]
    ts_low, ts_high = sen_interval(slopes, sizes, confidence, factors)
    if len(kept) < MIN_BOOT_REPLICATES:
        return PooledSlope(slope, ts_low, ts_high, "theil-sen", len(kept), ts_low, ts_high)

    boot_low, boot_high = _bootstrap_replicates(per_run, confidence, n_boot, seed)
    low = min(boot_low, ts_low) if not math.isnan(ts_low) else math.nan
    high = max(boot_high, ts_high) if not math.isnan(ts_high) else math.nan
    return PooledSlope(slope, low, high, "bootstrap-replicates", len(kept), ts_low, ts_high, boot_low, boot_high)


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

def warmup_units(config: dict) -> dict[str, int]:
    """Warm-up units per experiment, as the config gives them (default 1)."""
    return {name: int(entry.get("warmup_units", 1)) for name, entry in config["experiments"].items()}


def _warmup_for(warmup: int | Mapping[str, int], experiment: str) -> int:
    return int(warmup) if isinstance(warmup, (int, np.integer)) else int(warmup.get(experiment, 1))


def _post_warmup(frame: pd.DataFrame, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    post = frame[(frame["unit"] > warmup) & frame["value"].notna()]
    return post["unit"].to_numpy(dtype=float), post["value"].to_numpy(dtype=float)


def _clean_units(units: pd.DataFrame) -> pd.DataFrame:
    """One value per run x unit x metric (the last one, should a boundary repeat), sorted."""
    frame = units.dropna(subset=["unit"]).copy()
    frame["unit"] = frame["unit"].astype(float)
    frame["value"] = frame["value"].astype(float)
    frame = frame.drop_duplicates([*RUN_KEYS, "metric", "unit"], keep="last")
    return frame.sort_values([*RUN_KEYS, "metric", "unit"], kind="stable")


def replicate_slopes(units: pd.DataFrame, warmup: int | Mapping[str, int]) -> pd.DataFrame:
    """Per run x metric: Theil–Sen growth per unit after the warm-up, with its 95 % interval.

    ``warmup`` is a number of units or a mapping experiment -> units (``warmup_units``).
    Columns: the run keys, metric, warmup_units, n_units (points after the warm-up),
    slope (NaN with fewer than MIN_UNITS points), slope_low/slope_high (the exact
    Kendall interval; NaN when the points cannot give 95 %), level (value at the first
    unit after the warm-up: what growth is compared with), retained (value after the
    last unit minus before the first; only meaningful when each unit releases its
    memory, ``pooled_growth`` keeps it only then), first_unit, last_unit.
    """
    if units.empty:
        return pd.DataFrame(columns=PER_RUN_COLUMNS)
    rows = []
    for key, frame in _clean_units(units).groupby([*RUN_KEYS, "metric"], sort=False):
        w = _warmup_for(warmup, key[0])
        x, y = _post_warmup(frame, w)
        slope = low = high = math.nan
        if x.size >= MIN_UNITS:
            d = pairwise_slopes(x, y)
            slope = float(np.median(d))
            factor = serial_correlation_factor(x, y, slope)
            low, high = sen_interval(d, [x.size], factors=[factor])
        values = frame["value"].dropna()
        rows.append({
            **dict(zip([*RUN_KEYS, "metric"], key)),
            "warmup_units": w, "n_units": int(x.size),
            "slope": slope, "slope_low": low, "slope_high": high,
            "level": float(y[0]) if y.size else math.nan,
            "retained": float(values.iloc[-1] - values.iloc[0]) if len(values) >= 2 else math.nan,
            "first_unit": float(frame["unit"].min()), "last_unit": float(frame["unit"].max()),
        })
    return pd.DataFrame(rows, columns=PER_RUN_COLUMNS)


def _spec(experiment: str) -> tuple[str, bool]:
    """Unit of work and whether units release their memory; neutral for unknown names."""
    try:
        spec = experiments.get(experiment)
    except ValueError:
        return "unit", False
    return spec.unit, spec.releases


def _rate(value: float, metric: str, unit: str) -> str:
    return f"{amount(value, metric)}/{unit}"


def _ci_text(low: float, high: float, metric: str, unit: str) -> str:
    if metric.endswith("_bytes"):
        return f"CI [{low / MIB:.3g}, {high / MIB:.3g}] MiB/{unit}"
    return f"CI [{low:.3g}, {high:.3g}]/{unit}"


def verdict(growth: float, ci_low: float, ci_high: float, n_units: int, n_replicates: int, level: float,
            retained: float, releases: bool, thresholds: Mapping[str, float], min_relative_growth: float,
            metric: str, unit: str = "unit") -> tuple[str, str]:
    """The verdict and a one-line reason, decided by the interval, never by the point estimate.

    - ``leak``: ci_low > leak_per_unit and, for byte metrics, ci_low x n_units is at
      least min_relative_growth x level (a MiB per pass on a 10 GiB heap is not a leak);
    - ``retention``: not a leak, the experiment releases, retained >= the ``retained``
      threshold, and the interval does not lie above leak_per_unit;
    - ``stable``: the interval lies below the leak bar, i.e. ci_high < leak_per_unit or,
      for byte metrics, ci_high x n_units < min_relative_growth x level (either rules
      a leak out, since a leak needs both);
    - ``inconclusive``: anything else: the interval straddles the bar, fewer than
      MIN_UNITS units after the warm-up, no run with a slope, or no 95 % interval.
    """
    if n_replicates == 0 or math.isnan(growth):
        return "inconclusive", f"{n_units} {unit}s after warm-up (< {MIN_UNITS}) in every run"
    if n_units < MIN_UNITS:
        return "inconclusive", f"{n_units} {unit}s after warm-up (< {MIN_UNITS})"
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "inconclusive", (f"{n_replicates} run(s) x {n_units} {unit}s cannot give a "
                                f"{CONFIDENCE:.0%} interval")
    per_unit = float(thresholds["leak_per_unit"])
    relative = 0.0
    if metric.endswith("_bytes") and not math.isnan(level) and level > 0:
        relative = min_relative_growth * level / n_units
    bar = max(per_unit, relative)
    bar_text = _rate(per_unit, metric, unit)
    if relative > per_unit:
        bar_text = (f"{_rate(relative, metric, unit)} ({min_relative_growth:.0%} of the "
                    f"{amount(level, metric)} level over {n_units} {unit}s)")
    ci_text = _ci_text(ci_low, ci_high, metric, unit)
    above = ci_low > per_unit
    if above and ci_low >= relative:
        return "leak", f"{ci_text} above {bar_text}"
    retained_bar = float(thresholds["retained"])
    if releases and not math.isnan(retained) and retained >= retained_bar and not above:
        return "retention", (f"retained {amount(retained, metric)} >= {amount(retained_bar, metric)}; "
                             f"{ci_text} not above {_rate(per_unit, metric, unit)}")
    if ci_high < bar:
        return "stable", f"{ci_text} below {bar_text}"
    return "inconclusive", f"{ci_text} straddles {bar_text}"


def _median(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.median()) if len(finite) else math.nan


def _group_seed(seed: int, key: tuple) -> list[int]:
    """A seed per group that does not depend on the process (str hashes do)."""
    return [int(seed), zlib.crc32("\x1f".join(map(str, key)).encode())]


def pooled_growth(per_run: pd.DataFrame, config: dict, units: pd.DataFrame, *,
                  confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per experiment x variant x profiler x metric: pooled growth per unit, its interval
    and the verdict it supports (see ``verdict``).

    ``per_run`` is ``replicate_slopes(units, ...)``; ``units`` is needed as well because
    the pooled slope is fitted on every run's points (per-run summaries cannot give a
    stratified Theil–Sen interval).  Only metrics with a threshold in the config for
    their experiment are judged.  level, n_units and retained are medians over the runs
    that have a slope; retained is NaN for experiments whose units do not release.
    """
    if per_run.empty:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    min_relative = float(config["verdict"].get("min_relative_growth", 0.05))
    points = {key: frame for key, frame in _clean_units(units).groupby([*RUN_KEYS, "metric"], sort=False)}
    rows = []
    for key, group in per_run.groupby(GROUP_KEYS, sort=True):
        experiment, variant, profiler, metric = key
        limits = leaklab_config.thresholds(config, experiment)
        if metric not in limits:
            continue
        unit, releases = _spec(experiment)
        series = []
        for run in group.itertuples():
            frame = points.get((run.experiment, run.variant, run.profiler, run.replicate, run.metric))
            if frame is not None:
                series.append(_post_warmup(frame, int(run.warmup_units)))
        fit = pooled_slope(series, confidence=confidence, n_boot=n_boot, seed=_group_seed(seed, key))
        with_slope = group[group["slope"].notna()]
        basis = with_slope if len(with_slope) else group
        n_units = int(basis["n_units"].median()) if len(basis) else 0
        level = _median(basis["level"])
        retained = _median(basis["retained"]) if releases else math.nan
        name, reason = verdict(fit.slope, fit.ci_low, fit.ci_high, n_units, fit.n_replicates, level,
                               retained, releases, limits[metric], min_relative, metric, unit)
        rows.append({
            "experiment": experiment, "variant": variant, "profiler": profiler, "metric": metric,
            "unit": unit, "growth_per_unit": fit.slope, "ci_low": fit.ci_low, "ci_high": fit.ci_high,
            "ci_method": fit.ci_method, "ts_ci_low": fit.ts_ci_low, "ts_ci_high": fit.ts_ci_high,
            "boot_ci_low": fit.boot_ci_low, "boot_ci_high": fit.boot_ci_high,
            "n_replicates": fit.n_replicates, "n_units": n_units,
            "warmup_units": int(group["warmup_units"].iloc[0]), "level": level, "retained": retained,
            "leak_per_unit": float(limits[metric]["leak_per_unit"]),
            "retained_threshold": float(limits[metric]["retained"]),
            "verdict": name, "verdict_reason": reason,
        })
    return pd.DataFrame(rows, columns=POOLED_COLUMNS)


def mover_difference(a: float, a_low: float, a_high: float,
                     b: float, b_low: float, b_high: float) -> tuple[float, float]:
    """Interval of a - b from independent intervals of a and b (MOVER, Zou & Donner 2008).

    Each side's interval is used as it is (asymmetric, whatever method gave it), so the
    difference is as honest as the pooled intervals are; NaN when either is missing.
    """
    values = (a, a_low, a_high, b, b_low, b_high)
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    diff = a - b
    return (diff - math.hypot(a - a_low, b_high - b), diff + math.hypot(a_high - a, b - b_low))


def rank_test(slopes: Sequence[float], baseline_slopes: Sequence[float]) -> float:
    """Two-sided Mann–Whitney p-value of the replicate slopes against the baseline's.

    NaN with fewer than 2 slopes on a side.  With few replicates the p-value comes from
    all permutations, ties included (scipy's default switches to the normal
    approximation on ties, which with 2 vs 2 gives p = 0.19 where the exact floor is
    1/3).  That floor is the point: 2 vs 2 replicates cannot go below p = 1/3, 3 vs 3
    below 0.1, 4 vs 4 below 0.029.
    """
    a = np.asarray([s for s in slopes if not math.isnan(s)], dtype=float)
    b = np.asarray([s for s in baseline_slopes if not math.isnan(s)], dtype=float)
    if a.size < 2 or b.size < 2:
        return math.nan
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    method = PermutationMethod(n_resamples=np.inf) if math.comb(a.size + b.size, a.size) <= 20_000 else "auto"
    return float(mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)


def compare_to_baseline(units_or_per_run: pd.DataFrame, pooled: pd.DataFrame,
                        baselines: Mapping[str, str]) -> pd.DataFrame:
    """Each variant against its experiment's baseline, per profiler and metric.

    ``units_or_per_run`` is either the ``units`` table (replicate slopes are then fitted
    with the warm-ups recorded in ``pooled``) or ``replicate_slopes``' output; it feeds
    the rank test.  The difference's interval (``diff_ci_method`` ``mover``) combines the
    two pooled intervals rather than resampling 2-3 replicates per side, whose
    percentile interval cannot be wider than the spread of the slopes; with 3 or more
    replicates the pooled intervals already include the bootstrap over replicates.
    The baseline's own row is left out (a variant against itself says nothing).
    """
    if pooled.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    per_run = units_or_per_run
    if "slope" not in per_run.columns:
        warmups = pooled.groupby("experiment")["warmup_units"].first().astype(int).to_dict()
        per_run = replicate_slopes(units_or_per_run, warmups)
    slopes = {key: frame["slope"].to_list() for key, frame in per_run.groupby(GROUP_KEYS)}
    rows = []
    for (experiment, profiler, metric), group in pooled.groupby(["experiment", "profiler", "metric"], sort=True):
        baseline = baselines.get(experiment)
        base = group[group["variant"] == baseline]
        if base.empty:
            continue
        b = base.iloc[0]
        base_slopes = slopes.get((experiment, baseline, profiler, metric), [])
        for row in group[group["variant"] != baseline].itertuples():
            g, gb = float(row.growth_per_unit), float(b["growth_per_unit"])
            low, high = mover_difference(g, row.ci_low, row.ci_high, gb, b["ci_low"], b["ci_high"])
            rows.append({
                "experiment": experiment, "variant": row.variant, "baseline": baseline,
                "profiler": profiler, "metric": metric, "unit": row.unit,
                "growth_per_unit": g, "ci_low": row.ci_low, "ci_high": row.ci_high,
                "baseline_growth_per_unit": gb, "baseline_ci_low": b["ci_low"], "baseline_ci_high": b["ci_high"],
                "difference": g - gb, "diff_ci_low": low, "diff_ci_high": high, "diff_ci_method": "mover",
                "ratio": g / gb if gb != 0 and not math.isnan(gb) else math.nan,
                "rank_test_p": rank_test(slopes.get((experiment, row.variant, profiler, metric), []), base_slopes),
                "n_replicates": row.n_replicates, "baseline_n_replicates": int(b["n_replicates"]),
                "verdict": row.verdict, "baseline_verdict": b["verdict"],
            })
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
