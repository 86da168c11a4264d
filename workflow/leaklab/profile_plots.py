"""The figures of what the profilers saw: heap over time, top sites, their overhead.

Drawn in the shared style (``figstyle``) from the profiler tables; every function
returns the figure it saved, so tests can check what was drawn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from leaklab.amounts import MIB
from leaklab.figstyle import experiment_order, figure, save, say, style, variant_colours, variant_order

SITE_COLOUR = "#0072B2"
SITE_LABEL_CHARS = 64
GROWTH_FIRST = "heaptrack"  # the profiler whose growth sites, when present, replace its leaked ones


def heap_timelines(heap_timeline: pd.DataFrame, experiment: str, out):
    """Each profiler's own heap figure over time, by variant: what it saw grow."""
    from leaklab.profiler_tables import HEAP_SOURCES

    data = heap_timeline[(heap_timeline["experiment"] == experiment)
                         & heap_timeline["source"].isin(HEAP_SOURCES.values())] if not heap_timeline.empty \
        else heap_timeline
    names = [p for p in HEAP_SOURCES if not data.empty and p in set(data["profiler"])]
    variants = variant_order(experiment, data["variant"] if not data.empty else [])
    colours = variant_colours(variants)
    with style():
        fig = figure(1.7 * max(1, len(names)) + 0.5)
        axes = fig.subplots(max(1, len(names)), 1, squeeze=False)[:, 0]
        for ax, profiler in zip(axes, names):
            part = data[data["profiler"] == profiler]
            for variant in variants:
                for i, (_, run) in enumerate(part[part["variant"] == variant].groupby("replicate")):
                    ax.plot(run["t"], run["heap_bytes"] / MIB, color=colours[variant], linewidth=0.9,
                            gid=f"variant:{variant}", label=variant if i == 0 else None)
            ax.legend(frameon=False, loc="best", title="variant")
            ax.set(title=profiler, xlabel="time since start (s)", ylabel="heap (MiB)")
        if not names:
            say(axes[0], "no profiler timeline for this experiment")
        fig.suptitle(f"{experiment}: heap as each profiler sees it")
        save(fig, out)
    return fig


def site_label(row) -> str:
    """``library function <- first frame``, cut to fit above its bar."""
    caller = row.native_caller if isinstance(row.native_caller, str) and row.native_caller else None
    frame = str(row.frame)
    label = f"{caller} <- {frame.split(' (')[0]}" if caller and caller not in frame else frame
    return label if len(label) <= SITE_LABEL_CHARS else label[:SITE_LABEL_CHARS - 3] + "..."


def top_sites(sites: pd.DataFrame, experiment: str, out, kind: str = "leaked", top: int = 5):
    """The largest allocation sites still live at exit (heaptrack's growth sites
    instead where its ``growth_from_unit`` asked for them), per profiler and variant; each
    site's name is written above its bar, so long C++ names never collide, and the
    variants under one profiler share a scale, so a fixed variant's small sites look small."""
    data = sites[(sites["experiment"] == experiment) & (sites["kind"] == kind) & (sites["rank"] <= top)] \
        if not sites.empty else sites
    if not data.empty:  # heaptrack's growth sites exist only when asked for: they are what that run is for
        grown = sites[(sites["experiment"] == experiment) & (sites["kind"] == "growth")
                      & (sites["profiler"] == GROWTH_FIRST) & (sites["rank"] <= top)]
        asked = set(grown["variant"])
        data = pd.concat([data[~((data["profiler"] == GROWTH_FIRST) & data["variant"].isin(asked))], grown])
    if data.empty and not sites.empty:  # tracemalloc reports growth, not leaked sites
        data = sites[(sites["experiment"] == experiment) & (sites["rank"] <= top)]
    pairs = [(p, v) for p in sorted(set(data["profiler"]))
             for v in variant_order(experiment, data[data["profiler"] == p]["variant"])] if not data.empty else []
    sizes = [len(data[(data["profiler"] == p) & (data["variant"] == v)]) for p, v in pairs]
    with style():
        fig = figure(0.36 * sum(sizes) + 0.55 * max(1, len(pairs)) + 0.3)
        axes = fig.subplots(max(1, len(pairs)), 1, squeeze=False, height_ratios=[s + 1 for s in sizes] or None)[:, 0]
        for ax, (profiler, variant) in zip(axes, pairs):
            part = data[(data["profiler"] == profiler) & (data["variant"] == variant)].sort_values("rank")
            y = np.arange(len(part))
            mib = part["bytes"].to_numpy(float) / MIB
            ax.barh(y, mib, height=0.45, color=SITE_COLOUR, gid="site")
            for yi, row, value in zip(y, part.itertuples(), mib):
                ax.text(0, yi - 0.3, site_label(row), fontsize=6, va="bottom", ha="left")
                ax.annotate(f"{value:.3g}", xy=(value, yi), xytext=(2, 0), textcoords="offset points",
                            va="center", fontsize=6)
            ax.set_yticks([])
            ax.set_ylim(len(part) - 0.5, -0.95)
            widest = data[data["profiler"] == profiler]["bytes"].max() / MIB  # one scale per profiler
            ax.set_xlim(0, max(widest, 1e-9) * 1.15)
            ax.set(title=f"{variant} under {profiler} ({part['kind'].iloc[0]})", xlabel="MiB")
        if not pairs:
            say(axes[0], "no profiler ran on this experiment")
        fig.suptitle(f"{experiment}: top allocation sites")
        save(fig, out)
    return fig


def profiler_overhead(overhead: pd.DataFrame, out):
    """CPU cost of one unit of work under each profiler, relative to plain (log scale),
    one bar per profiler and experiment."""
    data = overhead.dropna(subset=["cpu_per_unit_ratio"]) if not overhead.empty else overhead
    with style():
        pairs = (data.groupby(["profiler", "experiment"], sort=False)["cpu_per_unit_ratio"].median()
                 if not data.empty else pd.Series(dtype=float))
        fig = figure(0.22 * max(1, len(pairs)) + 1.0)
        ax = fig.add_subplot()
        if pairs.empty:
            say(ax, "no profiled runs")
        else:
            names = experiment_order(data["experiment"])
            colours = variant_colours(names)
            labels = [f"{p} · {e}" for p, e in pairs.index]
            ax.barh(range(len(pairs)), pairs.to_numpy(float), color=[colours[e] for _, e in pairs.index], gid="ratio")
            for y, value in enumerate(pairs):
                ax.annotate(f"{value:.3g}x", xy=(value, y), xytext=(2, 0), textcoords="offset points",
                            va="center", fontsize=6)
            ax.set_yticks(range(len(pairs)), labels)
            ax.set_ylim(len(pairs) - 0.5, -0.5)
            ax.set_xscale("log")
            ax.axvline(1, color="black", linewidth=0.6, gid="plain")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set(xlabel="CPU per unit / plain (log; 1 = no overhead)")
        fig.suptitle("Profiler overhead (per unit, normalised by scale)")
        save(fig, out)
    return fig
