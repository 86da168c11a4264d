"""Figures draw what they say they draw: checked through the matplotlib objects each
figure function returns (points, intervals, threshold lines, colours, labels), on tables
constructed here with known numbers."""

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from leaklab import experiments
from leaklab.model import verdicts
from leaklab.report import (attribution_plots, compare_plots, cross_language_plots, plots, profile_plots, sweep_plots,
                            timeline_plots)
from leaklab.report.figstyle import VERDICT_COLOURS, texts_outside

MIB = 2**20
# What a figure rule gives its script for a configuration without command experiments
# (``command_specs()``), resolved as the script resolves it.
BUILT_INS = experiments.specs({"experiments": {}})


def growth_row(experiment, variant, metric, growth, low, high, verdict, *, bar=MIB, unit="pass", decides=False,
               retained=math.nan, retained_bar=16 * MIB, profiler="plain", warmup=1, late=math.nan):
    return {"experiment": experiment, "variant": variant, "profiler": profiler, "metric": metric, "unit": unit,
            "growth_per_unit": growth, "ci_low": low, "ci_high": high, "leak_per_unit": bar, "retained": retained,
            "retained_threshold": retained_bar, "verdict": verdict, "verdict_reason": "", "decides": decides,
            "decided_by": metric,
            "warmup_units": warmup, "n_units": 9, "late_growth_per_unit": late, "late_ci_low": math.nan,
            "late_ci_high": math.nan}


@pytest.fixture
def growth():
    """A leak of 32 thresholds, noise far below one, a retention and a kernel leak
    (``decides``: the row ``verdicts.variant_verdicts`` picks, most severe first)."""
    rows = [
        growth_row("rocksdb_merge", "capi-dummy", "rss_bytes", 0.0001 * MIB, -0.0001 * MIB, 0.002 * MIB, "stable",
                   decides=True),
        growth_row("rocksdb_merge", "capi-dummy", "malloc_in_use_bytes", 0.0, -0.0005 * MIB, 0.0005 * MIB, "stable"),
        growth_row("rocksdb_merge", "capi-real", "malloc_in_use_bytes", 32 * MIB, 30 * MIB, 34 * MIB, "leak"),
        growth_row("rocksdb_merge", "capi-real", "rss_bytes", 31.3 * MIB, 31.2 * MIB, 31.4 * MIB, "leak",
                   decides=True),
        growth_row("dict_shrink", "rebuilt", "rss_bytes", 0.002 * MIB, 0.001 * MIB, 0.01 * MIB, "stable", unit="cycle",
                   decides=True, retained=44 * MIB),
        growth_row("dict_shrink", "rebuilt", "dict_size_bytes", 0.0, 0.0, 0.0, "stable", unit="cycle",
                   retained=0.0),
        growth_row("dict_shrink", "dict", "rss_bytes", 0.0, -0.01 * MIB, 0.01 * MIB, "stable", unit="cycle",
                   retained=44 * MIB),
        growth_row("dict_shrink", "dict", "dict_size_bytes", 0.0, 0.0, 0.0, "retention", unit="cycle",
                   decides=True, retained=40 * MIB),
        growth_row("fd_leak", "leak", "deleted_fds", 1.0, 1.0, 1.0, "leak", bar=0.5, unit="rotation", decides=True),
        growth_row("fd_leak", "leak", "rss_bytes", 101.0, -50.0, 300.0, "stable", unit="rotation"),
        growth_row("fd_leak", "leak", "rss_bytes", 5 * MIB, 5 * MIB, 5 * MIB, "leak", profiler="heaptrack"),
    ]
    return pd.DataFrame(rows)


def verdicts_of(growth):
    """variant_verdicts as the aggregation writes it (the same function), checked against
    the rows the fixture marks as deciding."""
    table = verdicts.variant_verdicts(growth)
    assert sorted(table["row"]) == sorted(growth.index[growth["decides"]])
    return table.drop(columns="row")


def colour(artist_colour) -> str:
    return to_hex(artist_colour).upper()


def title(ax) -> str:
    """A panel's title: written from the figure's edge, or the legend's title for panels
    that carry their header there."""
    written = [t.get_text() for t in ax.texts if t.get_gid() == "title"]
    legend = ax.get_legend()
    return written[0] if written else (legend.get_title().get_text() if legend else "")


def texts(ax, name="amount"):
    return [t.get_text() for t in ax.texts if t.get_gid() == name]


def panel(fig, title_start):
    return next(ax for ax in fig.axes if title(ax).startswith(title_start))


def gid(ax, name):
    return [a for a in [*ax.lines, *ax.collections, *ax.patches] if a.get_gid() == name]


def test_growth_overview_puts_every_estimate_on_its_threshold_scale(growth, tmp_path):
    fig = plots.growth_overview(growth, tmp_path / "g.png", specs=BUILT_INS)
    assert (tmp_path / "g.png").stat().st_size > 10_000 and (tmp_path / "g.svg").stat().st_size > 10_000
    rocks = panel(fig, "rocksdb_merge: growth per pass")
    labels = [t.get_text() for t in rocks.get_yticklabels()]
    # per variant: the deciding metric first (bold), then RSS and the key metric
    assert labels == ["capi-dummy · RSS", "capi-dummy · malloc_in_use", "capi-real · RSS",
                      "capi-real · malloc_in_use"]
    assert [t.get_fontweight() for t in rocks.get_yticklabels()] == ["bold", "normal", "bold", "normal"]
    # the threshold is the line x = 1 in every panel, all panels on the same x range
    for ax in fig.axes:
        (line,) = gid(ax, "threshold")
        assert list(line.get_xdata()) == [1, 1] and line.get_linestyle() == "--"
        assert ax.get_xscale() == "symlog" and ax.get_xlim() == rocks.get_xlim()
    assert gid(rocks, "leak_threshold")[0].get_xdata()[0] == 2  # the bar is half the leak threshold
    (points,) = gid(rocks, "estimate")
    x = points.get_offsets()[:, 0]
    assert x[2] == pytest.approx(62.6) and abs(x[0]) < 1e-3  # the leak far right, noise at 0
    assert [colour(c) for c in points.get_facecolors()] == [VERDICT_COLOURS[v] for v in
                                                            ("stable", "stable", "leak", "leak")]
    whiskers = gid(rocks, "interval")
    assert len(whiskers) == 4
    assert list(whiskers[2].get_xdata()) == pytest.approx([62.4, 62.8])
    # the real amount beside each estimate
    amounts = texts(rocks)
    assert amounts[2] == "+31.3 MiB" and amounts[0] == "+104.9 B"
    assert title(rocks) == ("rocksdb_merge: growth per pass\n"
                            "bars (half the leak threshold): RSS 512 KiB, malloc_in_use 512 KiB")
    fd = panel(fig, "fd_leak: growth")
    assert [t.get_text() for t in fd.get_yticklabels()] == ["leak · deleted_fds", "leak · RSS"]
    assert gid(fd, "estimate")[0].get_offsets()[0, 0] == pytest.approx(4.0)  # 1 fd against a bar of 0.25
    assert gid(fd, "estimate")[0].get_offsets()[1, 0] < 0.001  # 101 B against 1 MiB: a dot at 0
    assert texts(fd) == ["+1", "+101 B"]
    assert title(fd).endswith("deleted_fds 0.25, RSS 512 KiB")


def test_growth_overview_shows_what_a_releasing_experiment_keeps(growth, tmp_path):
    fig = plots.growth_overview(growth, tmp_path / "g.png", specs=BUILT_INS)
    kept = panel(fig, "dict_shrink: kept after release")
    assert [t.get_text() for t in kept.get_yticklabels()] == ["dict · dict_size", "dict · RSS",
                                                              "rebuilt · RSS", "rebuilt · dict_size"]
    x = gid(kept, "estimate")[0].get_offsets()[:, 0]
    assert list(x) == pytest.approx([40 / 16, 44 / 16, 44 / 16, 0.0])
    assert colour(gid(kept, "estimate")[0].get_facecolors()[0]) == VERDICT_COLOURS["retention"]
    assert texts(kept) == ["40 MiB", "44 MiB", "44 MiB", "0 B"]
    assert not any(title(ax).startswith("rocksdb_merge: kept") for ax in fig.axes)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:5] == list(VERDICT_COLOURS) and "leak threshold" in legend
    assert title(kept).endswith("thresholds: dict_size 16 MiB, RSS 16 MiB")
    assert not gid(kept, "leak_threshold")  # retention has one threshold, no half


def test_growth_overview_says_when_there_is_nothing(tmp_path):
    fig = plots.growth_overview(pd.DataFrame(), tmp_path / "g.png", specs=BUILT_INS)
    assert "no growth" in fig.axes[0].texts[0].get_text()


def units_for(experiment, variant, metric, values_by_replicate, start=0):
    return pd.DataFrame([{"experiment": experiment, "variant": variant, "profiler": "plain", "replicate": r,
                          "metric": metric, "unit": start + i, "t": float(start + i), "value": v}
                         for r, values in values_by_replicate.items() for i, v in enumerate(values)])


def test_headline_draws_the_deciding_metric_its_fit_warmup_and_verdict(growth, tmp_path):
    leak = [30 * MIB + 31.3 * MIB * u for u in range(7)]
    units = pd.concat([
        units_for("rocksdb_merge", "capi-real", "rss_bytes", {1: leak, 2: [v + MIB for v in leak]}),
        units_for("rocksdb_merge", "capi-real", "malloc_in_use_bytes", {1: leak}),
        units_for("rocksdb_merge", "capi-dummy", "rss_bytes", {1: [30 * MIB] * 7, 2: [31 * MIB] * 7}),
    ])
    fig = plots.headline(units, growth, verdicts_of(growth), "rocksdb_merge", tmp_path / "h.png", specs=BUILT_INS)
    assert (tmp_path / "h.svg").exists()
    dummy, real = panel(fig, "capi-dummy"), panel(fig, "capi-real")
    assert real.get_legend().get_title().get_text() == "capi-real: leak (decided by RSS)"
    assert len(gid(real, "replicate")) == 2 and len(gid(dummy, "replicate")) == 2
    (fit,) = gid(real, "fit")
    assert colour(fit.get_color()) == VERDICT_COLOURS["leak"]
    assert list(fit.get_xdata()) == [2, 6]  # after the warm-up (unit 1) to the last unit
    slope = np.diff(fit.get_ydata())[0] / 4
    assert slope == pytest.approx(31.3)  # MiB per pass, the pooled estimate
    (warmup,) = gid(real, "warmup")
    assert warmup.get_x() == 0 and warmup.get_width() == 1  # shaded from the first unit to the warm-up's end
    legend = [t.get_text() for t in real.get_legend().get_texts()]
    assert legend == ["leak +31.3 MiB/pass [31.2, 31.4] MiB", "bar +512 KiB/pass", "2 replicates", "warm-up"]
    (threshold,) = gid(real, "threshold")  # rises at the bar (half the threshold) from where the fit starts
    assert list(threshold.get_xdata()) == [2, 6] and threshold.get_ydata()[0] == pytest.approx(fit.get_ydata()[0])
    assert np.diff(threshold.get_ydata())[0] / 4 == pytest.approx(0.5)
    assert colour(gid(dummy, "fit")[0].get_color()) == VERDICT_COLOURS["stable"]
    kept = pd.concat([units, units_for("dict_shrink", "dict", "dict_size_bytes", {1: [40 * MIB] * 5})])
    fig = plots.headline(kept, growth, verdicts_of(growth), "dict_shrink", tmp_path / "d.png", specs=BUILT_INS)
    assert [t.get_text() for t in panel(fig, "dict:").get_legend().get_texts()][0] == \
        "retention +0 B/cycle [0, 0] B, 40 MiB kept"
    # each run drawn as its change since the warm-up, the level it starts from named (no hidden offset)
    assert real.get_ylabel() == "Δ RSS (MiB)\n0 = 61.8 MiB"
    assert dummy.get_ylabel() == "Δ RSS (MiB)\n0 = 30.5 MiB"
    assert gid(real, "replicate")[0].get_ydata()[1] == 0.0  # unit 1, the warm-up's end
    # each panel its own scale: a small leak beside a large one is not drawn flat
    assert not real.get_shared_y_axes().joined(real, dummy)


def test_headline_draws_settling_with_its_late_slope_and_library_level_beside_rss(tmp_path):
    settle = [100 * MIB - 60 * MIB * 0.7 ** u for u in range(12)]
    growth = pd.DataFrame([growth_row("duckdb_load", "load_on", "rss_bytes", 2 * MIB, 1.5 * MIB, 3 * MIB,
                                      "settling", bar=64 * 1024, unit="second", decides=True, warmup=2,
                                      late=0.1 * MIB)])
    units = pd.concat([units_for("duckdb_load", "load_on", "rss_bytes", {1: settle}),
                       units_for("duckdb_load", "load_on", "duckdb_memory_bytes", {1: [58 * MIB] * 12})])
    fig = plots.headline(units, growth, verdicts_of(growth), "duckdb_load", tmp_path / "h.png", specs=BUILT_INS)
    ax = panel(fig, "load_on")
    assert colour(gid(ax, "fit")[0].get_color()) == VERDICT_COLOURS["settling"]
    (late,) = gid(ax, "late_fit")
    assert list(late.get_xdata()) == [7, 11]  # the last half of units 3..11
    assert "last half: +102.4 KiB/second" in [t.get_text() for t in ax.get_legend().get_texts()]
    levels = panel(fig, "levels")
    assert len(gid(levels, "level:rss_bytes")) == 1 and len(gid(levels, "level:duckdb_memory_bytes")) == 1
    assert gid(levels, "level:duckdb_memory_bytes")[0].get_ydata().max() == pytest.approx(58)


def test_verdict_matrix_has_one_decisive_cell_per_variant(growth, tmp_path):
    fig = plots.verdict_matrix(verdicts_of(growth), tmp_path / "m.png", specs=BUILT_INS)
    ax = fig.axes[0]
    cells = gid(ax, "cell")
    assert len(cells) == 5  # capi-dummy, capi-real, dict, rebuilt, leak: no blank cells
    assert [colour(c.get_facecolor()) for c in cells] == [VERDICT_COLOURS[v] for v in
                                                          ("stable", "leak", "retention", "stable", "leak")]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["capi-dummy", "capi-real", "dict", "rebuilt", "leak"]
    texts = [t.get_text() for t in ax.texts]
    assert "leak · RSS +31.3 MiB/pass [31.2, 31.4] MiB" in texts
    assert "leak · deleted_fds +1/rotation [1, 1]" in texts
    assert "retention · dict_size 40 MiB kept (threshold 16 MiB)" in texts
    assert {"rocksdb_merge", "dict_shrink", "fd_leak"} <= set(texts)  # experiment headers
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(VERDICT_COLOURS)


def test_verdict_matrix_says_when_no_plain_run_was_read(tmp_path):
    fig = plots.verdict_matrix(pd.DataFrame(columns=["profiler", "verdict"]), tmp_path / "m.png", specs=BUILT_INS)
    assert "no verdicts" in fig.axes[0].texts[0].get_text()


@pytest.fixture
def attribution():
    sources = {"kernel: slab": "slab_bytes", "kernel: deleted fds": "deleted_fds", "RSS (total)": "rss_bytes"}

    def layer(experiment, variant, name, growth, retained=math.nan, where="", unit="rotation"):
        return {"experiment": experiment, "variant": variant, "unit": unit, "layer": name,
                "source": sources.get(name, "other"),
                "growth_per_unit": growth, "retained": retained, "where": where,
                "stacked_growth_per_unit": growth, "stacked_retained": retained}
    return pd.DataFrame([
        layer("fd_leak", "close", "native heap", 10.0),
        layer("fd_leak", "close", "RSS (total)", 100.0),
        layer("fd_leak", "close", "allocator retention / other", 90.0),
        layer("fd_leak", "close", "kernel: deleted fds", 0.0),
        layer("fd_leak", "close", "kernel: slab", 500.0, where="grows here"),  # system-wide: never named
        layer("fd_leak", "leak", "native heap", 20.0),
        layer("fd_leak", "leak", "RSS (total)", 140.0),
        layer("fd_leak", "leak", "allocator retention / other", 120.0),
        layer("fd_leak", "leak", "kernel: deleted fds", 1.0, where="grows here"),
        layer("fd_leak", "leak", "kernel: slab", 2300.0),
        layer("dict_shrink", "dict", "Python heap", 0.0, 40 * MIB, "retained here", "cycle"),
        layer("dict_shrink", "dict", "native heap", 0.0, 2 * MIB, "", "cycle"),
        layer("dict_shrink", "dict", "RSS (total)", 0.0, 44 * MIB, "retained here", "cycle"),
        layer("dict_shrink", "dict", "allocator retention / other", 0.0, 2 * MIB, "", "cycle"),
        layer("dict_shrink", "dict", "kernel: deleted fds", 0.0, 0.0, "", "cycle"),
    ])


def test_attribution_puts_the_kernel_on_its_own_axes_and_names_the_holding_layer(attribution, growth, tmp_path):
    growth = pd.concat([growth, pd.DataFrame([growth_row("fd_leak", "close", "slab_bytes", 500.0, 0, 900.0, "stable",
                                                         bar=512, unit="rotation")])])
    fig = attribution_plots.attribution_bars(attribution, growth, tmp_path / "a.png", specs=BUILT_INS)
    assert (tmp_path / "a.svg").exists()
    titles = {title(ax): ax for ax in fig.axes}
    assert list(titles) == ["dict_shrink: RSS growth, MiB per cycle", "dict_shrink: kept after release, MiB",
                            "fd_leak: RSS growth, MiB per rotation", "fd_leak: deleted fds per rotation (kernel)",
                            "fd_leak: slab KiB per rotation (kernel)"]  # dict_shrink's kernel is flat: no panel
    fds = titles["fd_leak: deleted fds per rotation (kernel)"]
    assert [b.get_width() for b in gid(fds, "layer:kernel: deleted fds")] == [0.0, 1.0]
    assert gid(fds, "threshold")[0].get_xdata()[0] == 0.25  # half fd_leak's deleted_fds threshold
    slab = titles["fd_leak: slab KiB per rotation (kernel)"]
    assert [b.get_width() for b in gid(slab, "layer:kernel: slab")] == pytest.approx([500 / 1024, 2300 / 1024])
    assert gid(slab, "threshold")[0].get_xdata()[0] == pytest.approx(0.25)  # half of 512 B, in KiB
    fd_memory = titles["fd_leak: RSS growth, MiB per rotation"]
    assert [t.get_text() for t in fd_memory.get_yticklabels()] == ["close: no layer grows",
                                                                   "leak: grows in kernel fds"]
    assert [t.get_text() for t in fds.get_yticklabels()] == ["close", "leak"]
    # noise next to the 1 MiB/rotation RSS threshold: the threshold stays in view
    assert fd_memory.get_xlim()[1] >= 0.5 and gid(fd_memory, "threshold")[0].get_xdata()[0] == 0.5
    residual = gid(fd_memory, "layer:allocator retention / other")
    assert [b.get_width() for b in residual] == pytest.approx([90 / MIB, 120 / MIB])
    assert [t.get_text() for t in titles["dict_shrink: RSS growth, MiB per cycle"].get_yticklabels()] \
        == ["dict: kept in Python heap"]
    kept = titles["dict_shrink: kept after release, MiB"]
    assert gid(kept, "layer:Python heap")[0].get_width() == pytest.approx(40)
    assert gid(kept, "threshold")[0].get_xdata()[0] == pytest.approx(16)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "kernel: deleted fds" in legend and "kernel: slab" in legend


def test_holding_layer_falls_back_to_rss_rest_and_to_nothing():
    rows = pd.DataFrame([{"layer": "RSS (total)", "where": "grows here"}, {"layer": "native heap", "where": ""}])
    assert attribution_plots.holding_layer(rows) == "grows in allocator/other"
    assert attribution_plots.holding_layer(rows.assign(where="")) == "no layer grows"


def test_timeline_draws_plain_runs_only(tmp_path):
    """Under a profiler RSS includes the profiler itself: mixing it in would draw a
    profiled replicate and a plain one as one zigzag line."""
    keys = {"experiment": "fd_leak", "variant": "leak", "replicate": 1}
    samples = pd.DataFrame([{**keys, "profiler": p, "t": t, "rss_bytes": rss}
                            for p, rss in (("plain", 15e6), ("heaptrack", 180e6)) for t in (0.0, 1.0)])
    units = pd.DataFrame([{**keys, "profiler": p, "unit": u, "t": u, "metric": "deleted_fds", "value": v}
                          for p, v in (("plain", 1.0), ("heaptrack", 99.0)) for u in (1, 2)])
    fig = timeline_plots.timeline(samples, units, "fd_leak", tmp_path / "t.png", specs=BUILT_INS)
    rss, fds = fig.axes[0], fig.axes[1]
    (line,) = gid(rss, "variant:leak")
    assert line.get_ydata().max() < 20  # MiB: the plain run, not heaptrack's 180 MB
    assert list(gid(fds, "variant:leak")[0].get_ydata()) == [0.0, 0.0]  # change since the run's first unit
    assert rss.get_ylabel() == "RSS (MiB)" and fds.get_title() == "deleted_fds"
    assert fds.get_ylabel() == "deleted_fds since start" and rss.get_ylim()[0] == 0  # RSS drawn from zero
    assert (tmp_path / "t.svg").exists()


def test_version_sweep_draws_growth_over_its_threshold(tmp_path):
    rows = [{"package": "duckdb", "version": v, "experiment": "duckdb_load", "variant": "load_on",
             "metric": "rss_bytes", "unit": "second", "growth_per_unit": g, "ci_low": g / 2, "ci_high": g * 2,
             "leak_per_unit": 65536.0, "verdict": verdict}
            for v, g, verdict in (("1.10.0", 65536.0 * 4, "leak"), ("0.9.2", 1000.0, "stable"))]
    fig = sweep_plots.version_sweep(pd.DataFrame(rows), tmp_path / "s.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.9.2", "1.10.0"]  # version order, not text
    (points,) = gid(ax, "estimate")
    assert list(points.get_offsets()[:, 1]) == pytest.approx([1000 / 32768, 8.0])
    assert [colour(c) for c in points.get_facecolors()] == [VERDICT_COLOURS["stable"], VERDICT_COLOURS["leak"]]
    assert gid(ax, "threshold")[0].get_ydata()[0] == 1
    assert list(gid(ax, "interval")[1].get_ydata()) == pytest.approx([4.0, 16.0])


def test_figures_docs_copies_a_runs_figures_small_with_its_date_and_machine(growth, attribution, tmp_path, root):
    """`make figures-docs`: the README's figures are a real run's, scaled down, stamped."""
    import json
    import os
    import subprocess
    import sys

    from PIL import Image

    results, docs = tmp_path / "results", tmp_path / "docs"
    command = [sys.executable, "-m", "leaklab.report.docs_figures", "--results", str(results), "--out", str(docs)]
    assert "-m leaklab.report.docs_figures --results results --out docs" in (root / "Makefile").read_text()
    empty = subprocess.run(command, capture_output=True, text=True)
    assert empty.returncode == 1 and "growth_overview.png, attribution.png" in empty.stderr
    assert not docs.exists()  # nothing half-written
    plots.growth_overview(growth, results / "figures" / "growth_overview.png", specs=BUILT_INS)
    attribution_plots.attribution_bars(attribution, growth, results / "figures" / "attribution.png", specs=BUILT_INS)
    meta = results / "runs" / "fd_leak" / "leak" / "plain" / "rep1" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"host": {"hostname": "lab1", "kernel": "6.1.0", "cpus": 2,
                                         "mem_total_bytes": 24 * 2**30}}))
    os.utime(meta, (1_790_000_000, 1_790_000_000))
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in ("growth_overview", "attribution"):
        with Image.open(docs / f"{name}.png") as small, Image.open(results / "figures" / f"{name}.png") as big:
            assert small.width == 620 and big.width > 620
            assert abs(small.height / small.width - big.height / big.width) < 0.01
        assert (docs / f"{name}.png").stat().st_size < (results / "figures" / f"{name}.png").stat().st_size
    stamp = (docs / "figures.md").read_text()
    assert "the run of 2026-09-21 14:13 UTC on lab1 (Linux 6.1.0, 2 CPUs, 24.0 GiB)" in stamp


def test_time_to_verdict_draws_each_variant_in_its_verdicts_colour(tmp_path):
    def row(variant, stop, stop_seconds, needed_seconds, needed_units):
        return {"experiment": "fd_leak", "variant": variant, "metric": "deleted_fds", "unit": "rotation",
                "stop_verdicts": stop, "stop_seconds": stop_seconds, "stop_units": 8.0, "recorded_seconds": 10.0,
                "recorded_units": 60, "needed_seconds": needed_seconds, "needed_units": needed_units}
    table = pd.DataFrame([row("leak", "leak", 2.0, 2.0, 8.0), row("close", "inconclusive", math.nan, 30.0, 120.0),
                          row("late", "inconclusive", math.nan, 10.0, 60.0)])
    table["table_verdict"] = ["leak", "inconclusive", "leak"]  # "late": only the whole run decided
    fig = timeline_plots.time_to_verdict(table, tmp_path / "t.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fd_leak / leak", "fd_leak / close", "fd_leak / late"]
    recorded, decision = gid(ax, "recorded"), gid(ax, "decision")
    assert [b.get_width() for b in recorded] == [10.0] * 3 and [b.get_width() for b in decision] == [2.0, 30.0, 10.0]
    assert [colour(b.get_facecolor()) for b in decision] == [VERDICT_COLOURS[v] for v in ("leak", "inconclusive",
                                                                                          "leak")]
    assert [b.get_hatch() or None for b in decision] == [None, "//", "//"]  # no look before the end decided
    assert texts(ax) == ["leak after 8 rotations", "undecided: ~120 rotations would decide",
                         "leak at the full 60 rotations (no earlier look)"]
    assert ax.get_xscale() == "log"  # 2 s beside 30 s: no hairlines
    assert (tmp_path / "t.svg").exists()


@pytest.fixture
def go_map():
    """go_map as a default run saw it: the fix ``rebuilt`` keeps more RSS than the bug
    ``kept``, while the Go heap (the deciding metric) tells them apart."""
    rows = []
    for variant, rss_kept, heap_kept, heap_verdict, rss_verdict in (
            ("rebuilt", 425, 0.1, "stable", "retention"), ("rebuilt_free", 20, 0.1, "stable", "retention"),
            ("kept", 342, 300, "retention", "retention")):
        rows.append(growth_row("go_map", variant, "go_heap_alloc_bytes", 0.0, -0.1 * MIB, 0.1 * MIB, heap_verdict,
                               unit="cycle", retained=heap_kept * MIB, decides=True))
        rows.append(growth_row("go_map", variant, "rss_bytes", 0.01 * MIB, -1 * MIB, 2 * MIB, rss_verdict,
                               unit="cycle", retained=rss_kept * MIB))
    growth = pd.DataFrame(rows)
    filled = {"kept": 342, "rebuilt": 425, "rebuilt_free": 20}
    units = pd.concat([units_for("go_map", v, m, {r: [(10 + r + k * min(u, 1)) * MIB for u in range(6)]
                                                  for r in (1, 2)})
                       for v, k in filled.items() for m in ("rss_bytes", "go_heap_alloc_bytes")])
    return units, growth


def test_compare_puts_bug_fix_and_control_on_the_same_metrics(go_map, tmp_path):
    units, growth = go_map
    fig = compare_plots.compare(units, growth, "go_map", tmp_path / "c.png", specs=BUILT_INS)
    assert (tmp_path / "c.svg").exists()
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["go_heap_alloc: change since the warm-up", "growth per cycle, 95% interval", "kept after release",
                      "RSS: change since the warm-up", "growth per cycle, 95% interval", "kept after release"]
    change, growth_ax, kept = fig.axes[3:]
    # bug first, then the fixes, on every panel
    assert [t.get_text() for t in kept.get_yticklabels()] == ["kept", "rebuilt", "rebuilt_free"]
    (points,) = gid(kept, "estimate")
    assert list(points.get_offsets()[:, 0]) == pytest.approx([342, 425, 20])  # the fix keeps more RSS: shown
    assert texts(kept) == ["342 MiB", "425 MiB", "20 MiB"] and kept.get_xlabel().startswith("MiB")
    assert gid(kept, "threshold")[0].get_xdata()[0] == pytest.approx(16)
    # growth with its 95 % interval against the bar (half of 1 MiB), in the unit the values need
    (whiskers,) = gid(growth_ax, "interval")
    assert [list(seg[:, 0]) for seg in whiskers.get_segments()][0] == pytest.approx([-1, 2])
    assert gid(growth_ax, "threshold")[0].get_xdata()[0] == pytest.approx(0.5)
    assert [colour(c) for c in gid(growth_ax, "estimate")[0].get_facecolors()] == [VERDICT_COLOURS["retention"]] * 3
    # the time series: each variant's mean change since the warm-up, zero at the warm-up's end
    line = gid(change, "variant:kept")[0]
    assert list(line.get_xdata()) == [0, 1, 2, 3, 4, 5]
    assert list(line.get_ydata()) == pytest.approx([-342, 0, 0, 0, 0, 0])
    assert change.get_ylabel() == "change since warm-up (MiB)"
    heap_kept = fig.axes[2]
    assert list(gid(heap_kept, "estimate")[0].get_offsets()[:, 0]) == pytest.approx([300, 0.1, 0.1])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["kept (bug)", "rebuilt (fix)", "rebuilt_free (fix)"] and "verdict: retention" in legend
    assert texts_outside(fig) == []


def test_compare_of_a_growing_story_has_no_kept_column_and_says_when_empty(growth, tmp_path):
    fig = compare_plots.compare(pd.DataFrame(), growth, "rocksdb_merge", tmp_path / "c.png", specs=BUILT_INS)
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "RSS: change since the warm-up", "growth per pass, 95% interval"]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["capi-real", "capi-dummy"]  # bug, control
    fig = compare_plots.compare(pd.DataFrame(), growth, "go_map", tmp_path / "e.png", specs=BUILT_INS)
    assert "go_map: no verdict from plain runs" in fig.axes[0].texts[0].get_text()


def test_headline_gives_each_variant_its_own_scale(tmp_path):
    """planted: a 64 KiB/step leak beside a 4 MiB/step one must not be a flat line."""
    rows = [growth_row("planted", v, "rss_bytes", g, g * 0.9, g * 1.1, "leak", bar=65536, unit="step", decides=True,
                       warmup=2) for v, g in (("native_tiny", 65536.0), ("native_large", 4 * MIB))]
    growth = pd.DataFrame(rows)
    units = pd.concat([units_for("planted", v, "rss_bytes", {1: [300 * MIB + g * u for u in range(10)]})
                       for v, g in (("native_tiny", 65536.0), ("native_large", 4 * MIB))])
    fig = plots.headline(units, growth, verdicts_of(growth), "planted", tmp_path / "h.png", specs=BUILT_INS)
    tiny, large = panel(fig, "native_tiny"), panel(fig, "native_large")
    assert tiny.get_ylabel().startswith("Δ RSS (KiB)") and large.get_ylabel().startswith("Δ RSS (MiB)")
    top = max(gid(tiny, "replicate")[0].get_ydata())
    assert top == pytest.approx(7 * 64) and tiny.get_ylim()[1] >= top  # the climb fills its own panel
    assert texts_outside(fig) == []


def cross_table():
    """The map story in Go, heap and RSS, as ``cross_language.csv`` holds it."""
    return pd.DataFrame([{"mechanism": "map/dict keeps its table after deleting every key", "language": "Go",
                          "variant": v, "metric": "go_heap_alloc_bytes", "measure": "retained", "unit": "cycle",
                          "retained": heap * MIB, "growth_per_unit": 0.0, "ci_low": 0.0, "ci_high": 0.0,
                          "verdict": verdict, "rss_growth_per_unit": 0.0, "rss_retained": rss * MIB,
                          "rss_verdict": "retention"}
                         for v, heap, rss, verdict in (("kept", 300, 342, "retention"),
                                                       ("rebuilt", 0.1, 425, "stable"))])


def test_cross_language_shows_rss_beside_the_heap(tmp_path):
    """Go's fix ``rebuilt`` frees its map but keeps more RSS than the bug: both are drawn."""
    fig = cross_language_plots.cross_language(cross_table(), tmp_path / "x.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Go · kept · go_heap_alloc", "Go · kept · RSS",
                                                            "Go · rebuilt · go_heap_alloc", "Go · rebuilt · RSS"]
    assert [b.get_width() for b in gid(ax, "estimate")] == pytest.approx([300, 342, 0.1, 425])
    assert [colour(b.get_facecolor()) for b in gid(ax, "estimate")] == [
        VERDICT_COLOURS[v] for v in ("retention", "retention", "stable", "retention")]
    assert texts(ax) == ["300 MiB", "342 MiB", "102.4 KiB", "425 MiB"] and ax.get_xlabel().endswith("(MiB)")


def every_figure(tmp_path, growth, attribution, go_map) -> dict:
    """Every figure function of the project on constructed tables, with long names: name -> draw."""
    units, go_growth = go_map
    leak = [30 * MIB + 31.3 * MIB * u for u in range(7)]
    rocks_units = pd.concat([
        units_for("rocksdb_merge", "capi-real", "rss_bytes", {1: leak, 2: [v + MIB for v in leak]}),
        units_for("rocksdb_merge", "capi-dummy", "rss_bytes", {1: [30 * MIB] * 7, 2: [31 * MIB] * 7})])
    all_growth = pd.concat([growth, go_growth], ignore_index=True)
    samples = pd.DataFrame([{"experiment": "go_map", "variant": v, "profiler": "plain", "replicate": r, "t": t,
                             "rss_bytes": (100 + t) * MIB} for v in ("kept", "rebuilt") for r in (1, 2)
                            for t in range(5)])
    sites = pd.DataFrame([{"experiment": "rocksdb_merge", "variant": "capi-real", "profiler": "heaptrack",
                           "kind": "leaked", "rank": r, "bytes": 320 * MIB / r,
                           "frame": "rocksdb::MergeHelper::MergeUntil(rocksdb::InternalIteratorBase<rocksdb::Slice>*, "
                                    "rocksdb::RangeDelAggregator*, unsigned long, bool, bool) (merge_helper.cc:10)",
                           "native_caller": "rocksdb::FullMergeV2"} for r in (1, 2, 3)])
    heap = pd.DataFrame([{"experiment": "rocksdb_merge", "variant": "capi-real", "profiler": "massif", "replicate": 1,
                          "t": t, "heap_bytes": t * MIB, "source": "massif"} for t in range(5)])
    overhead = pd.DataFrame([{"profiler": "massif", "experiment": "rocksdb_merge", "variant": "v",
                              "cpu_per_unit_ratio": 18.6}, {"profiler": "heaptrack", "experiment": "go_merge",
                                                            "variant": "v", "cpu_per_unit_ratio": 0.0}])
    ttv = pd.DataFrame([{"experiment": e, "variant": v, "metric": "rss_bytes", "unit": "pass",
                         "stop_verdicts": stop, "stop_seconds": s, "stop_units": 3.0, "recorded_seconds": 150.0,
                         "recorded_units": 60, "needed_seconds": s, "needed_units": 3.0}
                        for e, v, stop, s in (("rocksdb_merge", "capi_fixed-real", "stable", 0.4),
                                              ("duckdb_load", "load_on", "settling", 150.0))])
    cross = cross_table()
    return {
        "growth_overview": lambda: plots.growth_overview(all_growth, tmp_path / "g.png", specs=BUILT_INS),
        "headline": lambda: plots.headline(rocks_units, growth, verdicts_of(growth), "rocksdb_merge",
                                           tmp_path / "h.png", specs=BUILT_INS),
        "headline_go_map": lambda: plots.headline(units, go_growth, verdicts.variant_verdicts(go_growth),
                                                  "go_map", tmp_path / "hg.png",
                                                  specs=BUILT_INS),  # long retention legends
        "compare": lambda: compare_plots.compare(units, go_growth, "go_map", tmp_path / "c.png", specs=BUILT_INS),
        "verdict_matrix": lambda: plots.verdict_matrix(verdicts_of(growth), tmp_path / "m.png", specs=BUILT_INS),
        "attribution": lambda: attribution_plots.attribution_bars(attribution, growth, tmp_path / "a.png",
                                                                  specs=BUILT_INS),
        "timeline": lambda: timeline_plots.timeline(samples, units, "go_map", tmp_path / "t.png", specs=BUILT_INS),
        "time_to_verdict": lambda: timeline_plots.time_to_verdict(ttv, tmp_path / "v.png"),
        "cross_language": lambda: cross_language_plots.cross_language(cross, tmp_path / "x.png"),
        "heap": lambda: profile_plots.heap_timelines(heap, "rocksdb_merge", tmp_path / "p.png", specs=BUILT_INS),
        "top_sites": lambda: profile_plots.top_sites(sites, "rocksdb_merge", tmp_path / "s.png", specs=BUILT_INS),
        "profiler_overhead": lambda: profile_plots.profiler_overhead(overhead, tmp_path / "o.png", specs=BUILT_INS),
    }


FIGURES = ["growth_overview", "headline", "headline_go_map", "compare", "verdict_matrix", "attribution",
           "timeline", "time_to_verdict", "cross_language", "heap", "top_sites", "profiler_overhead"]


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_keeps_its_text_inside_the_canvas(name, growth, attribution, go_map, tmp_path):
    """No title, label, legend entry or annotation of any figure runs off its canvas
    (what the PNG would clip), and every panel states its scale (an axis label or a
    title that names it)."""
    fig = every_figure(tmp_path, growth, attribution, go_map)[name]()
    assert texts_outside(fig) == [], name
    for ax in fig.axes:
        if ax.axison and ax.get_xticks().size:
            assert ax.get_xlabel() or ax.get_ylabel() or title(ax), (name, ax.get_title())


def test_the_canvas_check_finds_a_cut_off_legend(tmp_path):
    """The check itself: a legend pushed past the right edge is reported."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2))
    fig.subplots_adjust(left=0.3, bottom=0.3)
    ax = fig.add_subplot()
    ax.plot([0, 1], label="a legend entry far too long to fit beside a panel two inches wide")
    ax.legend(loc="upper left", bbox_to_anchor=(0.5, 1))
    assert texts_outside(fig) == ["a legend entry far too long to fit beside a panel two inches wide"]
    plt.close(fig)
