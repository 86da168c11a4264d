"""What the profilers say, side by side: heap growth per unit, overheads, visibility.

Every profiler's timeline is put on the run's own unit axis (each point's time is
placed between the unit marks around it), so a massif snapshot, a jemalloc interval
dump and a tracemalloc snapshot all give "bytes per unit" that can be set against
the sampler's RSS growth.  Heavy profilers run a scaled-down workload: growth is
divided by the scale to compare with full-size runs (the per-unit work in the
experiments is linear in the scaled size parameter).
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from leaklab import experiments, profilers
from leaklab.model import growth

# The timeline source each profiler's growth is measured on.
HEAP_SOURCES = {
    "massif": "massif",
    "jemalloc": "jemalloc-interval",
    "heaptrack": "heaptrack",
    "tracemalloc": "tracemalloc",
}
# Prefixes of the symbols allocators export when a library links its own copy.
BUNDLED_ALLOCATOR_MARKERS = {"je_malloc": "jemalloc", "je_mallocx": "jemalloc", "mi_malloc": "mimalloc",
                             "tc_malloc": "tcmalloc"}
AGREEMENT_TOLERANCE = 0.25
NATIVE_HEAP_PROFILERS = ("massif", "jemalloc", "heaptrack")


def unit_position(t: pd.Series, marks: pd.DataFrame) -> pd.Series:
    """Fractional unit of each time: 2.5 is halfway through the third unit."""
    bounds = marks[marks["phase"].isin(growth.BOUNDARY_PHASES) & marks["unit"].notna()]
    bounds = bounds.sort_values("t").drop_duplicates("unit", keep="last")
    if len(bounds) < 2:
        return pd.Series(np.nan, index=t.index)
    return pd.Series(np.interp(t, bounds["t"], bounds["unit"].astype(float), left=np.nan, right=np.nan),
                     index=t.index)


def heap_growth(timeline: pd.DataFrame, marks: pd.DataFrame, profiler: str, warmup: int) -> tuple[float, int]:
    """Growth per unit of the profiler's heap after the warm-up, and the points used."""
    points = timeline[timeline["source"] == HEAP_SOURCES.get(profiler, profiler)].copy()
    points["unit"] = unit_position(points["t"], marks)
    points = points[points["unit"] > warmup]
    return growth.slope_per_unit(points["unit"], points["heap_bytes"].astype(float)), len(points)


def per_unit_costs(marks: pd.DataFrame) -> tuple[float, float]:
    """Median wall and CPU seconds of one unit of work, from consecutive unit marks."""
    units = marks[(marks["phase"] == "unit") & marks["unit"].notna()].sort_values("unit")
    if len(units) < 2 or "cpu_s" not in units:
        return math.nan, math.nan
    return float(units["t"].diff().median()), float(units["cpu_s"].diff().median())


def overhead_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each profiler's cost against ``plain`` for the same experiment and variant.

    ``cpu_ratio``/``wall_ratio`` compare whole runs (start-up included, at each run's
    own scale); ``*_per_unit_ratio`` compare one unit of work, normalised by scale,
    which is the figure that carries to long runs.
    """
    keys = ["experiment", "variant"]
    ok = runs[runs["status"] == "ok"]
    plain = ok[ok["profiler"] == "plain"].groupby(keys)[
        ["wall_s", "cpu_s", "wall_per_unit_s", "cpu_per_unit_s"]].median().add_prefix("plain_")
    others = ok[ok["profiler"] != "plain"].join(plain, on=keys, how="inner")
    if others.empty:
        return pd.DataFrame(columns=[*keys, "profiler", "scale", "wall_ratio", "cpu_ratio",
                                     "wall_per_unit_ratio", "cpu_per_unit_ratio"])
    scale = others["scale"].fillna(1.0)
    return pd.DataFrame({
        "experiment": others["experiment"], "variant": others["variant"], "profiler": others["profiler"],
        "replicate": others["replicate"], "scale": scale,
        "wall_ratio": others["wall_s"] / others["plain_wall_s"],
        "cpu_ratio": others["cpu_s"] / others["plain_cpu_s"],
        "wall_per_unit_ratio": others["wall_per_unit_s"] / scale / others["plain_wall_per_unit_s"],
        "cpu_per_unit_ratio": others["cpu_per_unit_s"] / scale / others["plain_cpu_per_unit_s"],
    }).reset_index(drop=True)


def agreement_table(profiler_growth: pd.DataFrame, pooled: pd.DataFrame) -> pd.DataFrame:
    """Growth per unit by profiler beside the sampler's RSS growth of the plain runs.

    ``ratio`` is the profiler's full-scale growth over plain RSS growth; it is judged
    only for native heap profilers where RSS grows by at least its leak threshold (a
    ratio of two noise figures says nothing, and tracemalloc cannot see malloc),
    within ``AGREEMENT_TOLERANCE``.
    """
    if profiler_growth.empty:
        return pd.DataFrame()
    rss = pooled[(pooled["profiler"] == "plain") & (pooled["metric"] == "rss_bytes")]
    rss = rss.set_index(["experiment", "variant"])[["growth_per_unit", "verdict"]].rename(
        columns={"growth_per_unit": "plain_rss_growth_per_unit", "verdict": "plain_rss_verdict"})
    table = profiler_growth.groupby(["experiment", "variant", "profiler"], as_index=False).agg(
        unit=("unit", "first"), scale=("scale", "first"), layer=("layer", "first"),
        heap_growth_per_unit=("heap_growth_per_unit", "median"), points=("points", "median"))
    table["heap_growth_per_unit_full_scale"] = table["heap_growth_per_unit"] / table["scale"]
    table = table.join(rss, on=["experiment", "variant"])
    table["ratio"] = table["heap_growth_per_unit_full_scale"] / table["plain_rss_growth_per_unit"]
    judged = ((table["plain_rss_verdict"] == "leak") & table["ratio"].notna()
              & table["profiler"].isin(NATIVE_HEAP_PROFILERS))
    table["agrees"] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    table.loc[judged, "agrees"] = (table.loc[judged, "ratio"] - 1).abs() <= AGREEMENT_TOLERANCE
    table["tolerance"] = AGREEMENT_TOLERANCE
    return table


def bundled_allocators(paths: list[str]) -> dict[str, str]:
    """Shared objects that export their own allocator's symbols: path -> allocator."""
    found = {}
    for path in paths:
        try:
            symbols = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                                     text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in symbols.splitlines():
            name = line.rsplit(" ", 1)[-1]
            for marker, allocator in BUNDLED_ALLOCATOR_MARKERS.items():
                if name.endswith(marker) and name != marker:
                    prefix = name.removesuffix(marker.split("_", 1)[1])
                    found[path] = f"{allocator} ({prefix}* symbols)"
                    break
            if path in found:
                break
    return found


def visibility_table(experiment_profilers: dict[str, list[str]],
                     specs: Mapping[str, experiments.Spec]) -> pd.DataFrame:
    """Which layer each profiler sees for each experiment, and what it cannot see.

    A library that links its own allocator hides its heap from every profiler that
    hooks malloc (massif, heaptrack, a preloaded jemalloc): they see its page-sized
    chunks at best.  Growth in kernel objects (deleted fds, slab) is outside every
    heap profiler and outside RSS.  A language runtime with its own heap (Go maps its
    arenas itself) is invisible to them the same way: they see only what cgo and the C
    libraries malloc.
    """
    rows = []
    for name, used in experiment_profilers.items():
        spec = specs[name]
        bundled = bundled_allocators(spec.native_libraries())
        for profiler in used:
            note = ""
            sees_library_heap = profiler != "tracemalloc"
            if bundled and profiler in ("massif", "jemalloc", "heaptrack"):
                libs = "; ".join(f"{Path(p).name}: {a}" for p, a in bundled.items())
                sees_library_heap = False
                note = (f"library links its own allocator ({libs}): {profiler} sees only the large chunks it "
                        "maps, not the objects it allocates from it (what the library allocates with malloc or "
                        "operator new it does see); use massif pages_as_heap or the library's own accounting")
            elif spec.runtime_heap and profiler in ("massif", "jemalloc", "heaptrack"):
                note = (f"the {spec.runtime_heap} runtime maps its own heap, not through malloc: {profiler} sees only "
                        f"C allocations (cgo, C libraries), not {spec.runtime_heap} objects; the program's "
                        "go_heap_* metrics (runtime.MemStats) and RSS see them (massif pages_as_heap as mapped pages)")
            rows.append({"experiment": name, "profiler": profiler, "layer": profilers.LAYERS[profiler],
                         "sees_library_heap": sees_library_heap, "bundled_allocator": bool(bundled), "note": note})
    return pd.DataFrame(rows)
