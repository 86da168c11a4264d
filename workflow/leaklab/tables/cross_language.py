"""The same mechanism across languages, side by side.

Each story is reproduced in Python (the analysis language) and in the language it
happened in (Go, and C++ for the original's control).  This table puts the runs of one
mechanism next to each other: the metric that measures the mechanism in each program
(glibc's heap for merged values, the dict's table or the Go heap for a map, descriptors
on deleted files), its growth per unit and retention with the verdict, RSS beside it,
where the memory lives, the largest site a profiler found still allocated, and what
the original program or article reported.  Only plain runs are compared (a profiled
run's RSS includes the profiler, and it runs a scaled workload).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class Entry:
    mechanism: str
    language: str
    experiment: str
    variant: str
    role: str      # leaky, fixed, dummy, control
    metric: str    # what measures the mechanism in this program
    measure: str   # growth (per unit) or retained (kept after each unit released everything)
    where: str     # where the memory, or the handle, lives
    original: str  # the original program's or article's figure, when it has one


MERGE = "merge operator: merged value never freed"
MAP = "map/dict keeps its table after deleting every key"
FDS = "handles to deleted LOCK files"
C_HEAP = "glibc heap: the malloc'd merged values"

ENTRIES = (
    Entry(MERGE, "Python (ctypes)", "rocksdb_merge", "capi-real", "leaky", "malloc_in_use_bytes", "growth",
          C_HEAP + " (ctypes callback)", ""),
    Entry(MERGE, "Python (ctypes)", "rocksdb_merge", "capi_fixed-real", "fixed", "malloc_in_use_bytes", "growth",
          C_HEAP + ", freed by delete_value", ""),
    Entry(MERGE, "Python (C++ binding)", "rocksdb_merge", "binding-real", "control", "malloc_in_use_bytes", "growth",
          "std::string owned by RocksDB", ""),
    Entry(MERGE, "Go (cgo)", "go_merge", "leaky-real", "leaky", "malloc_in_use_bytes", "growth",
          C_HEAP + " (C.CBytes under runtime.asmcgocall)",
          "massif peak 518.2 MiB, 486.5 MiB under runtime.asmcgocall, linear (1,048,576 keys, 10 passes)"),
    Entry(MERGE, "Go (cgo)", "go_merge", "leaky-dummy", "dummy", "malloc_in_use_bytes", "growth",
          "nothing: an empty slice is never malloc'd", "massif peak 30.1 MiB"),
    Entry(MERGE, "Go (cgo)", "go_merge", "fixed-real", "fixed", "malloc_in_use_bytes", "growth",
          C_HEAP + ", freed by delete_value", "gorocksdb PR #152: delete_value frees"),
    Entry(MERGE, "C++", "cpp_merge", "real", "control", "malloc_in_use_bytes", "growth",
          "std::string owned by RocksDB", "massif peak 21.2 MiB"),
    Entry(MAP, "Python (CPython dict)", "dict_shrink", "dict", "leaky", "dict_size_bytes", "retained",
          "the dict's hash table (resized only on insert)",
          "sys.getsizeof 41,943,128 B after deleting all of 1M int keys (Python 3.11)"),
    Entry(MAP, "Python (CPython dict)", "dict_shrink", "rebuilt", "fixed", "dict_size_bytes", "retained",
          "a new dict: the old table is freed", "dict(d): 64 B"),
    Entry(MAP, "Go", "go_map", "kept", "leaky", "go_heap_alloc_bytes", "retained",
          "the map's buckets, in the Go runtime's heap",
          "461 MB after 1M inserts, 293 MB after deleting every key and a GC (100 Go Mistakes #28)"),
    Entry(MAP, "Go", "go_map", "rebuilt", "fixed", "go_heap_alloc_bytes", "retained",
          "a new map: the old buckets are garbage", ""),
    Entry(MAP, "Go", "go_map", "rebuilt_free", "fixed", "go_heap_alloc_bytes", "retained",
          "a new map, pages handed back (debug.FreeOSMemory)", ""),
    Entry(FDS, "Python", "fd_leak", "leak", "leaky", "deleted_fds", "growth",
          "kernel: open files on unlinked inodes (outside RSS)", ""),
    Entry(FDS, "Python", "fd_leak", "close", "fixed", "deleted_fds", "growth", "closed before the unlink", ""),
    Entry(FDS, "Go", "go_fd", "leak", "leaky", "deleted_fds", "growth",
          "kernel: open files on unlinked inodes (outside RSS)",
          "Dolt before PR #9557: one LOCK handle per stats rotation"),
    Entry(FDS, "Go", "go_fd", "close", "fixed", "deleted_fds", "growth", "closed before the unlink",
          "TestGCDoesNotLeakFd: next fd unchanged after 64 stats GCs"),
)

COLUMNS = ["mechanism", "language", "experiment", "variant", "role", "metric", "measure", "unit",
           "growth_per_unit", "ci_low", "ci_high", "retained", "level", "verdict",
           "rss_growth_per_unit", "rss_retained", "rss_verdict",
           "where", "top_site", "top_site_bytes", "top_site_profiler", "original"]


def _top_site(sites: pd.DataFrame, experiment: str, variant: str) -> dict:
    """The largest site any profiler found still allocated at the end of the run."""
    if sites.empty or "kind" not in sites:
        return {"top_site": None, "top_site_bytes": None, "top_site_profiler": None}
    leaked = sites[(sites["experiment"] == experiment) & (sites["variant"] == variant) & (sites["kind"] == "leaked")]
    if leaked.empty:
        return {"top_site": None, "top_site_bytes": None, "top_site_profiler": None}
    top = leaked.loc[leaked["bytes"].idxmax()]
    return {"top_site": top["frame"], "top_site_bytes": float(top["bytes"]), "top_site_profiler": top["profiler"]}


def table(growth: pd.DataFrame, top_sites: pd.DataFrame) -> pd.DataFrame:
    """One row per entry whose experiment and variant ran (plain), in ``ENTRIES`` order;
    a mechanism is kept only when at least two languages measured it."""
    plain = growth[growth["profiler"] == "plain"].set_index(["experiment", "variant", "metric"]) \
        if len(growth) else pd.DataFrame()
    rows = []
    for entry in ENTRIES:
        key = (entry.experiment, entry.variant, entry.metric)
        if plain.empty or key not in plain.index:
            continue
        row = plain.loc[key]
        rss = plain.loc[(entry.experiment, entry.variant, "rss_bytes")] \
            if (entry.experiment, entry.variant, "rss_bytes") in plain.index else None
        rows.append({
            **asdict(entry), "unit": row["unit"],
            **{c: row[c] for c in ("growth_per_unit", "ci_low", "ci_high", "retained", "level", "verdict")},
            "rss_growth_per_unit": None if rss is None else rss["growth_per_unit"],
            "rss_retained": None if rss is None else rss["retained"],
            "rss_verdict": None if rss is None else rss["verdict"],
            **_top_site(top_sites, entry.experiment, entry.variant),
        })
    frame = pd.DataFrame(rows, columns=COLUMNS)
    languages = frame.groupby("mechanism")["language"].nunique()
    return frame[frame["mechanism"].isin(languages[languages >= 2].index)].reset_index(drop=True)
