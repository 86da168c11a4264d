"""The fits a verdict is taken on: the whole window, its halves, the recent part.

``fit_windows`` turns each replicate's (unit, value) points after the warm-up into the
pooled slopes and mean rates the rule in ``leaklab.model.verdicts`` reads: the whole
window, the early and late halves, the recent part (after an early fall or from a late
onset, ``change_point``), whether the halves slow down (``_slower``), keep their pace
(``keeps_pace``) or show the late half slower by mean rates (``late_slower``; than the
first quarter: ``late_slower_than_start``).  Fitting lives apart from deciding so the
rule reads as a list of conditions on these values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from leaklab.model.intervals import (CONFIDENCE, MIN_UNITS, N_BOOT, PooledSlope, mover_difference,
                                     pooled_slope, rate_interval, rate_ratio_bound)

DECELERATION_CONFIDENCE = 0.80
MAX_FELL_AT = 1 / 3  # a decelerating window is a leak only when its slope fell within this share of it
MAX_LATE_SHARE = 0.8  # decelerating: the late half grows at most this share of the early half's rate
MIN_RECENT_UNITS = 5  # the recent part and a change point's segments have at least this many units
SLOWING_CONFIDENCE = 0.99  # mean rates: the late half below the early half at this (two-sided) confidence
RESOLUTION_SHARE = 0.25  # a run's deviations from its line all within this share of the bar: not noise to correct
FINAL_SHARE = 0.95  # a leak is final in its window only when its late half keeps this share of its early pace

@dataclass(frozen=True)
class Windows:
    """Pooled fits of the whole post-warm-up window, of its halves and of its recent
    part, and where growth began when it began late."""

    whole: PooledSlope
    early: PooledSlope | None = None       # 95 %
    late: PooledSlope | None = None        # 95 %
    decelerating: bool = False             # the late half slower than the early half (halves test)
    n_units: int = 0
    recent: PooledSlope | None = None      # 95 %: the late half, or from a change point (fit_windows)
    slowing: bool = False                  # the recent part's late half slower than its early half
    onset: float = math.nan                # the unit where growth began, when it began late
    fell_at: float = math.nan              # where the slope fell, as a share of the window (the recent part's start)
    plateau: float = math.nan              # the recent part's level (median over runs)
    since: PooledSlope | None = None       # mean rate from the onset, the early fall, or the window's start
    since_late: PooledSlope | None = None  # mean rate of the late half of that stretch
    late_rate: PooledSlope | None = None   # mean rate of the window's late half
    stopping: bool = False                 # the stretch's late half shown slower than its early half (mean rates)
    keeps_pace: bool = False               # the stretch's late half shown at FINAL_SHARE of its early half's pace
    late_slower: bool = False              # the window's late half shown slower than its early half (mean rates)
    late_slower_than_start: bool = False   # ... than its first quarter (mean rates): a climb that levelled off early


def _halves(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[list, list] | None:
    """Each run's points split into an early and a late half; None when a half would
    be too short for a slope."""
    early, late = [], []
    for x, y in series:
        half = len(x) // 2
        if half < MIN_UNITS:
            return None
        early.append((x[:half], y[:half]))
        late.append((x[half:], y[half:]))
    return early, late


def _split(series: Sequence[tuple[np.ndarray, np.ndarray]], start: float) -> tuple[list, list] | None:
    """Each run's points before ``start`` and from it on; None when the part from it on
    is shorter than MIN_RECENT_UNITS in any run."""
    before, after = [], []
    for x, y in series:
        if np.count_nonzero(x >= start) < MIN_RECENT_UNITS:
            return None
        before.append((x[x < start], y[x < start]))
        after.append((x[x >= start], y[x >= start]))
    return before, after


def _slower(earlier: PooledSlope, later: PooledSlope) -> bool:
    """The later stretch grows at most MAX_LATE_SHARE of the earlier one's rate and their
    difference is above zero at DECELERATION_CONFIDENCE (MOVER)."""
    low, _ = mover_difference(earlier.slope, earlier.ci_low, earlier.ci_high, later.slope, later.ci_low, later.ci_high)
    return bool(low > 0 and later.slope <= MAX_LATE_SHARE * earlier.slope)


def change_point(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The unit where the slope changes most and by how much (after minus before), by
    least squares on a broken line with one knot and an intercept per run (runs differ
    in level); NaN without room for MIN_RECENT_UNITS units on each side.
    Deterministic: every unit is tried as the knot."""
    units = np.unique(np.concatenate([x for x, _ in series]))
    candidates = units[MIN_RECENT_UNITS - 1: units.size - MIN_RECENT_UNITS + 1]
    best, change, best_sse = math.nan, math.nan, math.inf
    for knot in candidates:
        design, target = [], []
        for x, y in series:
            columns = np.column_stack([x, np.maximum(0.0, x - knot)])
            design.append(columns - columns.mean(axis=0))
            target.append(y - y.mean())
        a, b = np.vstack(design), np.concatenate(target)
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        sse = float(np.sum((b - a @ coef) ** 2))
        if sse < best_sse:
            best, change, best_sse = float(knot), float(coef[1]), sse
    return best, change


def fit_windows(series: Sequence[tuple[np.ndarray, np.ndarray]], *, confidence: float = CONFIDENCE,
                n_boot: int = N_BOOT, seed: int | Sequence[int] = 0, bar: float = math.nan) -> Windows:
    """The fits the rule needs, from each run's (unit, value) points after the warm-up.

    The recent part is the late half; or, when the slope changes at a unit of the early
    half (fast growth first: a transient, an allocator filling), everything from there;
    or, when growth began late (``bar`` given: below it before the change, above it
    after), everything from the onset.  ``slowing``: the recent part's own halves
    decelerate (``_slower``), i.e. it is still bending down.
    """
    clean = []
    for x, y in series:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() >= MIN_UNITS:
            clean.append((x[ok], y[ok]))
    resolution = RESOLUTION_SHARE * bar if math.isfinite(bar) else 0.0
    whole = pooled_slope(clean, confidence=confidence, n_boot=n_boot, seed=seed, resolution=resolution)
    n_units = int(np.median([x.size for x, _ in clean])) if clean else 0
    halves = _halves(clean) if clean else None
    if halves is None:
        return Windows(whole, n_units=n_units)
    fit = {"confidence": confidence, "n_boot": n_boot, "seed": seed, "resolution": resolution}
    strict = {"confidence": DECELERATION_CONFIDENCE, "n_boot": n_boot, "seed": seed, "resolution": resolution}
    early_points, late_points = halves
    early, late = pooled_slope(early_points, **fit), pooled_slope(late_points, **fit)
    decelerating = _slower(pooled_slope(early_points, **strict), pooled_slope(late_points, **strict))
    windows = Windows(whole, early, late, decelerating=decelerating, n_units=n_units)
    if 2 * MIN_RECENT_UNITS > n_units:
        return windows
    start = late_start = float(min(x[0] for x, _ in late_points))
    knot, change = change_point(clean)
    onset = fell_at = math.nan
    if math.isfinite(knot) and change > 0 and math.isfinite(bar):
        parts = _split(clean, knot)
        if parts is not None:
            before, after = (pooled_slope(p, **fit) for p in parts)
            if before.slope < bar and after.ci_low > bar:
                onset, start = knot, knot
    elif math.isfinite(knot) and change < 0 and knot < start:
        first = min(x[0] for x, _ in clean)
        start, fell_at = knot, (knot - first) / (max(x[-1] for x, _ in clean) - first)
    parts = _split(clean, start)
    if parts is None:
        return windows
    recent_points = parts[1]
    recent = pooled_slope(recent_points, **fit)
    recent_halves = _halves(recent_points)
    slowing = False
    if recent_halves is not None:
        first, second = (pooled_slope(p, **strict) for p in recent_halves)
        slowing = _slower(first, second)
    plateau = float(np.median([np.median(y) for _, y in recent_points]))
    windows = replace(windows, recent=recent, slowing=slowing, onset=onset, fell_at=fell_at, plateau=plateau,
                      keeps_pace=_keeps_pace(early, late))
    return _since(windows, clean, early_points, late_points, onset if math.isfinite(onset) else late_start if fell_at <= MAX_FELL_AT else
                  -math.inf, confidence=confidence, n_boot=n_boot, seed=seed)


def _shown_slower(earlier: list, later: list, **fit) -> bool:
    """The later stretch's mean rate shown below the earlier one's at SLOWING_CONFIDENCE."""
    return bool(rate_ratio_bound(earlier, later, 1.0, confidence=SLOWING_CONFIDENCE, **fit)[1] < 0)


def _keeps_pace(earlier: PooledSlope, later: PooledSlope) -> bool:
    """The later stretch grows at FINAL_SHARE of the earlier one's rate or more: the
    MOVER interval of later - FINAL_SHARE x earlier (median slopes) lies above zero."""
    low, _ = mover_difference(later.slope, later.ci_low, later.ci_high, FINAL_SHARE * earlier.slope,
                              FINAL_SHARE * earlier.ci_low, FINAL_SHARE * earlier.ci_high)
    return bool(low > 0)


def _since(windows: Windows, clean: list, early_points: list, late_points: list, start: float, *,
           confidence: float, n_boot: int, seed: int | Sequence[int]) -> Windows:
    """The mean-rate fits (``intervals.rate_interval``) of the stretch from ``start``
    (the onset; the late half after an early fall, clear of what is left of a
    transient; or the window's start) and of its halves: what a leak
    is decided on, so that growth in jumps is read as what it costs per unit, with the
    variance of its jumps.  ``stopping``: the late half's rate is below the early
    half's at SLOWING_CONFIDENCE and at most MAX_LATE_SHARE of it; ``keeps_pace``: it
    is above FINAL_SHARE of it at ``confidence``."""
    parts = _split(clean, start)
    stretch = parts[1] if parts is not None else clean
    fit = {"n_boot": n_boot, "seed": seed}
    since = rate_interval(stretch, confidence=confidence, **fit)
    late_rate = rate_interval(late_points, confidence=confidence, **fit)
    quarters = _halves(early_points)
    windows = replace(windows, since=since, late_rate=late_rate,
                      late_slower=_shown_slower(early_points, late_points, **fit),
                      late_slower_than_start=quarters is not None and _shown_slower(quarters[0], late_points, **fit))
    halves = _halves(stretch)
    if halves is None:
        return windows
    early, late = halves
    since_late = rate_interval(late, confidence=confidence, **fit)
    since_early = rate_interval(early, confidence=confidence, **fit)
    _, slower_high = rate_ratio_bound(early, late, 1.0, confidence=SLOWING_CONFIDENCE, **fit)
    stopping = bool(slower_high < 0 and since_late.slope <= MAX_LATE_SHARE * since_early.slope)
    pace_low, _ = rate_ratio_bound(early, late, FINAL_SHARE, confidence=confidence, **fit)
    return replace(windows, since_late=since_late, stopping=stopping,
                   keeps_pace=windows.keeps_pace or bool(pace_low > 0))
