"""The RSS growth at the unit readings, split exactly into kinds of mapping.

Each reading at a unit mark (``leaklab.process.unit_readings``) gives the tree's RSS by
kind of mapping; their sum is the tree's RSS at that reading.  Placing the growth means
saying how much of the RSS growth each kind holds, and the parts must add up to the
whole for every shape of series, memory that falls included.  Two things broke that
before (``docs/findings/2026-12-06-placement.md``):

- the kinds were fitted one by one with Theil–Sen, which is not additive: the median of
  each kind's pairwise slopes is not a share of the median of the total's; and
- the parts were the median of the replicates' slopes while the whole was pooled over
  the replicates (and read from other readings: the program's own line).

So the whole and its parts come from the same readings and one estimator.  The same
readings: at a unit mark that was read, the RSS the verdicts judge is the reading's
(:func:`rss_at_readings`), not the program's own line, read a few milliseconds before it
(Go's background scavenger hands pages back in between: 206 MiB once, 2026-12-06).  One
estimator: the verdicts'
stratified Theil–Sen slope (``leaklab.model.intervals.pooled_slope``: the median of the
pairwise slopes within each replicate, after the warm-up).  The median is one pair's
slope (or the mean of two pairs'), and a pair's slope is linear in its values: each
kind's growth is its slope over the same pair(s), so the kinds add up to the total
exactly.  Pairs whose total slope ties with the median are averaged, so the split does
not depend on the order the pairs happen to be in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from leaklab.model.intervals import pairwise_slopes
from leaklab.process import mappings

COLUMNS = ["kind", "rss_growth_per_unit", "pss_growth_per_unit", "last_rss_bytes", "readings"]


def _pairs(x: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's slope of the total and of each part (columns of ``parts``)."""
    i, j = np.triu_indices(x.size, k=1)
    return pairwise_slopes(x, parts.sum(axis=1)), (parts[j] - parts[i]) / (x[j] - x[i])[:, None]


def split_slope(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """The stratified Theil–Sen slope of the total of several runs' parts, and each
    part's share of it (they add up to it).  ``series``: per run, units (strictly
    increasing) and a units x parts matrix.  NaN when no run has two readings."""
    totals, shares = [], []
    for x, parts in series:
        if x.size >= 2:
            total, part = _pairs(np.asarray(x, dtype=float), np.asarray(parts, dtype=float))
            totals.append(total)
            shares.append(part)
    width = series[0][1].shape[1] if series else 0
    if not totals:
        return math.nan, np.full(width, math.nan)
    total, part = np.concatenate(totals), np.concatenate(shares)
    slope = float(np.median(total))
    middle = np.sort(total)[[(total.size - 1) // 2, total.size // 2]]  # one value, or the two middle ones
    split = np.mean([part[total == value].mean(axis=0) for value in middle], axis=0)
    return slope, split


def _kind_matrix(readings: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """One run's readings as units and a units x :data:`mappings.KINDS` matrix (summed
    over the tree's processes)."""
    table = readings.pivot_table(index="unit", columns="kind", values=column, aggfunc="sum")
    table = table.reindex(columns=list(mappings.KINDS)).fillna(0.0).sort_index()
    return table.index.to_numpy(dtype=float), table.to_numpy(dtype=float)


def kind_growth(runs: Sequence[pd.DataFrame], warmup_units: int = 0) -> pd.DataFrame:
    """Growth per unit of each kind of mapping, pooled over ``runs`` (each a run's
    ``mappings.parquet`` readings): kind, RSS and PSS bytes per unit (each adding up to
    the growth of the tree's RSS and PSS at the readings), the RSS at the last run's last
    reading, and how many readings were used."""
    used = [mappings.after_warmup(r[(r["level"] == "kind") & r["unit"].notna()], warmup_units) for r in runs]
    used = [r for r in used if not r.empty]
    if not used:
        return pd.DataFrame(columns=COLUMNS)
    fitted = {column: split_slope([_kind_matrix(r, column) for r in used])[1] for column in ("rss_bytes", "pss_bytes")}
    last = used[-1][used[-1]["unit"] == used[-1]["unit"].max()].groupby("kind")["rss_bytes"].sum()
    readings = sum(r["unit"].nunique() for r in used)
    return pd.DataFrame([{"kind": kind, "rss_growth_per_unit": float(fitted["rss_bytes"][n]),
                          "pss_growth_per_unit": float(fitted["pss_bytes"][n]),
                          "last_rss_bytes": float(last.get(kind, math.nan)), "readings": readings}
                         for n, kind in enumerate(mappings.KINDS)], columns=COLUMNS)


def rss_at_readings(series: pd.DataFrame, readings: pd.DataFrame, own_line: bool) -> pd.DataFrame:
    """A plain run's unit series (``leaklab.model.growth.unit_series``) with the RSS of
    every unit mark that was read replaced by the reading's, over the processes that RSS
    covers: the program's own (the tree's root: the process whose parent is not in the
    reading) when the RSS is its line's (``own_line``), the whole tree when it is the
    sampler's.  The RSS growth and the layers that place it then come from the same
    readings.  Units without a reading keep their own RSS."""
    if "rss_bytes" not in series or readings.empty:
        return series
    procs = readings[(readings["level"] == "process") & readings["unit"].notna()]
    if own_line:
        pids_at = procs.groupby("unit")["pid"].agg(set)
        procs = procs[[ppid not in pids_at[unit] for unit, ppid in zip(procs["unit"], procs["ppid"])]]
    at_reading = procs.groupby("unit")["rss_bytes"].sum()
    read = series["unit"].isin(at_reading.index)
    out = series.copy()
    out.loc[read, "rss_bytes"] = out.loc[read, "unit"].map(at_reading).astype("float64")
    return out


def pooled(readings: pd.DataFrame, warmup: dict[str, int]) -> pd.DataFrame:
    """Per experiment x variant x profiler: :func:`kind_growth` over its replicates.
    ``readings``: every run's kind readings, keyed by run (experiment, variant, profiler, replicate)."""
    keys = ["experiment", "variant", "profiler"]
    if readings.empty:
        return pd.DataFrame(columns=[*keys, *COLUMNS])
    frames = []
    for key, group in readings.groupby(keys, sort=False):
        runs = [run for _, run in group.groupby("replicate", sort=True)]
        frames.append(kind_growth(runs, warmup.get(key[0], 1)).assign(**dict(zip(keys, key))))
    return pd.concat(frames, ignore_index=True)[[*keys, *COLUMNS]]

