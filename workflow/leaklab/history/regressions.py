"""What changed since the previous night, and whether the nightly command must fail.

The comparison rule is documented in :func:`compare`; :func:`exit_code` says whether
the nightly command fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from leaklab.model.amounts import amount
from leaklab.history import store
from leaklab.model.settings import SYSTEM_WIDE

GROUP_KEYS = ["experiment", "variant", "profiler", "metric"]
CONCLUSIVE = ("leak", "stable", "retention")
COMPARED_PROFILERS = ("plain",)
REGRESSION_COLUMNS = [
    "night_id", "previous_night", "previous_date", *GROUP_KEYS, "unit", "kind", "counts",
    "previous_verdict", "verdict", "previous_value", "value",
    "previous_ci_low", "previous_ci_high", "ci_low", "ci_high", "note",
]


def _same(a, b) -> bool:
    """Equality where two missing values are the same (two nights with no hostname)."""
    a_missing = a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NA
    b_missing = b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA
    return (a_missing and b_missing) or (not a_missing and not b_missing and a == b)


def _finite(*values) -> bool:
    try:
        return all(v is not None and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _num(value) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _iso(day) -> str | None:
    return None if day is None or pd.isna(day) else pd.Timestamp(day).date().isoformat()


def _fmt(value: float, metric: str) -> str:
    return amount(value, metric, ".4g")


def _rate(value: float, low: float, high: float, metric: str, unit: str | None) -> str:
    per = f"/{unit}" if unit else " per unit"
    ci = f" [{_fmt(low, metric)}, {_fmt(high, metric)}]" if _finite(low, high) else " [no interval]"
    return f"{_fmt(value, metric)}{per}{ci}"


def _floor(min_change: Mapping | float | None, experiment: str, metric: str) -> float:
    if min_change is None:
        return 0.0
    if isinstance(min_change, Mapping):
        value = min_change.get((experiment, metric), min_change.get(metric, 0.0))
        return float(value or 0.0)
    return float(min_change)


def min_change_from_config(config: dict, fraction: float = 0.25) -> dict[tuple[str, str], float]:
    """Smallest growth change worth a regression, per (experiment, metric): a share of the leak bar.

    The interval rule alone trusts the intervals; when both are degenerate (points exactly
    on a line give a zero-width interval, e.g. a page-sized step) a move of a few bytes
    per unit would be "outside both".  A quarter of ``leak_per_unit`` is far below what
    changes a verdict, and far above such noise.
    """
    from leaklab.model import settings

    floors = {}
    for experiment in config.get("experiments", {}):
        for metric, limits in settings.thresholds(config, experiment).items():
            floors[(experiment, metric)] = fraction * limits.leak_per_unit
    return floors


def regressions(history_path: str | Path, night_id: str, same_code_only: bool = False, *,
                rel_tol: float = 0.05, min_change: Mapping | float | None = None) -> pd.DataFrame:
    """What changed in night ``night_id`` of the store against its previous night (see :func:`compare`)."""
    nights, growth = store.load(history_path)
    if night_id not in set(nights["night_id"]):
        raise KeyError(f"night {night_id!r} is not in {history_path}")
    return compare(nights, growth, night_id, same_code_only, rel_tol=rel_tol, min_change=min_change)


def compare(nights: pd.DataFrame, growth: pd.DataFrame, night_id: str, same_code_only: bool = False, *,
            rel_tol: float = 0.05, min_change: Mapping | float | None = None) -> pd.DataFrame:
    """What changed in night ``night_id`` against the previous night on the same host.

    ``nights`` and ``growth`` are the store's tables (``store.load``), tonight included
    (``store.with_night`` adds a night not recorded yet).  Only like is compared with
    like: rows of the ``plain`` profiler (every replicate, the full workload, no
    profiler inside the process).  A profiled row runs a scaled workload once with the
    profiler's own memory inside RSS; its change says nothing about the program.

    For every experiment x variant x profiler x metric of the night's ``growth``, the
    previous night is the most recent earlier night (by ``date``, then append order
    ``seq``) on the same ``hostname`` that has that row -- other hosts differ in kernel,
    allocator and page cache, so their growth is no baseline.  With ``same_code_only``
    only nights on the same code qualify: same commit, same ``diff_sha256`` (the same
    uncommitted edit, or none) and the same library versions; that is the check that two
    nights on the same code give no regression.  A night with no earlier comparable
    night (the first one) gives an empty table.

    Kinds (``counts`` says whether the row makes the nightly command fail):

    - ``verdict_flip`` (counts): the verdict changed between two conclusive verdicts
      (``leak``, ``stable``, ``retention``), e.g. ``stable`` -> ``leak``.  A flip towards
      ``stable`` counts too: an unexplained cure usually means a broken reproduction.
    - ``growth_moved`` (counts): tonight's growth per unit lies outside the previous
      night's confidence interval *and* the previous growth lies outside tonight's
      interval, and the two differ by more than ``rel_tol`` of the larger one and by more
      than ``min_change`` (absolute, per ``(experiment, metric)`` or per metric, see
      :func:`min_change_from_config`).  Requiring both directions keeps one night's
      narrow interval (few noisy units that happened to line up) from making a
      regression alone; the tolerances guard against zero-width intervals.  Both
      intervals must be finite: without one there is nothing to judge by, and the
      verdict is ``inconclusive`` anyway.
    - ``became_inconclusive`` / ``became_conclusive`` (informational): the verdict moved
      to or from ``inconclusive``; too few units or too wide an interval is not a
      change in the code's memory behaviour.
    - ``disappeared`` (informational): a row of the most recent comparable night that
      tonight's ``growth`` lacks (a run that failed or a dropped experiment); the runs
      table says why.

    A row may have both a ``verdict_flip`` and a ``growth_moved`` entry.  Rows of a
    system-wide metric (``settings.SYSTEM_WIDE``: the kernel's slab) are reported but
    never count: every other process on the host moves them too.
    """
    nights, growth = nights.copy(), growth.copy()
    for column in ("diff_sha256", "versions_json", "hostname", "commit"):
        if column not in nights:
            nights[column] = None
    for column in (*GROUP_KEYS, "unit", "growth_per_unit", "ci_low", "ci_high", "verdict"):
        if column not in growth:
            growth[column] = None
    growth = growth[growth["profiler"].isin(COMPARED_PROFILERS)]
    current = nights[nights["night_id"] == night_id].iloc[0]
    order = (pd.Timestamp(current["date"]), int(current["seq"]))
    earlier = nights[[(pd.Timestamp(d), int(s)) < order for d, s in zip(nights["date"], nights["seq"])]]
    earlier = earlier[[_same(h, current["hostname"]) for h in earlier["hostname"]]]
    if same_code_only:
        same_code = [_same(r.commit, current["commit"]) and _same(r.diff_sha256, current["diff_sha256"])
                     and _same(r.versions_json, current["versions_json"]) for r in earlier.itertuples()]
        earlier = earlier[same_code]
    if earlier.empty:
        return pd.DataFrame(columns=REGRESSION_COLUMNS)
    earlier = earlier.assign(_date=pd.to_datetime(earlier["date"])).sort_values(["_date", "seq"], ascending=False)
    rank = {nid: i for i, nid in enumerate(earlier["night_id"])}
    dates = dict(zip(nights["night_id"], nights["date"]))

    tonight = growth[growth["night_id"] == night_id].drop_duplicates(GROUP_KEYS)
    before = growth[growth["night_id"].isin(rank)].copy()
    before["_rank"] = before["night_id"].map(rank)
    before = before.sort_values("_rank").drop_duplicates(GROUP_KEYS)
    latest = earlier["night_id"].iloc[0]

    rows = []
    merged = tonight.merge(before, on=GROUP_KEYS, how="inner", suffixes=("", "_prev"))
    for r in merged.to_dict("records"):
        metric, unit = str(r["metric"]), _text(r["unit"]) or _text(r["unit_prev"])
        g, lo, hi = _num(r["growth_per_unit"]), _num(r["ci_low"]), _num(r["ci_high"])
        pg, plo, phi = _num(r["growth_per_unit_prev"]), _num(r["ci_low_prev"]), _num(r["ci_high_prev"])
        v, pv = _text(r["verdict"]), _text(r["verdict_prev"])
        base = {
            "night_id": night_id, "previous_night": r["night_id_prev"],
            "previous_date": _iso(dates.get(r["night_id_prev"])),
            **{k: r[k] for k in GROUP_KEYS}, "unit": unit,
            "previous_verdict": pv, "verdict": v, "previous_value": pg, "value": g,
            "previous_ci_low": plo, "previous_ci_high": phi, "ci_low": lo, "ci_high": hi,
        }
        now_text = _rate(g, lo, hi, metric, unit)
        was_text = _rate(pg, plo, phi, metric, unit)
        if pv is not None and v is not None and pv != v:
            if pv in CONCLUSIVE and v in CONCLUSIVE:
                kind, counts = "verdict_flip", True
            elif pv in CONCLUSIVE:
                kind, counts = "became_inconclusive", False
            elif v in CONCLUSIVE:
                kind, counts = "became_conclusive", False
            else:
                kind = None
            if kind:
                rows.append({**base, "kind": kind, "counts": counts,
                             "note": f"{metric}: {pv} -> {v}; growth {now_text}, was {was_text}"})
        if _finite(g, lo, hi, pg, plo, phi):
            outside_previous = g < plo or g > phi
            outside_tonight = pg < lo or pg > hi
            change = abs(g - pg)
            big = change > rel_tol * max(abs(g), abs(pg)) and change > _floor(min_change, r["experiment"], metric)
            if outside_previous and outside_tonight and big:
                direction = "up" if g > pg else "down"
                moved = f"{_fmt(abs(g - pg), metric)}/{unit or 'unit'}"
                rows.append({**base, "kind": "growth_moved", "counts": True,
                             "note": f"{metric} growth moved {direction} by {moved}: "
                                     f"{now_text}, was {was_text}; each outside the other's interval"})
    previous_rows = growth[growth["night_id"] == latest]
    gone = previous_rows.merge(tonight[GROUP_KEYS], on=GROUP_KEYS, how="left", indicator=True)
    for r in gone[gone["_merge"] == "left_only"].to_dict("records"):
        metric, unit = str(r["metric"]), _text(r["unit"])
        g, lo, hi = _num(r["growth_per_unit"]), _num(r["ci_low"]), _num(r["ci_high"])
        rows.append({
            "night_id": night_id, "previous_night": latest, "previous_date": _iso(dates.get(latest)),
            **{k: r[k] for k in GROUP_KEYS}, "unit": unit, "kind": "disappeared", "counts": False,
            "previous_verdict": _text(r["verdict"]), "verdict": None, "previous_value": g, "value": math.nan,
            "previous_ci_low": lo, "previous_ci_high": hi, "ci_low": math.nan, "ci_high": math.nan,
            "note": f"{metric}: no growth row tonight; was {_rate(g, lo, hi, metric, unit)} (see runs)",
        })
    result = pd.DataFrame(rows, columns=REGRESSION_COLUMNS)
    if result.empty:
        return result
    result["counts"] = result["counts"].astype(bool) & ~result["metric"].isin(SYSTEM_WIDE)
    return result.sort_values(["counts", *GROUP_KEYS, "kind"], ascending=[False, True, True, True, True, True],
                              kind="stable").reset_index(drop=True)


def counting(counts: pd.Series) -> pd.Series:
    """``counts`` as booleans, also when read back from CSV as text ("False" is truthy)."""
    if counts.dtype == bool:
        return counts
    return counts.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))


def exit_code(found: pd.DataFrame) -> int:
    """The nightly command's exit status: 1 when any regression counts, else 0.

    Takes the frame :func:`regressions` returns or ``regressions.csv`` read back.
    """
    return int(bool(len(found)) and "counts" in found and bool(counting(found["counts"]).any()))

