"""Each metric at each unit boundary of a run: the series growth is measured on.

Per run, each metric gets one value per unit: the in-process marks give the unit
boundaries (and the metrics only the process knows); the outside metrics (RSS, USS,
fds, ...) are the last sampler reading at or before each boundary.  Slopes, intervals
and verdicts over these series are ``leaklab.model.verdicts``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import theilslopes

from leaklab.process.sampler import OUTSIDE_METRICS

RUN_KEYS = ["experiment", "variant", "profiler", "replicate"]
BOUNDARY_PHASES = ("start", "unit")
MIN_POINTS = 3


def unit_series(samples: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    """One row per unit boundary (unit 0 = before the first unit): t, unit and every metric.

    A metric the process itself read at the boundary (RSS from ``/proc/self/statm``,
    its fd census) wins over the sampler's last reading, which can be up to one
    sampling interval old; the sampler fills in what the process did not record.
    """
    if marks.empty or "phase" not in marks:
        return pd.DataFrame(columns=["unit", "t"])
    inside = marks[marks["phase"].isin(BOUNDARY_PHASES) & marks["unit"].notna()].drop(columns="phase")
    inside = inside.sort_values("t", kind="stable").drop_duplicates("unit", keep="last")  # a line wins over its start mark
    if samples.empty:
        return inside.reset_index(drop=True)
    outside_only = [m for m in OUTSIDE_METRICS if m not in inside.columns or inside[m].isna().all()]
    inside = inside.drop(columns=[m for m in outside_only if m in inside.columns])
    outside = samples[["t", *outside_only]].sort_values("t")
    merged = pd.merge_asof(inside, outside, on="t", direction="backward")
    return merged.sort_values("unit").reset_index(drop=True)


def slope_per_unit(units: pd.Series, values: pd.Series) -> float:
    """Theil–Sen slope of values over units; NaN with fewer than MIN_POINTS points."""
    ok = values.notna() & units.notna()
    if ok.sum() < MIN_POINTS:
        return math.nan
    x = units[ok].astype(float).to_numpy()
    y = values[ok].astype(float).to_numpy()
    if np.ptp(y) == 0:
        return 0.0
    return float(theilslopes(y, x)[0])
