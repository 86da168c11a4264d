"""Time to verdict: when each run's evidence was in, replayed from its recorded units.

A run is looked at after a fixed, geometric set of units past the warm-up
(``looks``: ``MIN_LOOK`` units, then every ``LOOK_GROWTH`` times as many, and the
run's full length), each look judged by the same rule as the tables
(``verdicts.judge``) on that run alone.  It is decided at the first look whose verdict
is not ``inconclusive`` and was reached with every check of the rule (``decisive``).

Looking again and again at growing data and stopping at the first decisive answer
would inflate the error rate if every look used the 95 % interval.  Each of the K looks
here uses a ``1 - 0.05 / K`` interval instead (Bonferroni: an alpha-spending schedule
that spends alpha equally over a set of looks fixed before the data): a wrong decisive
interval at any look has probability at most the sum over looks, K x 0.05 / K = 0.05,
whatever the dependence between looks (the union bound).  The price is a wider interval
at each look, so a run decided only at its full length may stay undecided here.

Units are counted from the run's start (warm-up included), seconds are the run's clock
at that unit's boundary: what a run stopped there would have taken.

Where a run is not decided at its full length, ``needed_units`` says what length would
decide it: a slope's interval half-width shrinks about as n^-1.5 with n units of
independent noise, so the half-width on the side that must clear the decision bar,
``w`` at n units, reaches the distance ``d`` between the estimate and the bar after
n x (w / d)^(2/3) units (more looks, a little more width: an estimate, not a promise).
"""

from __future__ import annotations

import math

import pandas as pd

from leaklab.model import verdicts, windows
from leaklab.model.intervals import CONFIDENCE, mover_difference
from leaklab.model.settings import SYSTEM_WIDE, ExperimentSettings

MIN_LOOK = 5
LOOK_GROWTH = 1.5
COLUMNS = ["experiment", "variant", "metric", "unit", "warmup_units", "looks", "look_confidence", "replicates",
           "decided_runs", "recorded_units", "recorded_seconds", "stop_units", "stop_seconds", "stop_verdicts",
           "fixed_verdicts", "table_verdict", "agrees", "needed_units", "needed_seconds"]


def looks(max_units: int, min_units: int = MIN_LOOK, growth: float = LOOK_GROWTH) -> list[int]:
    """Unit counts after the warm-up at which a run of ``max_units`` is looked at."""
    found, n = [], min_units
    while n < max_units:
        found.append(n)
        n = max(n + 1, math.ceil(n * growth))
    return found + [max_units]


def look_confidence(n_looks: int, confidence: float = CONFIDENCE) -> float:
    """Each look's confidence: the error rate shared equally over the looks."""
    return 1 - (1 - confidence) / n_looks


def needed_units(n: int, slope: float, low: float, high: float, bar: float) -> float:
    """Units after the warm-up at which the interval would clear ``bar`` (n^-1.5 shrinkage):
    NaN when there is no interval to extrapolate, infinite for an estimate on the bar."""
    if not all(map(math.isfinite, (slope, low, high))):
        return math.nan
    if slope == bar:
        return math.inf
    width, distance = (slope - low, slope - bar) if slope > bar else (high - slope, bar - slope)
    return n * max(1.0, (width / distance) ** (2 / 3))


class RunSeries:
    """One run's metric (``unit``, ``t``, ``value`` rows) after its warm-up, ready to be
    judged alone at any number of units: the replay below and the runner's online
    stopping (``leaklab.measure.stopping``) judge a look the same way."""

    def __init__(self, frame: pd.DataFrame, settings: ExperimentSettings, metric: str):
        frame = frame.dropna(subset=["unit", "value"]).sort_values("unit")
        post = frame[frame["unit"] > settings.warmup_units]
        self.x, self.y, self.t = (post[c].to_numpy(dtype=float) for c in ("unit", "value", "t"))
        self.first_value = float(frame["value"].iloc[0]) if len(frame) else math.nan
        self.settings, self.metric = settings, metric

    def __len__(self) -> int:
        return len(self.x)

    def judge(self, n: int, confidence: float) -> verdicts.Judgement:
        """The verdict on the first ``n`` units after the warm-up at ``confidence``."""
        limit = self.settings.thresholds[self.metric]
        retained = float(self.y[n - 1] - self.first_value) if self.settings.releases else math.nan
        return verdicts.judge([(self.x[:n], self.y[:n])], retained=retained, confidence=confidence,
                              leak_per_unit=limit.leak_per_unit, retained_threshold=limit.retained,
                              releases=self.settings.releases, metric=self.metric, unit=self.settings.unit)


def decisive(judgement: verdicts.Judgement, bar: float = math.nan) -> bool:
    """Whether a look decides: its verdict is not ``inconclusive`` and does not need
    confirmation (``verdicts.Judgement.needs_confirmation``), a ``retention`` rules a
    leak out (its whole interval below ``bar``, the decision bar), and a ``leak`` was
    reached with both halves of the window, each with its interval at the look's
    confidence, showing that the growth keeps its pace: the late half's rate exceeds
    ``windows.MAX_LATE_SHARE`` of the early half's at that confidence (MOVER interval
    of late - share x early above zero).

    The full-length rule calls a leak when deceleration is not shown; a look must show
    its absence.  A curve that saturates over the whole run is straight over its first
    third: stopped there on "not shown to slow down", two of 900 saturating data sets
    of the accuracy tier (seed 1, 30 draws) became leaks that the full length calls
    settling; with this test none did on seeds 0-2, and a strong leak, whose halves are
    tight, still stops early (README "Sequential stopping").  ``stable`` and
    ``retention`` never consult the halves, ``settling`` is reached only through them."""
    if judgement.verdict == "inconclusive" or judgement.needs_confirmation:
        return False  # a verdict that depends on what comes after the look (a late onset, a slowing rate) waits
    if judgement.verdict == "retention":
        # retention is what is left when a leak is not shown: it decides only once a
        # leak is ruled out (a run alone may not show the leak its replicates pooled do)
        return bool(judgement.windows.whole.ci_high < bar)
    if judgement.verdict != "leak":
        return True
    early, late = judgement.windows.early, judgement.windows.late
    if late is None or early is None or math.isnan(late.ci_low) or math.isnan(early.ci_low):
        return False
    share = windows.MAX_LATE_SHARE
    low, _ = mover_difference(late.slope, late.ci_low, late.ci_high,
                              share * early.slope, share * early.ci_low, share * early.ci_high)
    return bool(low > 0)


def variant_decision(stop_verdicts: dict[str, str]) -> str | None:
    """A run's variant verdict from its deciding metrics' first decisive looks
    (``inconclusive`` while undecided), or None while it is not decided: a ``leak`` on
    any metric decides at once (the most severe verdict, nothing can override it);
    otherwise every metric must be decided, and the most severe of them is the verdict
    (``verdicts.variant_verdicts``' rule; ``by_variant`` applies it across replicates)."""
    found = set(stop_verdicts.values())
    if "leak" in found:
        return "leak"
    if not found or "inconclusive" in found:
        return None
    return min(found, key=verdicts.VERDICTS.index)


def replay_run(frame: pd.DataFrame, settings: ExperimentSettings, metric: str,
               max_units: int | None = None) -> dict:
    """One run's metric (``unit``, ``t``, ``value`` rows) judged at each look; where it was decided."""
    run = RunSeries(frame, settings, metric)
    x, t = run.x, run.t
    limit = settings.thresholds[metric]
    schedule = looks(max_units or len(x))
    confidence = look_confidence(len(schedule))
    judged = run.judge

    fixed = judged(len(x), CONFIDENCE) if len(x) else None
    out = {"recorded_units": int(x[-1]) if len(x) else 0, "recorded_seconds": float(t[-1]) if len(t) else math.nan,
           "looks": schedule, "look_confidence": confidence, "fixed_verdict": fixed.verdict if fixed else "inconclusive",
           "stop_units": math.nan, "stop_seconds": math.nan, "stop_verdict": "inconclusive"}
    last = None
    for n in schedule:
        if n > len(x):
            break
        last = judged(n, confidence)
        if decisive(last, verdicts.DECISION_FRACTION * limit.leak_per_unit):
            return {**out, "stop_units": int(x[n - 1]), "stop_seconds": float(t[n - 1]), "stop_verdict": last.verdict,
                    "needed_units": int(x[n - 1]), "needed_seconds": float(t[n - 1])}
    whole = last.windows.whole if last else None
    need = needed_units(len(x), whole.slope, whole.ci_low, whole.ci_high,
                        verdicts.DECISION_FRACTION * limit.leak_per_unit) if whole else math.nan
    per_unit = float(t[-1] - t[0]) / (len(t) - 1) if len(t) > 1 else math.nan
    return {**out, "needed_units": settings.warmup_units + need,
            "needed_seconds": float(t[-1]) + (need - len(x)) * per_unit if len(x) else math.nan}


def _slowest(values) -> float:
    """The largest, or NaN when one run's is unknown (it could be the slowest)."""
    values = list(values)
    return math.nan if any(math.isnan(v) for v in values) else max(values)


def _deciding_metrics(growth: pd.DataFrame) -> pd.DataFrame:
    """Plain rows whose metric decides its own verdict (family leaders, not system-wide)."""
    rows = growth[(growth["profiler"] == "plain") & (growth["decided_by"] == growth["metric"])]
    return rows[~rows["metric"].isin(SYSTEM_WIDE)]


def table(units: pd.DataFrame, growth: pd.DataFrame, resolved: dict[str, ExperimentSettings]) -> pd.DataFrame:
    """Per experiment, variant and deciding metric of the plain runs: units and seconds
    to the decision (the slowest replicate), the verdicts there and at full length, and
    what length would decide where the runs did not."""
    if units.empty or growth.empty:
        return pd.DataFrame(columns=COLUMNS)
    plain = verdicts.clean_units(units[units["profiler"] == "plain"])
    runs = {key: frame for key, frame in plain.groupby(["experiment", "variant", "metric", "replicate"])}
    rows = []
    for row in _deciding_metrics(growth).itertuples():
        s = resolved.get(row.experiment)
        replays = [replay_run(frame, s, row.metric) for (e, v, m, _), frame in runs.items()
                   if (e, v, m) == (row.experiment, row.variant, row.metric)]
        if s is None or not replays:
            continue
        decided = [r for r in replays if r["stop_verdict"] != "inconclusive"]
        rows.append({
            "experiment": row.experiment, "variant": row.variant, "metric": row.metric, "unit": s.unit,
            "warmup_units": s.warmup_units, "looks": ",".join(map(str, replays[0]["looks"])),
            "look_confidence": replays[0]["look_confidence"], "replicates": len(replays),
            "decided_runs": len(decided),
            "recorded_units": max(r["recorded_units"] for r in replays),
            "recorded_seconds": max(r["recorded_seconds"] for r in replays),
            "stop_units": max(r["stop_units"] for r in replays) if len(decided) == len(replays) else math.nan,
            "stop_seconds": max(r["stop_seconds"] for r in replays) if len(decided) == len(replays) else math.nan,
            "stop_verdicts": ",".join(r["stop_verdict"] for r in replays),
            "fixed_verdicts": ",".join(r["fixed_verdict"] for r in replays),
            "table_verdict": row.verdict,
            # an early stop may only say what the full run and the table say (it may say less: undecided)
            "agrees": all(r["stop_verdict"] in ("inconclusive", r["fixed_verdict"]) for r in replays)
            and all(r["stop_verdict"] in ("inconclusive", row.verdict) for r in replays),
            "needed_units": _slowest(r["needed_units"] for r in replays),
            "needed_seconds": _slowest(r["needed_seconds"] for r in replays),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def by_variant(table: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment and variant.  A variant's verdict is the most severe of its
    deciding metrics (``verdicts.variant_verdicts``), so its runs are decided as soon as
    one metric is decided ``leak`` in every run, or else once every metric is decided
    (the slowest then sets the time)."""
    severity = {v: i for i, v in enumerate(verdicts.VERDICTS)}
    rows = []
    for (experiment, variant), part in table.groupby(["experiment", "variant"], sort=False):
        leaks = part[part["stop_verdicts"].map(lambda joined: set(joined.split(",")) == {"leak"})]
        decided = bool(part["stop_seconds"].notna().all())
        if len(leaks):
            first = leaks.loc[leaks["stop_seconds"].idxmin()]
            seconds, units, verdict, decided = first["stop_seconds"], first["stop_units"], "leak", True
        else:
            stops = [v for joined in part["stop_verdicts"] for v in joined.split(",")]
            verdict = min(stops, key=severity.get) if decided else "inconclusive"
            seconds, units = _slowest(part["needed_seconds"]), _slowest(part["needed_units"])
        rows.append({"experiment": experiment, "variant": variant, "unit": part["unit"].iloc[0], "decided": decided,
                     "verdict": verdict, "recorded_seconds": part["recorded_seconds"].max(), "seconds": seconds,
                     "recorded_units": part["recorded_units"].max(), "units": units})
    return pd.DataFrame(rows)
