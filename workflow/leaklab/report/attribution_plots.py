"""Where the growth lives, drawn: per experiment and variant, RSS growth per unit split
into the layers that hold it (``leaklab.tables.attribution``), kernel objects on their
own axes, and the layer that holds the growth named beside each variant."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from leaklab.experiments import Spec
from leaklab.model.amounts import MIB
from leaklab.report.figstyle import (THRESHOLD_STYLE, as_float, experiment_order, figure, nothing, panel_title, save,
                                     style, variant_order)
from leaklab.report.plots import decision_bar


LAYER_COLOURS = {"Python heap": "#56B4E9", "native heap": "#0072B2", "library accounting": "#1F3A93",
                 "allocator retention / other": "#C7C7C7", "kernel: deleted fds": "#8C564B",
                 "kernel: slab": "#B15928", "native or allocator (no heap metric from this program)": "#9E9AC8"}
# where in the address space (leaklab.process.mappings): one colour per kind of mapping
LAYER_COLOURS.update({"mapping: brk heap": "#009E73", "mapping: anonymous mappings": "#E69F00",
                      "mapping: file-backed": "#F0E442", "mapping: stacks": "#CC79A7",
                      "mapping: shared memory": "#D55E00", "mapping: kernel/other": "#999999"})
LAYER_NAMES = {"library accounting": "library", "allocator retention / other": "allocator/other",
               "native or allocator (no heap metric from this program)": "native or allocator",
               "kernel: deleted fds": "kernel fds", "kernel: slab": "kernel slab"}  # short, for tick labels
KERNEL_UNITS = {"kernel: deleted fds": ("deleted_fds", 1.0, "deleted fds"),  # layer: metric, divisor, unit
                "kernel: slab": ("slab_bytes", 1024.0, "slab KiB")}


def holding_layer(part: pd.DataFrame) -> str:
    """What the figure says holds a variant's growth: the layers whose own metric is a
    leak (or else retained), RSS's unexplained rest when only RSS is, or nothing.  A
    system-wide layer (slab: every process on the machine) is drawn but never named,
    as it never decides a verdict."""
    from leaklab.tables.attribution import RESIDUAL
    from leaklab.model.settings import SYSTEM_WIDE

    from leaklab.tables.attribution import MAPPING_PREFIX, PROCESS_PREFIX

    own = part[~part["source"].isin(SYSTEM_WIDE)] if "source" in part else part
    own = own[~own["layer"].str.startswith((MAPPING_PREFIX, PROCESS_PREFIX))]  # their own panel
    for where, verb in (("grows here", "grows in"), ("retained here", "kept in")):
        named = list(own[(own["where"] == where) & (own["layer"] != "RSS (total)")]["layer"])
        if not named and ((own["where"] == where) & (own["layer"] == "RSS (total)")).any():
            named = [RESIDUAL]
        if named:
            return f"{verb} {', '.join(LAYER_NAMES.get(n, n) for n in named)}"
    return "no layer grows"


def growing_process(part: pd.DataFrame) -> str:
    """``": in pid N (command)"`` for the process of a multi-process tree that holds a
    variant's growth, so a leak in a child or helper is named on the figure."""
    from leaklab.tables.attribution import PROCESS_PREFIX

    grows = part[part["layer"].str.startswith(PROCESS_PREFIX) & (part["where"] == "grows here")]
    if grows.empty:
        return ""
    pid, _, command = grows["layer"].iloc[0].removeprefix(PROCESS_PREFIX).partition(": ")
    program = command.split(" ", 1)[0].rsplit("/", 1)[-1][:24]
    return f": pid {pid} ({program})"


def _threshold(growth: pd.DataFrame, experiment: str, metric: str, column: str) -> float:
    if growth.empty or column not in growth:
        return math.nan
    match = growth[(growth["experiment"] == experiment) & (growth["metric"] == metric)
                   & (growth["profiler"] == "plain")][column]
    return as_float(match.iloc[0]) if len(match) else math.nan


def _stacked(ax, table: pd.DataFrame, layers: list[str], threshold: float, divisor: float) -> None:
    """Layers stacked per variant, positives right of 0 and negatives left, threshold dashed."""
    y = np.arange(len(table))
    right, left = np.zeros(len(table)), np.zeros(len(table))
    for layer in layers:
        values = table[layer].fillna(0.0).to_numpy(float) / divisor if layer in table else np.zeros(len(table))
        base = np.where(values >= 0, right, left)
        ax.barh(y, values, left=base, height=0.6, color=LAYER_COLOURS[layer], edgecolor="white", linewidth=0.4,
                gid=f"layer:{layer}")
        right, left = np.where(values >= 0, right + values, right), np.where(values < 0, left + values, left)
    ax.axvline(0, color="#444444", linewidth=0.5)
    if np.isfinite(threshold):
        ax.axvline(threshold / divisor, **THRESHOLD_STYLE, gid="threshold")
        span = max(threshold / divisor * 1.25, np.nanmax(np.abs(np.r_[right, left])) * 1.1)
        ax.set_xlim(min(-0.1 * span, left.min() * 1.1), span)
    ax.set_ylim(len(table) - 0.5, -0.5)


def attribution_bars(attribution: pd.DataFrame, growth: pd.DataFrame, out, *, specs: Mapping[str, Spec]):
    """Per experiment and variant: RSS growth per unit split into its layers (MiB),
    kernel objects on their own axes (deleted fds, slab KiB per unit), what stays after
    release for releasing experiments, each against the bar its verdict was judged by
    (dashed), and the layer that holds the growth named beside each variant."""
    from leaklab.tables.attribution import HEAP_LAYERS, MAPPING_PREFIX, NO_HEAP, RESIDUAL

    if attribution.empty:
        return nothing(out, "nothing to attribute: no plain run could be read")
    memory = [*HEAP_LAYERS, RESIDUAL, NO_HEAP]
    sections = []
    for name in experiment_order(specs, attribution["experiment"]):
        part = attribution[attribution["experiment"] == name]
        variants = variant_order(specs, name, part["variant"])
        tables = {column: part.pivot_table(index="variant", columns="layer", values=f"stacked_{column}",
                                           aggfunc="first").reindex(variants)
                  for column in ("growth_per_unit", "retained")}
        kept_layers = [c for c in memory if c in tables["retained"] and tables["retained"][c].notna().any()]
        kernel = [k for k in KERNEL_UNITS if k in tables["growth_per_unit"]  # flat zero: nothing to see
                  and tables["growth_per_unit"][k].fillna(0).abs().gt(0).any()]
        places = ["places"] if part["layer"].str.startswith(MAPPING_PREFIX).any() else []
        sections.append((name, part, variants, tables,
                         ["growth"] + places + (["kept"] if kept_layers else []) + kernel, kept_layers))
    heights = [len(section[2]) + 1.9 for section in sections for _ in section[4]]
    with style():
        fig = figure(0.19 * sum(heights) + 0.7)
        axes = iter(fig.subplots(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0])
        for name, part, variants, tables, panels, kept_layers in sections:
            unit = part["unit"].iloc[0]
            for i, panel in enumerate(panels):
                ax = next(axes)
                if panel == "growth":
                    _stacked(ax, tables["growth_per_unit"], memory,
                             decision_bar(_threshold(growth, name, "rss_bytes", "leak_per_unit")), MIB)
                    title = f"{name}: RSS growth, MiB per {unit}"
                elif panel == "places":
                    kinds = [layer for layer in LAYER_COLOURS if layer.startswith(MAPPING_PREFIX)]
                    _stacked(ax, tables["growth_per_unit"], kinds,
                             decision_bar(_threshold(growth, name, "rss_bytes", "leak_per_unit")), MIB)
                    title = f"{name}: by kind of mapping, MiB per {unit}"
                elif panel == "kept":
                    _stacked(ax, tables["retained"], kept_layers,
                             _threshold(growth, name, "rss_bytes", "retained_threshold"), MIB)
                    title = f"{name}: kept after release, MiB"
                else:
                    metric, divisor, label = KERNEL_UNITS[panel]
                    _stacked(ax, tables["growth_per_unit"], [panel],
                             decision_bar(_threshold(growth, name, metric, "leak_per_unit")), divisor)
                    title = f"{name}: {label} per {unit} (kernel)"
                panel_title(ax, title, fontweight="bold" if i == 0 else "normal")
                labels = {"growth": lambda v: f"{v}: {holding_layer(part[part['variant'] == v])}",
                          "places": lambda v: f"{v}{growing_process(part[part['variant'] == v])}"}
                ax.set_yticks(range(len(variants)), [labels.get(panel, str)(v) for v in variants])
        drawn = attribution[~attribution["layer"].str.startswith(MAPPING_PREFIX)
                            | attribution["growth_per_unit"].fillna(0).abs().gt(0)]  # kinds that grow somewhere
        present = [layer for layer in LAYER_COLOURS if layer in set(drawn["layer"]) or layer == RESIDUAL]
        fig.legend([Patch(color=LAYER_COLOURS[c]) for c in present] + [Line2D([], [], **THRESHOLD_STYLE)],
                   present + ["bar: ½ leak threshold (kept: retention threshold)"], loc="outside lower center",
                   ncol=1, frameon=False, fontsize="small")
        fig.suptitle("Where the growth lives, layer by layer (plain runs)")
        save(fig, out)
    return fig
