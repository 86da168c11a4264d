"""Where the growth lives: RSS growth per unit split into the layers that hold it.

For every experiment and variant (``plain`` runs), each metric is read as a layer:

- Python heap: ``dict_size_bytes`` (the experiment's own Python structure) or, where
  the tracemalloc profiler ran, its traced heap growth divided by its scale;
- native heap: glibc's ``mallinfo2`` in use (``malloc_in_use_bytes``); CPython takes
  objects over 512 bytes (a dict's table, say) from malloc, so this layer includes
  those Python objects; small ones live in pymalloc arenas that malloc does not see;
- library: a library's own accounting (``duckdb_memory_bytes``);
- allocator retention and other: RSS growth not explained by the heap layers (counted
  once: the larger of the Python and native heap, plus the library's);
- kernel: deleted fds and slab bytes, which are outside RSS altogether.

Experiments whose units release memory (``dict_shrink``, ``planted``) are attributed
by what they retain as well as by growth.
"""

from __future__ import annotations

import math

import pandas as pd

LAYERS = {
    "dict_size_bytes": "Python heap",
    "malloc_in_use_bytes": "native heap",
    "duckdb_memory_bytes": "library accounting",
    "deleted_fds": "kernel: deleted fds",
    "slab_bytes": "kernel: slab",
}
HEAP_LAYERS = ("Python heap", "native heap", "library accounting")
RESIDUAL = "allocator retention / other"
# RSS of a program that reports no heap metric (an outside program): nothing tells the
# heap from the allocator, so the layer says so instead of guessing
NO_HEAP = "native or allocator (no heap metric from this program)"


def _value(row: pd.Series, column: str) -> float:
    value = row.get(column, math.nan)
    return float(value) if pd.notna(value) else math.nan


def table(growth: pd.DataFrame, agreement: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per experiment x variant x layer: growth per unit, retained, verdict."""
    if growth.empty:
        return pd.DataFrame()
    plain = growth[growth["profiler"] == "plain"]
    traced = pd.DataFrame()
    if agreement is not None and not agreement.empty:
        traced = agreement[agreement["profiler"] == "tracemalloc"].set_index(["experiment", "variant"])
    rows = []
    for (experiment, variant), group in plain.groupby(["experiment", "variant"]):
        by_metric = group.set_index("metric")
        unit = group["unit"].iloc[0]
        layers: dict[str, dict] = {}
        for metric, layer in LAYERS.items():
            if metric in by_metric.index:
                row = by_metric.loc[metric]
                layers[layer] = {"source": metric, "growth_per_unit": _value(row, "growth_per_unit"),
                                 "retained": _value(row, "retained"), "verdict": row["verdict"]}
        if (experiment, variant) in traced.index and "Python heap" not in layers:
            row = traced.loc[(experiment, variant)]
            layers["Python heap"] = {"source": "tracemalloc", "verdict": None,
                                     "growth_per_unit": _value(row, "heap_growth_per_unit_full_scale"),
                                     "retained": math.nan}
        if "rss_bytes" in by_metric.index:
            rss = by_metric.loc["rss_bytes"]
            def residual(column: str) -> float:
                total = _value(rss, column)
                heaps = [layers[n][column] for n in ("Python heap", "native heap")
                         if n in layers and not math.isnan(layers[n][column])]
                library = layers.get("library accounting", {}).get(column, math.nan)
                explained_total = max(heaps, default=0.0) + (0.0 if math.isnan(library) else library)
                return total - explained_total if not math.isnan(total) else math.nan

            layers["RSS (total)"] = {"source": "rss_bytes", "growth_per_unit": _value(rss, "growth_per_unit"),
                                     "retained": _value(rss, "retained"), "verdict": rss["verdict"]}
            if any(name in layers for name in HEAP_LAYERS):
                layers[RESIDUAL] = {"source": "rss_bytes minus heap layers", "verdict": None,
                                    "growth_per_unit": residual("growth_per_unit"), "retained": residual("retained")}
            else:
                layers[NO_HEAP] = {**layers["RSS (total)"], "source": "rss_bytes (no heap metric)"}
        for layer, values in layers.items():
            rows.append({"experiment": experiment, "variant": variant, "unit": unit, "layer": layer, **values})
    frame = pd.DataFrame(rows)
    if frame.empty:  # no plain run could be read: nothing to attribute
        return frame
    frame["where"] = frame.apply(_where, axis=1)
    for column in ("growth_per_unit", "retained"):
        frame[f"stacked_{column}"] = frame.apply(lambda r: _stacked(frame, r, column), axis=1)
    return frame


def _stacked(frame: pd.DataFrame, row: pd.Series, column: str) -> float:
    """The layer's share for a stacked bar: the native heap without the Python objects
    it also holds, so that no byte is drawn twice."""
    value = row[column]
    if row["layer"] != "native heap" or math.isnan(value):
        return value
    python = frame[(frame["experiment"] == row["experiment"]) & (frame["variant"] == row["variant"])
                   & (frame["layer"] == "Python heap")][column]
    return max(value - float(python.iloc[0]), 0.0) if len(python) and pd.notna(python.iloc[0]) else value


def _where(row: pd.Series) -> str:
    """A short phrase for the report: does this layer hold the leak or the retention?"""
    if row["verdict"] == "leak":
        return "grows here"
    if row["verdict"] == "retention":
        return "retained here"
    return ""
