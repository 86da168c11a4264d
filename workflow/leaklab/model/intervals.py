"""Growth per unit with an honest 95 % interval: the estimator behind every verdict.

- per run: the Theil–Sen slope, with the distribution-free interval that belongs to it
  (the order statistics of the pairwise slopes that Kendall's S allows, Sen 1968);
- pooled (``pooled_slope``): the stratified Theil–Sen slope, the median of the pairwise
  slopes *within* each replicate (Sen's estimator over several series, as Hirsch, Slack
  & Smith 1982 do for seasons).  Pairs across replicates are left out on purpose: two
  runs differ in level (ASLR, arenas, page cache), and a pair that spans them would
  measure that difference, not growth.  Its interval (``theil-sen``) comes from the
  summed Kendall S of the replicates.  With 3 or more replicates
  (``bootstrap-replicates``) the replicates are also resampled with replacement
  (seeded) and the interval is the hull of that percentile interval and the Theil–Sen
  one: the bootstrap sees run-to-run differences that the within-run interval cannot,
  and the within-run interval keeps the bootstrap honest when runs are few;
- a difference of two slopes (``mover_difference``, Zou & Donner 2008).

Three choices keep the 95 % honest on memory series:

- the exact null distribution of Kendall's S (the inversions of a random permutation,
  convolved across replicates), not the normal approximation of
  ``scipy.stats.theilslopes``: at 3 or 4 points that approximation returns [min, max],
  which covers 67 % and 92 %, and it is NaN for constant values.  When the points cannot
  give 95 % at all (one run of 3 or 4 points, two runs of 3), the interval is NaN;
  points exactly on a line are the exception;
- serial correlation (``serial_correlation_factor``): RSS moves in steps, so the
  deviations from the line are not independent, and Var(S) is inflated accordingly;
- ties (counts, page-sized steps) shrink the variance of S, so using the untied
  distribution errs on the wide side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import norm, rankdata

MIN_UNITS = 3            # a slope needs at least this many units
MIN_BOOT_REPLICATES = 3  # below this, resampling replicates says nothing useful
CONFIDENCE = 0.95
N_BOOT = 2000
BOOT_SLOPES_PER_RUN = 2000  # order statistics a long run keeps in the bootstrap
MIN_ACF_UNITS = 6         # shorter runs give no usable autocorrelation
LINE_RESOLUTION = 1e-3   # deviations within this share of one unit's growth are a line
MAX_RHO = 0.99            # a lag-1 autocorrelation of 1 would make any interval infinite
EXACT_MAX_PAIRS = 10_000  # beyond this the normal approximation to Kendall's S is accurate


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


def serial_correlation_factor(x: np.ndarray, y: np.ndarray, slope: float, resolution: float = 0.0) -> float:
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
    earn a narrower interval.  Runs shorter than MIN_ACF_UNITS get 1, and so do runs
    whose deviations from the line all lie within ``LINE_RESOLUTION`` of one unit's
    growth: ranks ignore magnitude, so 80 bytes of malloc bookkeeping in the first two
    of nine 4 MiB steps read as a lag-1 autocorrelation near 1, and the interval of an
    exact leak came out NaN.  ``resolution`` (bytes or counts) extends that to a flat run:
    deviations that all lie within it are below what the verdict asks about (the caller
    passes a share of its bar), so one 4 KiB page faulted in once over a flat window no
    longer reads as correlated noise that leaves no 95 % interval at all.
    """
    n = len(y)
    if n < MIN_ACF_UNITS or math.isnan(slope):
        return 1.0
    resid = np.asarray(y, dtype=float) - slope * np.asarray(x, dtype=float)
    if np.ptp(resid) <= max(LINE_RESOLUTION * abs(slope), resolution):
        return 1.0  # a line to within the memory's granularity: no noise to be correlated
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
                 n_boot: int = N_BOOT, seed: int | Sequence[int] = 0, resolution: float = 0.0) -> PooledSlope:
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
    factors = [serial_correlation_factor(x, y, float(np.median(d)), resolution) for (x, y), d in zip(kept, per_run)]
    ts_low, ts_high = sen_interval(slopes, sizes, confidence, factors)
    if len(kept) < MIN_BOOT_REPLICATES:
        return PooledSlope(slope, ts_low, ts_high, "theil-sen", len(kept), ts_low, ts_high)

    boot_low, boot_high = _bootstrap_replicates(per_run, confidence, n_boot, seed)
    low = min(boot_low, ts_low) if not math.isnan(ts_low) else math.nan
    high = max(boot_high, ts_high) if not math.isnan(ts_high) else math.nan
    return PooledSlope(slope, low, high, "bootstrap-replicates", len(kept), ts_low, ts_high, boot_low, boot_high)


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



# --------------------------------------------------------------------------------------
# Growth that arrives in jumps: the mean rate of a stretch and a block bootstrap
# --------------------------------------------------------------------------------------

def _block_length(m: int) -> int:
    """Consecutive increments resampled together: about m^(1/3) (Hall, Horowitz & Jing
    1995), so that an allocator step and its return, or a spike and its fall, mostly
    stay in one block."""
    return max(1, min(m, round(m ** (1 / 3))))


def rate_draws(series: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Moving-block bootstrap of a stretch's mean rate (total growth over total units,
    pooled over the runs): each run's increments resampled in blocks of consecutive
    units, ``n_boot`` draws.

    Why not only the Theil–Sen slope: when growth arrives in jumps on a few units
    (random increments, stairs), the median of pairwise slopes and its Kendall interval
    treat the jumps as serially correlated noise around a line, so the interval spans
    zero although every run grew by many times the bar.  The mean rate is what a leak
    costs per unit, and resampling the increments gives its interval the variance of
    the number and size of the jumps actually seen.  Level noise (``level_noise``) is
    kept out: inside a block the noise of consecutive readings cancels, across blocks it
    does not, so the draws are shrunk about the observed growth by the variance the
    seams added (2 Var(e) per seam), never below the 2 Var(e) the real ends carry.
    Runs with fewer than 2 points are left out; NaN draws without any."""
    dys, dxs = [], []
    for x, y in series:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if x.size >= 2:
            dys.append(np.diff(y))
            dxs.append(np.diff(x))
    if not dys:
        return np.full(n_boot, math.nan)
    grown, spanned = np.zeros(n_boot), np.zeros(n_boot)
    seams = ends = 0.0  # level noise's variance: added at the seams between blocks; carried by the real ends
    for dy, dx in zip(dys, dxs):
        m = dy.size
        block = _block_length(m)
        blocks = math.ceil(m / block)
        starts = rng.integers(0, m - block + 1, size=(n_boot, blocks))
        index = (starts[:, :, None] + np.arange(block)).reshape(n_boot, -1)[:, :m]
        grown += dy[index].sum(axis=1)
        spanned += dx[index].sum(axis=1)
        noise = level_noise(dy)
        seams += 2.0 * (blocks - 1) * noise
        ends += 2.0 * noise
    spread = float(np.var(grown))
    if seams > 0 and spread > 0:  # shrink the draws about the observed growth by what the seams added
        observed = float(sum(dy.sum() for dy in dys))
        grown = observed + (grown - float(np.mean(grown))) * math.sqrt(max(ends, spread - seams) / spread)
    return grown / spanned


def level_noise(dy: np.ndarray) -> float:
    """The variance of a reading's noise around its level, from one run's increments.

    A reading is the level plus noise e_t, so an increment is growth plus e_t - e_{t-1}:
    level noise gives the increments negative autocovariances that add up to -Var(e)
    over the lags the noise is correlated for (white noise: all of it at lag 1,
    autocorrelation -1/2 when the noise dominates), growth in jumps about 0.  The lags
    looked at are the block bootstrap's own (``_block_length``): DuckDB 1.4.4's heap,
    read every 25 dropped tables, moves in pairs of readings, so its increments'
    autocorrelation is 0 at lag 1 and -0.44 at lag 2.  Counted only when their sum is
    below -2 sqrt(L/m), beyond what chance gives independent increments (Bartlett: sd
    1/sqrt(m) per lag); else 0, and the interval stays as wide as the plain
    bootstrap's.  Var(e) is then read from the variogram of the levels, V(k) =
    E[(y_{t+k} - y_t)^2] = 2 Var(e) + k tau^2 beyond the noise's reach (tau^2: what
    independent jumps add per unit), extrapolated to k = 0 from k = L and 2L, and never
    above twice the autocovariances' sum (with L = 1 both are the lag-1 estimate)."""
    m = dy.size
    if m < MIN_ACF_UNITS:
        return 0.0
    lags = _block_length(m)
    centred = dy - dy.mean()
    spread = float(centred @ centred)
    if spread <= 0:
        return 0.0
    autocov = sum(float(centred[:-k] @ centred[k:]) for k in range(1, lags + 1))
    if autocov / spread >= -2.0 * math.sqrt(lags / m):
        return 0.0
    level = np.concatenate([[0.0], np.cumsum(centred)])

    def variogram(k: int) -> float:
        return float(np.mean((level[k:] - level[:-k]) ** 2))

    return min(max(0.0, variogram(lags) - variogram(2 * lags) / 2), -2.0 * autocov / m)


def mean_rate(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Total growth over total units of the runs (each run's last minus first point)."""
    grown = spanned = 0.0
    for x, y in series:
        if len(x) >= 2:
            grown += float(y[-1] - y[0])
            spanned += float(x[-1] - x[0])
    return grown / spanned if spanned > 0 else math.nan


def rate_interval(series: Sequence[tuple[np.ndarray, np.ndarray]], *, confidence: float = CONFIDENCE,
                  n_boot: int = N_BOOT, seed: int | Sequence[int] = 0) -> PooledSlope:
    """The mean rate of a stretch with its block-bootstrap percentile interval
    (``rate_draws``), seeded so the same data give the same interval."""
    draws = rate_draws(series, n_boot, np.random.default_rng(seed))
    runs = sum(1 for x, _ in series if len(x) >= 2)
    if np.isnan(draws).any():
        return PooledSlope(math.nan, math.nan, math.nan, "none", runs)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return PooledSlope(mean_rate(series), float(low), float(high), "block-bootstrap", runs)


def rate_ratio_bound(earlier: Sequence[tuple[np.ndarray, np.ndarray]], later: Sequence[tuple[np.ndarray, np.ndarray]],
                     share: float, *, confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                     seed: int | Sequence[int] = 0) -> tuple[float, float]:
    """Interval of ``later - share x earlier`` mean rates, both stretches resampled
    independently (``rate_draws``): above zero, the later stretch keeps at least
    ``share`` of the earlier one's pace; below, it has slowed to less."""
    rng = np.random.default_rng(seed)
    first, second = rate_draws(earlier, n_boot, rng), rate_draws(later, n_boot, rng)
    if np.isnan(first).any() or np.isnan(second).any():
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(second - share * first, [tail, 1.0 - tail])
    return float(low), float(high)
