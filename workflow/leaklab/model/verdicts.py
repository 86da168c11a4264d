"""Verdicts: what a growth interval means, decided by one stated rule.

The estimator and its 95 % interval are ``leaklab.model.intervals``.  A verdict is taken on
the series after the warm-up, pooled over the replicates, in three windows: the whole
window, its early half and its late half.  ``leak_per_unit`` is the smallest steady
growth an experiment must catch; the intervals are held against half of it
(``DECISION_FRACTION``), so that a leak at the threshold is caught although its
interval is as wide as the threshold, and ``stable`` means demonstrably below half of it.

The verdict is about where the growth is going.  Besides the whole window and its
halves, the rule reads the *recent* rate: the late half; or everything from a change
point in the early half where the slope fell (fast growth first: a transient, an
allocator filling); or everything from a late *onset* (the slope rose at a change
point, below the bar before and with its interval above it after; ``onset`` is that
unit).  The change point is the knot of the least-squares broken line (one intercept
per run), every unit tried.  *Slowing* means the recent part's own halves decelerate.

The rule (``decide_confirmable``; ``decide`` without the flag), in order:

- ``inconclusive`` when fewer than ``MIN_UNITS`` units or no 95 % interval;
- ``leak``: growth since it began (the *stretch*: from a late onset; the late half after
  a sharp early fall, within the first ``MAX_FELL_AT`` of the window, clear of what is
  left of a transient; else the whole window) is above the bar, by its mean rate's
  interval (``intervals.rate_interval``: total growth over total units, block
  bootstrap over units, so growth in jumps counts with the variance of its jumps) or the
  whole window's median-slope interval, with the median slope at the bar (a sawtooth's
  phase at the window's ends moves a mean rate, not a median); and it keeps going: the
  stretch's late half is not shown below the bar, nor shown slower than its early half
  (``stopping``: at ``SLOWING_CONFIDENCE``, two-sided, and at most ``MAX_LATE_SHARE`` of
  its rate; strict, because a jump process slows by chance); after an early fall, also
  not ``slowing`` by median slopes (the late half alone is too short to show a smooth
  curve still bending: on seed 0 two saturating curves of the ``settling`` class passed
  without it).  A leak is *final* only when its halves keep ``FINAL_SHARE`` of their pace
  (``keeps_pace``); else it needs confirmation: a curve saturating with a time constant
  of 2-5 windows slows by 10-22 % between one window's halves, a straight line to the
  eye (the tables write such a leak ``inconclusive`` until its horizon:
  ``horizon.provisional``).  After an early fall a slowing (``stopping``, ``slowing``)
  counts only when the window's halves show it too (``late_slower``, ``decelerating``):
  a leak whose rate swings slows over half a period and speeds up over the next;
- ``inconclusive``, needing confirmation, when the recent interval lies above the bar
  otherwise (slowing but not yet below it; growth that began late without a clear onset);
- ``retention``: the experiment's units release their memory, it kept at least the
  ``retained`` threshold, and it is not a leak;
- ``stable``: the whole window's interval lies below the bar (unless the early half
  grew above the bar and the late half is below it: that is ``settling``);
- ``settling``: it grew above the bar (whole window, early half or mean rate) and the
  late half lies below the bar by its median slope's interval *and* its mean rate, and
  its mean rate is shown below the early half's at ``SLOWING_CONFIDENCE``
  (``_stopped``, ``late_slower``: positive evidence; a late half between two jumps is
  not a plateau, and a few jumps before it do not show it slower).
  An estimate below the bar without that is ``inconclusive``, needing confirmation.
  Never while the recent interval lies above the bar;
- ``inconclusive``: anything else (an interval straddling the bar); needing
  confirmation when it grew above the bar but is not yet shown to have stopped.

``needs_confirmation`` says the verdict depends on what happens after the window: a
leak that began late or does not show it keeps its pace, a rate slowing but not yet
below the bar, growth levelling off but not yet shown below it.  ``plateau`` is the
recent part's level (median over the runs), reported for ``settling``.

*Decelerates* (``_slower``) means the later stretch grows at most ``MAX_LATE_SHARE`` of the earlier
one's rate and their difference is above zero at ``DECELERATION_CONFIDENCE`` (MOVER
of the two intervals at that confidence).  80 % two-sided is 90 % one-sided: in
the accuracy tier (seeds 0-2, 200 draws each) it called none of 5,400 linear and
sawtooth leaks settling, and 1 of 7,200 saturating curves (5 % rise, time constant as
long as the run) a leak; at 90 % seed 1 alone had such a leak.  The share keeps a sawtooth leak a leak: its halves cut the teeth at
different phases, so their rates differ by up to 20 % without slowing down.
With fewer than 2 x ``MIN_UNITS`` units after the warm-up there are no halves and the
whole window decides alone; with fewer than 2 x ``MIN_RECENT_UNITS``, no recent part.

One decision per family (``settings.FAMILIES``): RSS, PSS and USS of a run measure the
same memory, so the first of them decides and the others carry its verdict.  A
variant's verdict (``variant_verdicts``) is the most severe of its deciding metrics
(system-wide ones never decide).  Profiled runs carry the profiler's own memory in
their RSS and run a scaled workload: they are never judged.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leaklab.model import settings as leaklab_settings
from leaklab.model.amounts import amount, byte_unit, plain_number, plural
from leaklab.model.intervals import (CONFIDENCE, MIN_UNITS, N_BOOT, PooledSlope, pairwise_slopes,
                                     sen_interval,
                                     serial_correlation_factor)
from leaklab.model.windows import MAX_FELL_AT, Windows, fit_windows

RUN_KEYS = ["experiment", "variant", "profiler", "replicate"]
GROUP_KEYS = ["experiment", "variant", "profiler", "metric"]
VERDICTS = ("leak", "retention", "settling", "inconclusive", "stable")  # most severe first
DECISION_FRACTION = 0.5
SIZE_SHARE = 0.5  # a leak is named by a metric that sees at least this share of the largest growth

PER_RUN_COLUMNS = [*RUN_KEYS, "metric", "warmup_units", "n_units", "slope", "slope_low", "slope_high",
                   "level", "retained", "first_unit", "last_unit"]
POOLED_COLUMNS = [*GROUP_KEYS, "unit", "growth_per_unit", "ci_low", "ci_high", "ci_method",
                  "ts_ci_low", "ts_ci_high", "boot_ci_low", "boot_ci_high", "n_replicates", "n_units",
                  "warmup_units", "level", "retained", "leak_per_unit", "retained_threshold",
                  "early_growth_per_unit", "late_growth_per_unit", "late_ci_low", "late_ci_high", "decelerating",
                  "verdict", "verdict_reason", "decided_by", "decides",
                  "recent_per_unit", "recent_ci_low", "recent_ci_high", "onset_unit", "needs_confirmation",
                  "plateau_level"]
VARIANT_COLUMNS = ["experiment", "variant", "profiler", "verdict", "metric", "unit", "growth_per_unit", "ci_low",
                   "ci_high", "leak_per_unit", "retained", "retained_threshold", "verdict_reason"]


# --------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Judgement:
    verdict: str
    reason: str
    windows: Windows
    needs_confirmation: bool = False


def _rate(value: float, metric: str, unit: str) -> str:
    return f"{amount(value, metric)}/{unit}"


def _ci_text(low: float, high: float, metric: str, unit: str) -> str:
    if metric.endswith("_bytes"):
        name, size = byte_unit(max(abs(low), abs(high)) if math.isfinite(low + high) else 0.0)
        return f"CI [{plain_number(low / size)}, {plain_number(high / size)}] {name}/{unit}"
    return f"CI [{plain_number(low)}, {plain_number(high)}]/{unit}"


def decide(w: Windows, *, leak_per_unit: float, retained_threshold: float, releases: bool, retained: float,
           metric: str, unit: str = "unit") -> tuple[str, str]:
    """The verdict and a one-line reason (the rule in the module docstring)."""
    verdict, reason, _ = decide_confirmable(w, leak_per_unit=leak_per_unit, retained_threshold=retained_threshold,
                                            releases=releases, retained=retained, metric=metric, unit=unit)
    return verdict, reason


def _stopped(w: Windows, bar: float) -> bool:
    """Positive evidence that growth stopped: the window's late half lies below the bar
    by its median slope's interval, and its mean rate (the jumps it had, counted) is
    below the bar too.  The mean rate's own interval is not asked to be: resampling
    increments, it counts level noise (a heap that moves up and down by kilobytes from
    one reading to the next) as if it were growth, and over thousands of units its
    interval spans the bar whatever the heap does (DuckDB 1.4.4's late half: +42 B/table,
    interval [-203, 238] for a median slope of +22 [3, 41]).  And the late half is shown
    slower than the early half by mean rates (``late_slower``): a jump process's quiet
    stretch is below the bar by every estimate of its own, but not slower than a few
    random jumps before it at 99 %.  Or slower than the first quarter
    (``late_slower_than_start``): a climb that levelled off early leaves its growth in a
    few units of the early half, which resampled look as uncertain as a few random jumps
    (DuckDB 1.4.4 over 11,876 dropped tables: the climb in the first 2,600, the early
    half's rate 337 B/table within [25, 668]); the quarter that holds the climb has it
    in all of its units, while a jump process's quarters are alike and a quarter is the
    shorter stretch."""
    late, rate = w.late, w.late_rate
    if late is None or math.isnan(late.ci_high) or late.ci_high >= bar:
        return False
    if rate is not None and not (w.late_slower or w.late_slower_than_start):
        return False
    return rate is None or math.isnan(rate.slope) or rate.slope < bar


def decide_confirmable(w: Windows, *, leak_per_unit: float, retained_threshold: float, releases: bool,
                       retained: float, metric: str, unit: str = "unit") -> tuple[str, str, bool]:
    """The verdict, its reason and whether it depends on what happens after the window
    (``needs_confirmation``): the rule in the module docstring."""
    f = w.whole
    if f.n_replicates == 0 or w.n_units < MIN_UNITS or math.isnan(f.slope):
        return "inconclusive", f"{w.n_units} {plural(unit)} after warm-up (< {MIN_UNITS})", False
    if math.isnan(f.ci_low) or math.isnan(f.ci_high):
        return ("inconclusive", (f"{f.n_replicates} run(s) x {w.n_units} {plural(unit)} cannot give a "
                                 f"{CONFIDENCE:.0%} interval"), False)
    bar = DECISION_FRACTION * leak_per_unit
    bar_text = f"half the {_rate(leak_per_unit, metric, unit)} threshold"
    whole = _ci_text(f.ci_low, f.ci_high, metric, unit)
    late, early, recent = w.late, w.early, w.recent
    have_halves = late is not None and early is not None and not math.isnan(late.ci_low)
    have_recent = recent is not None and not math.isnan(recent.ci_low)
    late_onset = not math.isnan(w.onset)
    late_grows = (late.ci_low > 0 and late.slope >= bar) if have_halves else True
    if not have_recent:  # a short window: the whole window and its halves decide
        if f.ci_low > bar and late_grows and not w.decelerating:
            tail = f"; late half {_rate(late.slope, metric, unit)}" if have_halves else ""
            return "leak", f"{whole} above {bar_text}{tail}", False
    else:
        since, since_late = w.since, w.since_late
        if since is not None and not math.isnan(since.ci_low):
            since_late = since_late if since_late is not None else since
            began = (f"since growth began at {unit} {w.onset:g}" if late_onset
                     else f"in the late half, after an early fall ({w.fell_at:.0%} into the window)"
                     if w.fell_at <= MAX_FELL_AT
                     else "over the window")
            since_text = (f"mean rate {began} {_rate(since.slope, metric, unit)} "
                          f"{_ci_text(since.ci_low, since.ci_high, metric, unit)}, its late half "
                          f"{_rate(since_late.slope, metric, unit)}")
            # grows: the mean rate since growth began is above the bar and the median slope agrees (a sawtooth's
            # phase at the window's ends moves the mean rate, not the median slope)
            grows = (since.ci_low > bar or f.ci_low > bar) and ((recent.slope if late_onset else f.slope) >= bar)
            # keeps going: the late half is neither shown below the bar nor shown slower than the early half
            fell = w.fell_at <= MAX_FELL_AT
            # after an early fall the stretch is the late half alone, too short to show a smooth curve still
            # bending: what follows the fall must also not slow down by its median slopes (``slowing``)
            # after an early fall, a slowing counts only when the window's halves show it too (``late_slower``,
            # ``decelerating``): a leak whose rate swings slows over one half-period and speeds up over the next,
            # growth that levels off slows at every scale
            stops = w.stopping and (not fell or w.late_slower)
            bends = fell and w.slowing and (w.late_slower or w.decelerating)
            if grows and since_late.ci_high >= bar and not stops and not bends:
                final = not late_onset and w.keeps_pace
                tail = "" if final else "; needs confirmation: it may still level off after the window"
                return "leak", f"{since_text} above {bar_text}; whole {whole}{tail}", not final
            if (grows or recent.ci_low > bar) and not _stopped(w, bar):
                return ("inconclusive", (f"slowing but still above {bar_text}: {since_text}; early half "
                                         f"{_rate(early.slope, metric, unit)}, late half "
                                         f"{_rate(late.slope, metric, unit)}; whole {whole}"), True)
    if releases and not math.isnan(retained) and retained >= retained_threshold:
        return "retention", (f"retained {amount(retained, metric)} >= {amount(retained_threshold, metric)}; "
                             f"{whole} not a leak"), False
    grew_early = have_halves and not math.isnan(early.ci_low) and early.ci_low > bar
    grew_since = w.since is not None and not math.isnan(w.since.ci_low) and w.since.ci_low > bar
    if f.ci_high < bar and not grew_since and not (grew_early and f.ci_low > 0 and late.ci_high < bar):
        return "stable", f"{whole} below {bar_text}", False
    if have_halves:
        grew = f.ci_low > bar or (not math.isnan(early.ci_low) and early.ci_low > bar) or grew_since
        now = late  # the recent part is not above the bar here; settling asks the late half to be below it
        halves = (f"early half {_rate(early.slope, metric, unit)}, late half {_rate(now.slope, metric, unit)} "
                  f"{_ci_text(now.ci_low, now.ci_high, metric, unit)}; whole {whole}")
        if _stopped(w, bar):
            return "settling", f"growth stopped (a plateau or a one-off step): {halves}", False
        if grew and now.slope < bar:
            return "inconclusive", f"levelling off, not yet shown below {bar_text}: {halves}", True
        if grew and have_recent:
            return "inconclusive", f"{whole} above {bar_text}, but {halves}", True
        if f.ci_low > bar:
            return "inconclusive", (f"{whole} above {bar_text}, but the late half, "
                                    f"{_ci_text(late.ci_low, late.ci_high, metric, unit)}, does not show it still "
                                    f"growing"), False
    return "inconclusive", f"{whole} straddles {bar_text}", False


def judge(series: Sequence[tuple[np.ndarray, np.ndarray]], *, leak_per_unit: float, retained_threshold: float = math.inf,
          releases: bool = False, retained: float = math.nan, metric: str = "rss_bytes", unit: str = "unit",
          confidence: float = CONFIDENCE, n_boot: int = N_BOOT, seed: int | Sequence[int] = 0) -> Judgement:
    """Fit and decide in one call: ``series`` is each replicate's (units, values) after the warm-up."""
    windows = fit_windows(series, confidence=confidence, n_boot=n_boot, seed=seed,
                          bar=DECISION_FRACTION * leak_per_unit)
    verdict, reason, confirm = decide_confirmable(windows, leak_per_unit=leak_per_unit,
                                                  retained_threshold=retained_threshold, releases=releases,
                                                  retained=retained, metric=metric, unit=unit)
    return Judgement(verdict, reason, windows, confirm)


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

def warmup_units(resolved: Mapping[str, leaklab_settings.ExperimentSettings]) -> dict[str, int]:
    return {name: s.warmup_units for name, s in resolved.items()}


def _warmup_for(warmup: int | Mapping[str, int], experiment: str) -> int:
    return int(warmup) if isinstance(warmup, (int, np.integer)) else int(warmup.get(experiment, 1))


def post_warmup(frame: pd.DataFrame, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    post = frame[(frame["unit"] > warmup) & frame["value"].notna()]
    return post["unit"].to_numpy(dtype=float), post["value"].to_numpy(dtype=float)


def clean_units(units: pd.DataFrame) -> pd.DataFrame:
    """One value per run x unit x metric (the last one, should a boundary repeat), sorted."""
    frame = units.dropna(subset=["unit"]).copy()
    frame["unit"] = frame["unit"].astype(float)
    frame["value"] = frame["value"].astype(float)
    frame = frame.drop_duplicates([*RUN_KEYS, "metric", "unit"], keep="last")
    return frame.sort_values([*RUN_KEYS, "metric", "unit"], kind="stable")


def replicate_slopes(units: pd.DataFrame, warmup: int | Mapping[str, int]) -> pd.DataFrame:
    """Per run x metric: Theil–Sen growth per unit after the warm-up, with its 95 % interval.

    ``warmup`` is a number of units or a mapping experiment -> units.  level is the value
    at the first unit after the warm-up; retained the value after the last unit minus
    before the first (only meaningful when each unit releases its memory).
    """
    if units.empty:
        return pd.DataFrame(columns=PER_RUN_COLUMNS)
    rows = []
    for key, frame in clean_units(units).groupby([*RUN_KEYS, "metric"], sort=False):
        w = _warmup_for(warmup, key[0])
        x, y = post_warmup(frame, w)
        slope = low = high = math.nan
        if x.size >= MIN_UNITS:
            d = pairwise_slopes(x, y)
            slope = float(np.median(d))
            low, high = sen_interval(d, [x.size], factors=[serial_correlation_factor(x, y, slope)])
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


def _median(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.median()) if len(finite) else math.nan


def _group_seed(seed: int, key: tuple) -> list[int]:
    """A seed per group that does not depend on the process (str hashes do)."""
    return [int(seed), zlib.crc32("\x1f".join(map(str, key)).encode())]


def _nan_if_none(fit: PooledSlope | None, field: str) -> float:
    return getattr(fit, field) if fit is not None else math.nan


def pooled_growth(per_run: pd.DataFrame, resolved: Mapping[str, leaklab_settings.ExperimentSettings],
                  units: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Per experiment x variant x profiler x metric: pooled growth per unit, its interval
    and the verdict (``decide``), then one verdict per family (``harmonise_families``).

    Only metrics with a threshold are judged; level, n_units and retained are medians
    over the runs that have a slope; retained is NaN for experiments whose units do not
    release.  Rows of profiled runs keep their numbers but are not judged.
    """
    if per_run.empty:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    points = {key: frame for key, frame in clean_units(units).groupby([*RUN_KEYS, "metric"], sort=False)}
    rows = []
    for key, group in per_run.groupby(GROUP_KEYS, sort=True):
        experiment, variant, profiler, metric = key
        s = resolved.get(experiment)
        if s is None or metric not in s.thresholds:
            continue
        limit = s.thresholds[metric]
        series = [post_warmup(frame, int(run.warmup_units)) for run in group.itertuples()
                  if (frame := points.get((run.experiment, run.variant, run.profiler, run.replicate, run.metric)))
                  is not None]
        with_slope = group[group["slope"].notna()]
        basis = with_slope if len(with_slope) else group
        retained = _median(basis["retained"]) if s.releases else math.nan
        result = judge(series, leak_per_unit=limit.leak_per_unit, retained_threshold=limit.retained,
                       releases=s.releases, retained=retained, metric=metric, unit=s.unit, n_boot=n_boot,
                       seed=_group_seed(seed, key))
        verdict, reason, confirm = result.verdict, result.reason, result.needs_confirmation
        if profiler != "plain":
            confirm = False
            verdict, reason = "inconclusive", (f"not judged: a {profiler} run's RSS holds the profiler's own memory "
                                               f"and its workload is scaled; see the plain runs")
        w = result.windows
        rows.append({
            "experiment": experiment, "variant": variant, "profiler": profiler, "metric": metric,
            "unit": s.unit, "growth_per_unit": w.whole.slope, "ci_low": w.whole.ci_low, "ci_high": w.whole.ci_high,
            "ci_method": w.whole.ci_method, "ts_ci_low": w.whole.ts_ci_low, "ts_ci_high": w.whole.ts_ci_high,
            "boot_ci_low": w.whole.boot_ci_low, "boot_ci_high": w.whole.boot_ci_high,
            "n_replicates": w.whole.n_replicates, "n_units": int(basis["n_units"].median()) if len(basis) else 0,
            "warmup_units": int(group["warmup_units"].iloc[0]), "level": _median(basis["level"]),
            "retained": retained, "leak_per_unit": limit.leak_per_unit, "retained_threshold": limit.retained,
            "early_growth_per_unit": _nan_if_none(w.early, "slope"),
            "late_growth_per_unit": _nan_if_none(w.late, "slope"),
            "late_ci_low": _nan_if_none(w.late, "ci_low"), "late_ci_high": _nan_if_none(w.late, "ci_high"),
            "decelerating": w.decelerating, "verdict": verdict, "verdict_reason": reason,
            "decided_by": metric, "decides": False,
            "recent_per_unit": _nan_if_none(w.recent, "slope"), "recent_ci_low": _nan_if_none(w.recent, "ci_low"),
            "recent_ci_high": _nan_if_none(w.recent, "ci_high"), "onset_unit": w.onset,
            "needs_confirmation": confirm,
            "plateau_level": w.plateau if verdict == "settling" else math.nan,
        })
    return harmonise_families(pd.DataFrame(rows, columns=POOLED_COLUMNS), resolved)


def harmonise_families(growth: pd.DataFrame,
                       resolved: Mapping[str, leaklab_settings.ExperimentSettings] | None = None) -> pd.DataFrame:
    """One verdict per run set and metric family (the first member present decides),
    and ``decides``: the row whose verdict is its variant's (``variant_verdicts``)."""
    if growth.empty:
        return growth
    growth = growth.copy()
    growth["family"] = growth["metric"].map(leaklab_settings.family)
    for _, group in growth.groupby(["experiment", "variant", "profiler", "family"]):
        if len(group) < 2:
            continue
        leader = group[group["metric"] == leaklab_settings.family_leaders(list(group["metric"]))[0]].iloc[0]
        others = group.index[group["metric"] != leader["metric"]]
        growth.loc[others, "verdict"] = leader["verdict"]
        growth.loc[others, "verdict_reason"] = f"as {leader['metric']} (same memory): {leader['verdict_reason']}"
        growth.loc[others, "decided_by"] = leader["metric"]
        growth.loc[others, "needs_confirmation"] = leader["needs_confirmation"]
    for index in variant_verdicts(growth, resolved)["row"]:
        growth.loc[index, "decides"] = True
    return growth.drop(columns="family")


def _seeing_the_size(tied: pd.DataFrame) -> pd.DataFrame:
    """Of the byte metrics that call the same leak, those whose growth is at least
    ``SIZE_SHARE`` of the largest: a metric that sees only part of the memory must not
    name the leak's size (glibc's heap beside Python objects, whose arenas the
    interpreter maps itself, outside malloc: ``planted`` ``python_large`` grows 4 MiB
    per step of RSS and only its list's 0.38 MiB of heap)."""
    sized = tied[tied["metric"].str.endswith("_bytes")]
    if len(sized) < 2:
        return tied
    return tied.drop(index=sized.index[sized["growth_per_unit"] < SIZE_SHARE * sized["growth_per_unit"].max()])


def variant_verdicts(growth: pd.DataFrame,
                     resolved: Mapping[str, leaklab_settings.ExperimentSettings] | None = None) -> pd.DataFrame:
    """One verdict per experiment x variant (plain runs): the most severe of its deciding
    metrics (``settings.deciding_metrics``, whose order for that verdict breaks ties), with the metric
    that decided it (``row``: its index in ``growth``)."""
    if growth.empty:
        return pd.DataFrame(columns=[*VARIANT_COLUMNS, "row"])
    rank = {v: i for i, v in enumerate(VERDICTS)}
    judged = growth[(growth["profiler"] == "plain") & (growth["decided_by"] == growth["metric"])]
    rows = []
    for (experiment, _, _), group in judged.groupby(["experiment", "variant", "profiler"], sort=True):
        s = (resolved or {}).get(experiment)
        allowed = leaklab_settings.deciding_metrics(s) if s else ["rss_bytes"]
        candidates = group[group["metric"].isin(allowed) | (s is None and ~group["metric"].isin(
            leaklab_settings.SYSTEM_WIDE))]
        if candidates.empty:
            continue
        severest = candidates.loc[candidates["verdict"].map(rank).idxmin(), "verdict"]
        tied = candidates[candidates["verdict"] == severest]
        tied = _seeing_the_size(tied) if severest == "leak" else tied
        preference = leaklab_settings.deciding_metrics(s, severest) if s else ["rss_bytes"]
        best = tied.loc[tied["metric"].map({m: i for i, m in enumerate(preference)}).fillna(len(preference)).idxmin()]
        rows.append({**{c: best[c] for c in VARIANT_COLUMNS}, "row": best.name})
    return pd.DataFrame(rows, columns=[*VARIANT_COLUMNS, "row"])
