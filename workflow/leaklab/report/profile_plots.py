"""The figures of what the profilers saw: heap over time, top sites, their overhead.

Drawn in the shared style (``figstyle``) from the profiler tables; every function
returns the figure it saved, so tests can check what was drawn.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from leaklab.experiments import Spec
from leaklab.report.figstyle import (axis_unit, experiment_order, figure, from_zero, save, say, scaled, style,
                              variant_colours, variant_order)

SITE_COLOUR = "#0072B2"
SITE_LABEL_CHARS = 72  # characters of a site's name per line above its bar (5.5 pt at A4 half width)
GROWTH_FIRST = "heaptrack"  # the profiler whose growth sites, when present, replace its leaked ones


def _ran(runs: pd.DataFrame | None, experiment: str) -> pd.DataFrame:
    """The profiled runs of ``experiment`` that ended well (empty without a runs table)."""
    if runs is None or runs.empty:
        return pd.DataFrame(columns=["profiler", "variant", "scale"])
    mine = runs[(runs["experiment"] == experiment) & (runs["profiler"] != "plain")]
    return mine[mine["status"] == "ok"] if "status" in mine else mine


def scale_note(runs: pd.DataFrame, profiler: str) -> str:
    """``workload at 1/10 scale``: a heavy profiler runs a smaller workload, so its
    amounts are not the plain runs' (empty at full scale)."""
    scales = pd.to_numeric(runs[runs["profiler"] == profiler]["scale"], errors="coerce").dropna() \
        if "scale" in runs else pd.Series(dtype=float)
    scale = float(scales.median()) if len(scales) else 1.0
    if scale >= 1.0:
        return ""
    return f"workload at 1/{1 / scale:.3g} scale" if (1 / scale).is_integer() else f"workload at {scale:g}x scale"


def _missing(spec: Spec | None, experiment: str, ran: pd.DataFrame, what: str) -> str:
    """What is missing and why, instead of empty axes."""
    if ran.empty:
        return f"{experiment}: no profiler ran on this experiment, so there is no {what}"
    names = ", ".join(sorted(set(ran["profiler"])))
    why = (f" ({spec.runtime_heap}'s own heap is outside malloc, which these profilers hook)"
           if spec and spec.runtime_heap else "")
    return f"{experiment}: {names} ran but recorded no {what}{why}"


def heap_timelines(heap_timeline: pd.DataFrame, experiment: str, out, runs: pd.DataFrame | None = None, *,
                   specs: Mapping[str, Spec]):
    """Each profiler's own heap figure over time, by variant, from zero (seaborn
    ``lineplot``, a line per replicate): what it saw grow, with the workload's scale
    when the profiler ran a smaller one."""
    from leaklab.tables.profiler_tables import HEAP_SOURCES

    data = heap_timeline[(heap_timeline["experiment"] == experiment)
                         & heap_timeline["source"].isin(HEAP_SOURCES.values())].dropna(subset=["t", "heap_bytes"]) \
        if not heap_timeline.empty else heap_timeline
    data = data[data["source"] == data["profiler"].map(HEAP_SOURCES)] if not data.empty else data
    names = [p for p in HEAP_SOURCES if not data.empty and p in set(data["profiler"])]
    variants = variant_order(specs, experiment, data["variant"] if not data.empty else [])
    colours = variant_colours(variants)
    ran = _ran(runs, experiment)
    with style():
        fig = figure(1.7 * max(1, len(names)) + 0.5)
        axes = fig.subplots(max(1, len(names)), 1, squeeze=False)[:, 0]
        for ax, profiler in zip(axes, names):
            part = data[data["profiler"] == profiler]
            values, label = scaled("heap_bytes", part["heap_bytes"], "heap")
            sns.lineplot(part.assign(heap=values), x="t", y="heap", hue="variant", hue_order=variants,
                         units="replicate", estimator=None, palette=colours, linewidth=0.9, marker="o",
                         markersize=2 if len(part) < 200 else 0, markeredgewidth=0, ax=ax)
            runs_drawn = [v for v in variants for _ in part[part["variant"] == v].groupby("replicate")]
            for line, variant in zip(ax.lines, runs_drawn):
                line.set_gid(f"variant:{variant}")
            ax.legend(frameon=False, loc="best", title="variant")
            note = scale_note(ran, profiler)
            from_zero(ax)
            ax.set(title=profiler + (f" ({note})" if note else ""), xlabel="time since start (s)", ylabel=label)
        if not names:
            say(axes[0], _missing(specs.get(experiment), experiment, ran, "heap timeline"))
        fig.suptitle(f"{experiment}: heap as each profiler sees it")
        save(fig, out)
    return fig


def site_label(row) -> str:
    """``library function <- first frame``, wrapped onto two lines above its bar and cut
    after that, so a long C++ name stays inside the figure."""
    caller = row.native_caller if isinstance(row.native_caller, str) and row.native_caller else None
    frame = str(row.frame)
    label = f"{caller} <- {frame.split(' (')[0]}" if caller and caller not in frame else frame
    lines = textwrap.wrap(label, SITE_LABEL_CHARS, break_long_words=True, break_on_hyphens=False) or [""]
    return "\n".join(lines[:2]) + ("..." if len(lines) > 2 else "")


def top_sites(sites: pd.DataFrame, experiment: str, out, kind: str = "leaked", top: int = 5,
              runs: pd.DataFrame | None = None, *, specs: Mapping[str, Spec]):
    """The largest allocation sites still live at exit (heaptrack's growth sites
    instead where its ``growth_from_unit`` asked for them), per profiler and variant; each
    site's name is written above its bar, so long C++ names never collide, and the
    variants under one profiler share a scale (in the unit its sites need), so a fixed
    variant's small sites look small."""
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
             for v in variant_order(specs, experiment, data[data["profiler"] == p]["variant"])] \
        if not data.empty else []
    sizes = [len(data[(data["profiler"] == p) & (data["variant"] == v)]) for p, v in pairs]
    ran = _ran(runs, experiment)
    with style():
        fig = figure(0.45 * sum(sizes) + 0.6 * max(1, len(pairs)) + 0.3)
        axes = fig.subplots(max(1, len(pairs)), 1, squeeze=False, height_ratios=[s + 1 for s in sizes] or None)[:, 0]
        for ax, (profiler, variant) in zip(axes, pairs):
            part = data[(data["profiler"] == profiler) & (data["variant"] == variant)].sort_values("rank")
            widest = data[data["profiler"] == profiler]["bytes"].max()  # one scale per profiler
            div, name = axis_unit("site_bytes", [widest])
            y = np.arange(len(part))
            values = part["bytes"].to_numpy(float) / div
            ax.barh(y, values, height=0.4, color=SITE_COLOUR, gid="site")
            for yi, row, value in zip(y, part.itertuples(), values):
                ax.text(0, yi - 0.25, site_label(row), fontsize=5.5, va="bottom", ha="left", gid="site_label")
                ax.annotate(f"{value:.3g}", xy=(value, yi), xytext=(2, 0), textcoords="offset points",
                            va="center", fontsize=6)
            ax.set_yticks([])
            ax.set_ylim(len(part) - 0.5, -1.05)
            ax.set_xlim(0, max(widest / div, 1e-9) * 1.15)
            note = scale_note(ran, profiler)
            ax.set(title=f"{variant} under {profiler} ({part['kind'].iloc[0]}" + (f"; {note})" if note else ")"),
                   xlabel=name)
        if not pairs:
            say(axes[0], _missing(specs.get(experiment), experiment, ran, "allocation site"))
        fig.suptitle(f"{experiment}: top allocation sites")
        save(fig, out)
    return fig


def profiler_overhead(overhead: pd.DataFrame, out, *, specs: Mapping[str, Spec]):
    """CPU cost of one unit of work under each profiler, relative to plain (log scale),
    one bar per profiler and experiment; a pair without a CPU measurement (a ratio of
    0 or none: the run's CPU time per unit was not recorded) is written as missing,
    not drawn as an empty row."""
    data = overhead.assign(cpu_per_unit_ratio=pd.to_numeric(overhead["cpu_per_unit_ratio"], errors="coerce")
                           .where(lambda r: r > 0)) if not overhead.empty else overhead
    with style():
        pairs = (data.groupby(["profiler", "experiment"], sort=False)["cpu_per_unit_ratio"].median()
                 if not data.empty else pd.Series(dtype=float))
        fig = figure(0.22 * max(1, len(pairs)) + 1.0)
        ax = fig.add_subplot()
        if pairs.empty:
            say(ax, "no profiled runs")
        else:
            names = experiment_order(specs, data["experiment"])
            colours = variant_colours(names)
            labels = [f"{p} · {e}" for p, e in pairs.index]
            measured = pairs.dropna()
            ax.barh(range(len(pairs)), pairs.fillna(0).to_numpy(float), color=[colours[e] for _, e in pairs.index],
                    gid="ratio")
            ax.set_xscale("log")
            low = min(measured.min(), 1.0) / 1.5 if len(measured) else 0.5
            for y, value in enumerate(pairs):
                if np.isfinite(value):
                    ax.annotate(f"{value:.3g}x", xy=(value, y), xytext=(2, 0), textcoords="offset points",
                                va="center", fontsize=6, gid="amount")
                else:
                    ax.annotate("missing: no CPU time per unit", xy=(low, y), xytext=(2, 0),
                                textcoords="offset points", va="center", fontsize=6, color="#777777", gid="missing")
            ax.set_yticks(range(len(pairs)), labels)
            ax.set_ylim(len(pairs) - 0.5, -0.5)
            ax.set_xlim(low, max(measured.max() if len(measured) else 1.0, 1.0) * 3)
            ax.axvline(1, color="black", linewidth=0.6, gid="plain")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set(xlabel="CPU per unit / plain (log; 1 = no overhead)")
        fig.suptitle("Profiler overhead (per unit, normalised by scale)")
        save(fig, out)
    return fig
