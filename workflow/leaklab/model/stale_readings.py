"""Verdicts on readings shared between units say so.

The runner reads the process when a unit line arrives, at most once per
``unit_readings.MIN_SAMPLE_GAP_S``; a unit closer than that to the previous reading shares
it, and its run counts those units (``units_sharing_reading`` in ``meta.json`` and the
runs table).  Growth between two units that share a reading is not measured, only
growth between readings: a decisive verdict on an outside metric (RSS, PSS, fds ...)
of such runs carries the share in its reason (``stale_reading_share``), so a verdict
never rests on stale readings unsaid.
"""

from __future__ import annotations

import pandas as pd

from leaklab.process.sampler import OUTSIDE_METRICS

RUN_KEYS = ["experiment", "variant", "profiler"]


def flag(growth: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """``growth`` with ``stale_reading_share`` (units that shared a reading / units, over
    the run set's runs) and, where it is above 0 on an outside metric with a decisive
    verdict, the share said in ``verdict_reason``."""
    growth = growth.copy()
    growth["stale_reading_share"] = 0.0
    if growth.empty or "units_sharing_reading" not in runs or "n_units" not in runs:
        return growth
    counts = runs.assign(shared=pd.to_numeric(runs["units_sharing_reading"], errors="coerce").fillna(0),
                         units=pd.to_numeric(runs["n_units"], errors="coerce").fillna(0))
    totals = counts.groupby(RUN_KEYS)[["shared", "units"]].sum()
    for index, row in growth.iterrows():
        key = tuple(row[k] for k in RUN_KEYS)
        if row["metric"] not in OUTSIDE_METRICS or key not in totals.index:
            continue
        shared, units = totals.loc[key, "shared"], totals.loc[key, "units"]
        if shared <= 0 or units <= 0:
            continue
        growth.loc[index, "stale_reading_share"] = shared / units
        if row["verdict"] != "inconclusive":
            growth.loc[index, "verdict_reason"] = (
                f"{row['verdict_reason']}; stale readings: {int(shared)} of {int(units)} units shared a reading "
                f"with the unit before (units faster than the reading rate)")
    return growth
