"""Confirmation beyond the window, and the horizon a verdict covers.

Some growth cannot be told apart within a fixed window: a bounded growth whose plateau
lies past the run's end (DuckDB 1.4.4's heap with 10,000-row tables levels off only
after ~3,000 dropped tables), a leak that starts late or slows down.  An experiment
that sets ``confirm: {horizon: H}`` runs its plain runs configured for H times their
length; the runner (``leaklab.measure.stopping.Watcher``) judges the run at the window's end
and, while the verdict still depends on what follows (``pending``), again at looks
beyond it (``confirm_looks``), and stops the program as soon as it does not: its
recent rate is decided, or the horizon is reached.  ``confirm: {leak: true}`` also
holds every leak until a look past the window shows it still growing.

The tables then judge everything the run observed, and say so (``annotate``):
``units_observed`` (the horizon the verdict covers), ``confirmation`` (how the runs
ended: ``window``, ``confirmed``, ``horizon``), and for a bounded growth where it
levelled off and at what level (``levelled_off_unit``, ``plateau_level``).  They also
say when the runs a verdict was computed from did not all end ``ok``
(``runs_not_ok``: ``crashed x2``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leaklab.model.sequential import LOOK_GROWTH, decisive

NOT_YET = "growing, not yet shown to keep its pace (a longer confirm horizon decides): "  # a leak held for confirmation
STOP_REASONS = ("window", "confirmed", "horizon")  # how a confirmed run ended (meta.json ``stop_reason``)
RUN_KEYS = ["experiment", "variant", "profiler"]


def confirm_looks(window: int, horizon: int, warmup: int, growth: float = LOOK_GROWTH) -> list[int]:
    """Units (counted from the start) at which a run is judged from its window's end
    on: the window's end, then ``growth`` times as many units after the warm-up each
    time, and the horizon.  Fixed before the run."""
    found, n = [], max(1, window - warmup)
    while warmup + n < horizon:
        found.append(warmup + n)
        n = max(n + 1, math.ceil(n * growth))
    return found + [horizon]


def pending(judgement, bar: float, confirm_leak: bool = False) -> bool:
    """Whether a verdict depends on what follows the units it was judged on.

    An ``inconclusive`` verdict; the verdict's own ``needs_confirmation`` when the rule
    gives one; otherwise growth that slows down (``decelerating``) while its
    recent rate (the late half) is not yet shown below the bar.  A ``leak`` is pending
    when it is not decisive (``sequential.decisive``: the late half keeps the early
    half's pace) or, with ``confirm_leak``, at the window's end; a ``retention`` while a
    leak is not ruled out."""
    verdict = judgement.verdict
    if verdict == "leak" and (confirm_leak or not decisive(judgement)):
        return True
    if verdict == "retention" and not decisive(judgement, bar):
        return True
    if verdict == "inconclusive":
        return True
    own = getattr(judgement, "needs_confirmation", None)
    if own is not None:
        return bool(own)
    late = judgement.windows.late
    recent_below = late is not None and not math.isnan(late.ci_high) and late.ci_high < bar
    return bool(judgement.windows.decelerating) and not recent_below


def levelled_off(x: np.ndarray, y: np.ndarray, candidates: int = 200) -> tuple[float, float]:
    """Where a bounded growth levelled off and at what level: the knee of a hinge fitted
    by least squares (a straight climb up to the knee, flat after it; ``candidates``
    knees tried over the points) and the median reading from it on, the series first smoothed by a running median of 5
    points so that a few readings taken mid-task do not move it.  NaN with fewer than 8 points."""
    order = np.argsort(x)
    x, y = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    if x.size < 8:
        return math.nan, math.nan
    smooth = pd.Series(y).rolling(5, center=True, min_periods=1).median().to_numpy()
    best, knee = math.inf, math.nan
    for k in np.unique(x[np.linspace(0, x.size - 2, min(candidates, x.size - 1)).astype(int)]):
        hinge = np.minimum(x - k, 0.0)
        design = np.column_stack([np.ones_like(x), hinge])
        coef, *_ = np.linalg.lstsq(design, smooth, rcond=None)
        error = float(np.sum((design @ coef - smooth) ** 2))
        if error < best:
            best, knee = error, float(k)
    return knee, float(np.median(y[x >= knee]))  # the level: the median reading from the knee on


def _statuses(runs: pd.DataFrame) -> dict[tuple, str]:
    """Per experiment x variant x profiler: the runs that did not end ``ok``, as ``crashed x2``."""
    if runs.empty or "status" not in runs:
        return {}
    out = {}
    for key, group in runs[runs["status"] != "ok"].groupby(RUN_KEYS):
        counts = group["status"].value_counts()
        out[key] = ", ".join(f"{status} x{count}" for status, count in counts.items())
    return out


def _stop_reasons(runs: pd.DataFrame) -> dict[tuple, str]:
    if runs.empty or "stop_reason" not in runs:
        return {}
    confirmed = runs[runs["stop_reason"].isin(STOP_REASONS)]
    return {key: ",".join(group.sort_values("replicate")["stop_reason"].astype(str))
            for key, group in confirmed.groupby(RUN_KEYS)}


def annotate(growth: pd.DataFrame, units: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The growth table with the horizon each verdict covers and the state of its runs
    (the columns in the module docstring).  ``plateau_level`` is kept where the rule
    already gives it."""
    if growth.empty:
        return growth
    growth = growth.copy()
    statuses, reasons = _statuses(runs), _stop_reasons(runs)
    last = units.groupby([*RUN_KEYS, "metric"])["unit"].max() if not units.empty else pd.Series(dtype=float)
    has_plateau = "plateau_level" in growth
    observed, where, level, not_ok, ended = [], [], [], [], []
    for row in growth.itertuples():
        key = (row.experiment, row.variant, row.profiler)
        observed.append(float(last.get((*key, row.metric), math.nan)))
        unit, plateau = math.nan, math.nan
        if row.verdict == "settling" and not units.empty:
            points = units[(units["experiment"] == row.experiment) & (units["variant"] == row.variant)
                           & (units["profiler"] == row.profiler) & (units["metric"] == row.metric)
                           & (units["unit"] > row.warmup_units)]
            unit, plateau = levelled_off(points["unit"].to_numpy(), points["value"].to_numpy())
        where.append(unit)
        level.append(plateau)
        not_ok.append(statuses.get(key, ""))
        ended.append(reasons.get(key, ""))
    growth["units_observed"] = observed
    growth["levelled_off_unit"] = where
    if has_plateau:
        growth["plateau_level"] = growth["plateau_level"].where(growth["plateau_level"].notna(), level)
    else:
        growth["plateau_level"] = level
    growth["confirmation"] = ended
    growth["runs_not_ok"] = not_ok
    return provisional(growth)


def provisional(growth: pd.DataFrame) -> pd.DataFrame:
    """A ``leak`` that needs confirmation reads ``inconclusive`` until its runs reach
    their horizon: growth above the bar that has not shown it keeps its pace is what a
    curve levelling off past the window looks like too (a saturation over 2-5 windows
    was such a leak in 70 % of its windows), and a bounded growth must never read
    ``leak``.  At the horizon (a run's ``stop_reason`` ``horizon``) no longer run can
    decide, and the rule's ``leak`` stands, saying how far it was seen; so it does for
    runs that were not watched for confirmation (their horizon is their window)."""
    if growth.empty or "needs_confirmation" not in growth:
        return growth
    growth = growth.copy()
    ended = growth["confirmation"].fillna("").astype(str) if "confirmation" in growth \
        else pd.Series("", index=growth.index)
    # runs not watched for confirmation (no ``confirm`` configured) have their window as
    # their horizon: the rule's leak stands there, its reason saying it needs confirmation
    held = (growth["verdict"] == "leak") & growth["needs_confirmation"].fillna(False).astype(bool) \
        & (ended != "") & ~ended.str.contains("horizon")
    growth.loc[held, "verdict_reason"] = NOT_YET + growth.loc[held, "verdict_reason"].astype(str)
    growth.loc[held, "verdict"] = "inconclusive"
    return growth


def carry(verdicts: pd.DataFrame, growth: pd.DataFrame, rows: pd.Series) -> pd.DataFrame:
    """The variant verdicts with the horizon columns of the growth row that decided each."""
    columns = ["units_observed", "levelled_off_unit", "plateau_level", "confirmation", "runs_not_ok"]
    if verdicts.empty or not set(columns) <= set(growth.columns):
        return verdicts
    picked = growth.loc[rows.to_numpy(), columns].reset_index(drop=True)
    return pd.concat([verdicts.reset_index(drop=True), picked], axis=1)
