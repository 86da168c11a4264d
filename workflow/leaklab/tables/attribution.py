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

Beside these, the RSS growth is placed in the address space (``leaklab.process.mappings``, read
at unit marks): one ``mapping: <kind>`` layer per kind of mapping, which add up to the
RSS growth, each with a plain sentence on what lives there and which profilers can see
it; and, for a tree of more than one process, one ``process`` layer per process, so a
leak in a child or helper is named by its pid and command line.
"""

from __future__ import annotations

import math

import pandas as pd

from leaklab import profilers
from leaklab.process import mappings

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


MAPPING_PREFIX = "mapping: "
PROCESS_PREFIX = "process "
# a kind of mapping whose growth is at least this share of the RSS growth holds the leak
HOLDS_SHARE = 0.25
# the placed growth is held to this share of the larger of the RSS growth and the leak threshold
PLACED_WITHIN = 0.10
_KIND_WORDS = {
    mappings.BRK_HEAP: "brk heap: malloc's main arena (small blocks); heaptrack, massif and jemalloc see these "
                       "allocations",
    mappings.STACK: "thread stacks: one per thread, so a thread leak grows this (see threads); no heap profiler "
                    "sees it",
    mappings.FILE_BACKED: "file-backed mappings: mapped files and libraries, their pages in the page cache; no heap "
                          "profiler sees this",
    mappings.SHARED: "shared memory (shm, memfd, MAP_SHARED): counted whole in every process's RSS, split in PSS; "
                     "no heap profiler sees this",
    mappings.OTHER: "kernel pseudo-mappings (vdso, vvar, anon_inode)",
}
OUTSIDE_MALLOC = ("anonymous mappings outside malloc: heaptrack and massif cannot see this; massif "
                  "--pages-as-heap can")
ANONYMOUS_WORDS = ("anonymous mappings: malloc's large blocks (above its mmap threshold) and thread arenas, a "
                   "runtime's own heap (Go, pymalloc arenas) or mmap outside malloc; heaptrack and massif see only "
                   "the malloc part, massif --pages-as-heap sees all of it")


def kind_words(kind: str, growth_per_unit: float, native_heap_growth: float) -> str:
    """What lives in a kind of mapping and who can see it, in plain words.  Anonymous
    growth that a native heap metric does not cover (less than half of it) is said to
    be outside malloc."""
    if kind != mappings.ANONYMOUS:
        return _KIND_WORDS[kind]
    if not math.isnan(native_heap_growth) and growth_per_unit > 0 and native_heap_growth < growth_per_unit / 2:
        return OUTSIDE_MALLOC
    return ANONYMOUS_WORDS


def _plain(frame: pd.DataFrame, experiment: str, variant: str) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame()
    return frame[(frame["experiment"] == experiment) & (frame["variant"] == variant)
                 & (frame["profiler"] == "plain")]


def _mapping_layers(kinds: pd.DataFrame, native_heap_growth: float, rss_growth: float) -> dict[str, dict]:
    """One layer per kind of mapping: its share of the RSS growth at the readings, pooled
    over the replicates (``leaklab.tables.placement``)."""
    layers: dict[str, dict] = {}
    if kinds.empty:  # no mappings read (a run from before they were, or none at a unit mark)
        return layers
    for kind, group in kinds.groupby("kind", sort=False):
        value = float(group["rss_growth_per_unit"].iloc[0])
        share = value / rss_growth if rss_growth and not math.isnan(rss_growth) else math.nan
        words = kind_words(kind, value, native_heap_growth)
        holds = not math.isnan(share) and share >= HOLDS_SHARE
        layers[MAPPING_PREFIX + kind] = {"source": "smaps at unit marks", "growth_per_unit": value,
                                         "retained": math.nan, "verdict": None, "share_of_rss": share,
                                         "explanation": words, "holds_growth": holds}
    return layers


def _process_layers(processes: pd.DataFrame, rss_growth: float) -> dict[str, dict]:
    """One layer per process of the first replicate's tree, when it has more than one."""
    if processes.empty:
        return {}
    first = processes[processes["replicate"] == processes["replicate"].min()]
    if len(first) < 2:
        return {}
    layers = {}
    for _, proc in first.iterrows():
        value = float(proc["rss_growth_per_unit"])
        share = value / rss_growth if rss_growth and not math.isnan(rss_growth) else math.nan
        holds = not math.isnan(share) and share >= HOLDS_SHARE
        layers[f"{PROCESS_PREFIX}{proc['pid']}: {proc['command']}"] = {
            "source": "smaps at unit marks (own RSS)", "growth_per_unit": value, "retained": math.nan,
            "verdict": None, "share_of_rss": share, "holds_growth": holds,
            "explanation": f"pid {proc['pid']} (parent {proc['ppid']}), PSS "
                           f"{proc['pss_growth_per_unit'] / 1024:+.1f} KiB per unit"}
    return layers


def placement_gap(rss_growth: float, placed_growth: float, leak_per_unit: float) -> dict[str, float | bool]:
    """How far the placed growth (the kinds of mapping, at the unit readings) is from the
    verdict's RSS growth (the program's own marks): the gap, and whether it is within
    :data:`PLACED_WITHIN` of the larger of the RSS growth and the leak threshold (so a
    variant that does not grow is held to a share of its threshold, not of ~0)."""
    gap = placed_growth - rss_growth
    scale = max(abs(rss_growth), leak_per_unit if not math.isnan(leak_per_unit) else 0.0)
    within = bool(abs(gap) <= PLACED_WITHIN * scale) if scale > 0 and not math.isnan(gap) else math.nan
    return {"placed_gap_per_unit": gap, "placed_within": within}


def table(growth: pd.DataFrame, agreement: pd.DataFrame | None = None, mapping_kinds: pd.DataFrame | None = None,
          processes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per experiment x variant x layer: growth per unit, retained, verdict;
    the mapping and process layers carry their share of the RSS growth and what they
    hold in plain words (``explanation``).  ``mapping_kinds``: each variant's growth by
    kind of mapping, pooled over its replicates (``leaklab.tables.placement.pooled``)."""
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
            rss_growth = layers["RSS (total)"]["growth_per_unit"]
            native = layers.get("native heap", {}).get("growth_per_unit", math.nan)
            placed = _mapping_layers(_plain(mapping_kinds, experiment, variant), native, rss_growth)
            if placed:
                total = sum(v["growth_per_unit"] for v in placed.values() if not math.isnan(v["growth_per_unit"]))
                layers["RSS (total)"].update(placed_growth_per_unit=total,
                                             **placement_gap(layers["RSS (total)"]["growth_per_unit"], total,
                                                             _value(rss, "leak_per_unit")))
            layers.update(placed)
            layers.update(_process_layers(_plain(processes, experiment, variant), rss_growth))
        for layer, values in layers.items():
            rows.append({"experiment": experiment, "variant": variant, "unit": unit, "layer": layer, **values})
    frame = pd.DataFrame(rows)
    if frame.empty:  # no plain run could be read: nothing to attribute
        return frame
    frame["where"] = frame.apply(_where, axis=1)
    if "holds_growth" in frame:  # a mapping or process holds the growth of a leaking RSS
        rss_leaks = frame[(frame["layer"] == "RSS (total)") & (frame["verdict"] == "leak")]
        leaking = set(zip(rss_leaks["experiment"], rss_leaks["variant"]))
        in_leak = pd.Series([(e, v) in leaking for e, v in zip(frame["experiment"], frame["variant"])],
                            index=frame.index)
        holds = frame["holds_growth"].eq(True) & in_leak
        frame.loc[holds, "where"] = "grows here"
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


# what each profiler cannot see, for the visibility table and the agreement's "why"
BLIND_SPOTS = {
    "plain": "no sites: it measures the process (RSS, PSS/USS, fds) and, at unit marks, its mappings by kind",
    "massif": "malloc/new only: not mmap outside malloc, a runtime's own heap (Go), file mappings, stacks or kernel "
              "objects (with pages_as_heap it sees every mapped page, without telling heap from the rest)",
    "heaptrack": "malloc/new only: not mmap outside malloc, a runtime's own heap (Go), file mappings, stacks or "
                 "kernel objects",
    "jemalloc": "malloc/new through jemalloc only (sampled): not mmap outside malloc, a runtime's own heap (Go), file "
                "mappings, stacks or kernel objects",
    "tracemalloc": "Python allocations only: not what C libraries malloc, not mmap, not kernel objects",
    "pprof": "Go's heap only: not what cgo and C libraries malloc, not mmap outside Go, not kernel objects",
}


def holding(attribution_table: pd.DataFrame, experiment: str, variant: str) -> str:
    """The kinds of mapping (and processes) that hold a variant's RSS growth, with their
    shares and plain words; empty when no mapping was read or nothing grows."""
    if attribution_table is None or attribution_table.empty or "share_of_rss" not in attribution_table:
        return ""
    mine = attribution_table[(attribution_table["experiment"] == experiment)
                             & (attribution_table["variant"] == variant)
                             & attribution_table["layer"].str.startswith(MAPPING_PREFIX)
                             & attribution_table["holds_growth"].eq(True)]
    return "; ".join(f"{r.share_of_rss:.0%} in {r.explanation}"
                     for r in mine.sort_values("share_of_rss", ascending=False).itertuples())


def explain_agreement(agreement: pd.DataFrame, attribution_table: pd.DataFrame) -> pd.DataFrame:
    """``agreement`` with ``why``: where a profiler's growth disagrees with RSS (or was
    not judged), what it cannot see and which layer holds the growth, never a bare False."""
    if agreement.empty:
        return agreement
    out = agreement.copy()

    def why(row: pd.Series) -> str:
        if pd.notna(row.get("agrees")) and bool(row.get("agrees")):
            return "sees the growth"
        if row.get("plain_rss_verdict") != "leak":
            return f"not judged: RSS does not leak ({row.get('plain_rss_verdict')}), so there is no growth to find"
        where = holding(attribution_table, row["experiment"], row["variant"])
        seen = f"{row['profiler']} sees {BLIND_SPOTS.get(row['profiler'], profilers.LAYERS.get(row['profiler'], ''))}"
        ratio = row.get("ratio")
        part = f"it finds {ratio:.0%} of the RSS growth" if pd.notna(ratio) else "it finds none of the RSS growth"
        return f"{part}; {seen}" + (f"; the growth is {where}" if where else "")

    out["why"] = out.apply(why, axis=1)
    return out


def explain_visibility(visibility: pd.DataFrame, attribution_table: pd.DataFrame) -> pd.DataFrame:
    """``visibility`` with ``cannot_see`` (each profiler's blind spots) and ``growth_in``
    (the layers that hold each leaking variant's growth), so an empty note says why."""
    if visibility.empty:
        return visibility
    out = visibility.copy()
    out["cannot_see"] = out["profiler"].map(BLIND_SPOTS).fillna("")
    growth_in = {}
    if attribution_table is not None and not attribution_table.empty:
        leaking = attribution_table[(attribution_table["layer"] == "RSS (total)")
                                    & (attribution_table["verdict"] == "leak")]
        for experiment, group in leaking.groupby("experiment"):
            growth_in[experiment] = " | ".join(
                f"{v}: {holding(attribution_table, experiment, v) or 'no mapping read'}" for v in group["variant"])
    out["growth_in"] = out["experiment"].map(growth_in).fillna("")
    return out
