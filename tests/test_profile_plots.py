"""The profilers' figures draw what the profilers saw: heap timelines, top allocation
sites, the profilers' overhead, and what each says when a profiler recorded nothing."""

import pandas as pd
import pytest

from leaklab.report import profile_plots
from leaklab.report.figstyle import texts_outside
from test_plots import BUILT_INS, MIB, gid, texts


def test_heap_timelines_draw_one_panel_per_profiler(tmp_path):
    rows = [{"experiment": "rocksdb_merge", "variant": v, "profiler": p, "replicate": 1, "t": t,
             "heap_bytes": (t * 10 if v == "capi-real" else 1) * MIB, "source": s}
            for p, s in (("massif", "massif"), ("heaptrack", "heaptrack")) for v in ("capi-real", "capi_fixed-real")
            for t in (0.0, 1.0, 2.0)]
    rows.append({**rows[0], "source": "massif-extra"})  # not a heap source: left out
    fig = profile_plots.heap_timelines(pd.DataFrame(rows), "rocksdb_merge", tmp_path / "h.png", specs=BUILT_INS)
    assert [ax.get_title() for ax in fig.axes] == ["massif", "heaptrack"]
    assert gid(fig.axes[0], "variant:capi-real")[0].get_ydata().max() == pytest.approx(20)
    assert len(gid(fig.axes[0], "variant:capi-real") + gid(fig.axes[0], "variant:capi_fixed-real")) == 2
    assert fig.axes[0].get_ylabel() == "heap (MiB)" and fig.axes[0].get_ylim()[0] == 0


def test_top_sites_writes_each_site_above_its_bar(tmp_path):
    rows = [{"experiment": "rocksdb_merge", "variant": "capi-real", "profiler": "heaptrack", "kind": "leaked",
             "rank": r, "bytes": b, "frame": f, "native_caller": c}
            for r, b, f, c in ((1, 320 * MIB, "malloc_in_merge (shim.c:10)", "rocksdb::FullMergeV2"),
                               (2, MIB, "PyMem_Malloc", ""))]
    rows.append({**rows[1], "variant": "capi_fixed-real", "rank": 1})
    fig = profile_plots.top_sites(pd.DataFrame(rows), "rocksdb_merge", tmp_path / "s.png", specs=BUILT_INS)
    ax, fixed = fig.axes  # variants in the experiment's order
    assert fixed.get_title() == "capi_fixed-real under heaptrack (leaked)"
    assert fixed.get_xlim() == ax.get_xlim() and ax.get_xlim()[1] > 320  # 1 MiB looks small beside 320
    assert [b.get_width() for b in gid(ax, "site")] == pytest.approx([320, 1])
    texts = [t.get_text() for t in ax.texts]
    assert "rocksdb::FullMergeV2 <- malloc_in_merge" in texts and "PyMem_Malloc" in texts
    assert ax.get_title() == "capi-real under heaptrack (leaked)"


def test_profiler_overhead_draws_one_bar_per_profiler_and_experiment(tmp_path):
    rows = [{"profiler": p, "experiment": e, "variant": "v", "cpu_per_unit_ratio": r}
            for p, e, r in (("massif", "rocksdb_merge", 18.6), ("heaptrack", "fd_leak", 1.19),
                            ("heaptrack", "rocksdb_merge", 0.0))]  # 0.0: no CPU time recorded
    fig = profile_plots.profiler_overhead(pd.DataFrame(rows), tmp_path / "o.png", specs=BUILT_INS)
    ax = fig.axes[0]
    assert [b.get_width() for b in gid(ax, "ratio")] == pytest.approx([18.6, 1.19, 0.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["massif · rocksdb_merge", "heaptrack · fd_leak",
                                                            "heaptrack · rocksdb_merge"]
    assert texts(ax) == ["18.6x", "1.19x"] and texts(ax, "missing") == ["missing: no CPU time per unit"]
    assert ax.get_xscale() == "log" and gid(ax, "plain")[0].get_xdata()[0] == 1


def test_top_sites_show_heaptrack_growth_where_it_was_asked_for(tmp_path):
    base = {"experiment": "duckdb_load", "variant": "load_on", "profiler": "heaptrack", "native_caller": ""}
    rows = [{**base, "kind": "leaked", "rank": 1, "bytes": MIB, "frame": "PyList_New"},
            {**base, "kind": "growth", "rank": 1, "bytes": 16_000, "frame": "RegisterMemory"},
            {**base, "profiler": "jemalloc", "kind": "leaked", "rank": 1, "bytes": MIB, "frame": "je_site"},
            {**base, "profiler": "jemalloc", "kind": "growth", "rank": 1, "bytes": MIB, "frame": "je_growth"}]
    fig = profile_plots.top_sites(pd.DataFrame(rows), "duckdb_load", tmp_path / "s.png", specs=BUILT_INS)
    titles = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in fig.axes}
    assert "RegisterMemory" in titles["load_on under heaptrack (growth)"]
    assert "je_site" in titles["load_on under jemalloc (leaked)"]


def test_profile_figures_say_what_is_missing_and_the_scale(tmp_path):
    runs = pd.DataFrame([{"experiment": "go_map", "variant": "kept", "profiler": "massif", "replicate": 1,
                          "status": "ok", "scale": 0.1},
                         {"experiment": "dict_shrink", "variant": "dict", "profiler": "massif", "replicate": 1,
                          "status": "ok", "scale": 0.1}])
    fig = profile_plots.top_sites(pd.DataFrame(columns=["experiment", "kind", "rank", "profiler", "variant"]),
                                  "go_map", tmp_path / "s.png", runs=runs, specs=BUILT_INS)
    message = fig.axes[0].texts[0].get_text()
    assert message.startswith("go_map: massif ran but recorded no allocation site") and "Go's own heap" in message
    fig = profile_plots.heap_timelines(pd.DataFrame(), "go_map", tmp_path / "h.png", runs=runs, specs=BUILT_INS)
    assert fig.axes[0].texts[0].get_text().startswith("go_map: massif ran but recorded no heap timeline")
    fig = profile_plots.top_sites(pd.DataFrame(), "fd_leak", tmp_path / "n.png", runs=runs, specs=BUILT_INS)
    assert "no profiler ran on this experiment" in fig.axes[0].texts[0].get_text()
    heap = pd.DataFrame([{"experiment": "dict_shrink", "variant": "dict", "profiler": "massif", "replicate": 1,
                          "t": t, "heap_bytes": 3.244 * MIB + t * 1000, "source": "massif"} for t in range(5)])
    fig = profile_plots.heap_timelines(heap, "dict_shrink", tmp_path / "d.png", runs=runs, specs=BUILT_INS)
    assert fig.axes[0].get_title() == "massif (workload at 1/10 scale)"
    assert fig.axes[0].get_ylim()[0] == 0  # 3.244-3.248 MiB is not drawn as a climb across the panel


def test_long_frame_names_wrap_inside_the_figure(tmp_path):
    frame = "duckdb::" + "::".join(["VeryLongTemplateName<duckdb::Allocator, std::unique_ptr<Thing>>"] * 4)
    rows = [{"experiment": "duckdb_load", "variant": "load_on", "profiler": "heaptrack", "kind": "leaked",
             "rank": 1, "bytes": 3000.0, "frame": frame, "native_caller": ""}]
    fig = profile_plots.top_sites(pd.DataFrame(rows), "duckdb_load", tmp_path / "s.png", specs=BUILT_INS)
    (label,) = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "site_label"]
    assert label.count("\n") == 1 and label.endswith("...")
    assert fig.axes[0].get_xlabel() == "KiB"  # 3000 B drawn in KiB, not as 0.003 MiB
    assert texts_outside(fig) == []
