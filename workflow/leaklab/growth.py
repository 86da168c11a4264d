"""Growth per unit of work, what is retained after release, and first verdicts.

Per run, each metric gets one value per unit: the in-process marks give the unit
boundaries (and the metrics only the process knows); the outside metrics (RSS, USS,
fds, ...) are the last sampler reading at or before each boundary.  Growth per unit
is the Theil–Sen slope over the units after the warm-up: a robust slope, so one
outlier (a page-cache hiccup, a late arena) does not make a leak.  Replicates are
pooled by the median of their slopes.  The statistical model (intervals, rank tests)
builds on these tables later.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import theilslopes

RUN_KEYS = ["experiment", "variant", "profiler", "replicate"]
OUTSIDE_METRICS = ("rss_bytes", "pss_bytes", "uss_bytes", "fds", "deleted_fds", "threads")
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
    inside = inside.sort_values("t").drop_duplicates("unit", keep="last")
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


def run_growth(series: pd.DataFrame, metrics: list[str], warmup: int, releases: bool) -> list[dict]:
    """Growth of each metric in one run's unit series."""
    rows = []
    post = series[series["unit"] > warmup]
    for metric in metrics:
        if metric not in series or series[metric].notna().sum() == 0:
            continue
        values = series[metric].astype(float)
        post_values = post[metric].astype(float)
        retained = math.nan
        if releases and values.notna().sum() >= 2:
            retained = float(values.dropna().iloc[-1] - values.dropna().iloc[0])
        rows.append({
            "metric": metric,
            "growth_per_unit": slope_per_unit(post["unit"], post_values),
            "retained": retained,
            "level": float(post_values.dropna().iloc[0]) if post_values.notna().any() else math.nan,
            "n_units": int(post_values.notna().sum()),
        })
    return rows


def verdict(growth: float, retained: float, level: float, n_units: int,
            thresholds: dict[str, float], min_relative_growth: float, metric: str) -> str:
    """``leak``: grows at least ``leak_per_unit`` per unit after the warm-up (and, for
    byte metrics, by at least ``min_relative_growth`` of its level over the run);
    ``retention``: does not grow, but keeps at least ``retained`` after release;
    ``stable``: neither; ``inconclusive``: too few units to say."""
    if math.isnan(growth):
        return "inconclusive"
    total = growth * max(n_units - 1, 1)
    relative_ok = not metric.endswith("_bytes") or total >= min_relative_growth * max(level, 1.0)
    if growth >= thresholds["leak_per_unit"] and relative_ok:
        return "leak"
    if not math.isnan(retained) and retained >= thresholds["retained"]:
        return "retention"
    return "stable"


def pool(per_run: pd.DataFrame) -> pd.DataFrame:
    """Median across replicates of each experiment x variant x profiler x metric."""
    keys = ["experiment", "variant", "profiler", "metric"]
    finite = per_run[per_run["growth_per_unit"].notna()]
    pooled = per_run.groupby(keys, as_index=False).agg(
        unit=("unit", "first"),
        growth_per_unit=("growth_per_unit", "median"),
        retained=("retained", "median"),
        level=("level", "median"),
        n_units=("n_units", "median"),
    )
    counts = finite.groupby(keys).size().rename("n_replicates").reset_index()
    pooled = pooled.merge(counts, on=keys, how="left")
    pooled["n_replicates"] = pooled["n_replicates"].fillna(0).astype(int)
    return pooled


def comparisons(growth: pd.DataFrame, baselines: dict[str, str]) -> pd.DataFrame:
    """Each variant against its experiment's baseline variant, metric by metric."""
    rows = []
    for (experiment, profiler, metric), group in growth.groupby(["experiment", "profiler", "metric"]):
        base = group[group["variant"] == baselines.get(experiment)]
        if base.empty:
            continue
        base_growth = float(base["growth_per_unit"].iloc[0])
        for _, row in group.iterrows():
            g = float(row["growth_per_unit"])
            rows.append({
                "experiment": experiment, "variant": row["variant"], "baseline": baselines[experiment],
                "profiler": profiler, "metric": metric, "unit": row["unit"],
                "growth_per_unit": g, "baseline_growth_per_unit": base_growth,
                "difference": g - base_growth,
                "ratio": g / base_growth if base_growth != 0 and not math.isnan(base_growth) else math.nan,
                "verdict": row["verdict"], "baseline_verdict": base["verdict"].iloc[0],
            })
    return pd.DataFrame(rows)
