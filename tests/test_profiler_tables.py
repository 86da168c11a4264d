"""Profiler timelines on the unit axis, overheads, agreement, flame graphs."""

import math

import pandas as pd
import pytest

from leaklab.profilers import flamegraph
from leaklab.tables import profiler_tables


def marks(times):
    return pd.DataFrame({"t": times, "unit": pd.array(range(len(times)), dtype="Int64"),
                         "phase": ["start"] + ["unit"] * (len(times) - 1),
                         "cpu_s": [0.5 * i for i in range(len(times))]})


def test_profiler_timeline_growth_is_measured_per_unit_of_work():
    m = marks([1.0, 3.0, 5.0, 7.0, 9.0, 11.0])  # a unit every 2 s
    t = pd.Series([x / 2 for x in range(2, 23)])
    timeline = pd.DataFrame({"t": t, "heap_bytes": (t * 1e6).astype(int), "source": "massif"})
    slope, points = profiler_tables.heap_growth(timeline, m, "massif", warmup=1)
    assert slope == pytest.approx(2e6)  # 1 MB/s x 2 s per unit
    assert points > 5
    assert profiler_tables.unit_position(pd.Series([0.0, 4.0, 20.0]), m).tolist()[1] == 1.5
    assert math.isnan(profiler_tables.unit_position(pd.Series([0.0]), m).iloc[0])


def test_per_unit_costs_come_from_consecutive_marks():
    wall, cpu = profiler_tables.per_unit_costs(marks([1.0, 3.0, 5.0, 7.0]))
    assert (wall, cpu) == (2.0, 0.5)


def test_overhead_normalises_per_unit_cost_by_scale():
    runs = pd.DataFrame([
        {"experiment": "e", "variant": "v", "profiler": "plain", "replicate": 1, "status": "ok", "scale": 1.0,
         "wall_s": 10.0, "cpu_s": 8.0, "wall_per_unit_s": 1.0, "cpu_per_unit_s": 0.8},
        {"experiment": "e", "variant": "v", "profiler": "massif", "replicate": 1, "status": "ok", "scale": 0.1,
         "wall_s": 30.0, "cpu_s": 29.0, "wall_per_unit_s": 2.0, "cpu_per_unit_s": 1.6},
    ])
    row = profiler_tables.overhead_table(runs).iloc[0]
    assert row["cpu_per_unit_ratio"] == pytest.approx(20.0)  # 1.6 s for a tenth of the work
    assert row["cpu_ratio"] == pytest.approx(29 / 8)


def test_agreement_is_judged_only_for_native_heaps_on_a_real_leak():
    growth = pd.DataFrame([
        {"experiment": "e", "variant": "v", "profiler": p, "replicate": 1, "unit": "pass", "scale": s,
         "layer": "x", "heap_growth_per_unit": g, "points": 10}
        for p, s, g in (("massif", 0.1, 3.1e6), ("heaptrack", 1.0, 1.0e7), ("tracemalloc", 0.1, 0.0))
    ])
    pooled = pd.DataFrame([{"experiment": "e", "variant": "v", "profiler": "plain", "metric": "rss_bytes",
                            "growth_per_unit": 3.2e7, "verdict": "leak"}])
    table = profiler_tables.agreement_table(growth, pooled).set_index("profiler")
    assert bool(table.loc["massif", "agrees"]) is True
    assert bool(table.loc["heaptrack", "agrees"]) is False
    assert pd.isna(table.loc["tracemalloc", "agrees"])


def test_flame_graph_svg_from_collapsed_stacks(tmp_path):
    collapsed = tmp_path / "x.collapsed"
    collapsed.write_text("main;merge;malloc 3000\nmain;init;malloc 1000\nmain;shrink -50\ngarbage line\n")
    stacks = flamegraph.parse_collapsed(collapsed.read_text())
    assert stacks == {("main", "merge", "malloc"): 3000, ("main", "init", "malloc"): 1000}
    flamegraph.write(collapsed, tmp_path / "x.svg", "test")
    svg = (tmp_path / "x.svg").read_text()
    assert svg.startswith("<svg") and "merge (3,000 bytes, 75.0%)" in svg
