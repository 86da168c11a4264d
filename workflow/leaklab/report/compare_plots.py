"""One story's comparison: bug, fix and control on the same metrics, side by side.

Each ``headline`` panel shows a variant on the metric that decided it, so a fix judged
on one metric and its bug on another cannot be compared there.  This figure puts every
variant of an experiment on the same rows: the metrics that decided any of them, then
RSS.  Left, the change since the warm-up over the units of work (mean of the runs, band:
their range) beside the bar rising from zero; middle, the pooled growth per
unit with its 95 % interval against the bar (what asv's compare view gives, with the
statistics); right, for experiments whose units release their memory, what stays after
release against the retention threshold (heaptrack's diff of start and end).  So a fix
that keeps as much RSS as its bug (``go_map``'s ``rebuilt``) shows it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
import seaborn.objects as so
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from leaklab.experiments import Spec
from leaklab.report import roles
from leaklab.report.figstyle import (THRESHOLD_STYLE, VARIANT_COLOURS, WARMUP_COLOUR, WIDTH, as_float, axis_unit, figure,
                              nothing, quantity, save, short, style, variant_order, verdict_colour,
                              verdict_handles)

ROLE_ORDER = ("bug", "fix", "control", "planted", "variant")
LINE_COLOURS = [c for c in VARIANT_COLOURS if to_hex(c) != to_hex(THRESHOLD_STYLE["color"])]  # black: the bar
ROLE_DASHES = {"bug": "", "fix": (4, 1.5), "control": (1, 1), "planted": (3, 1, 1, 1), "variant": (2, 2)}


def role(experiment: str, variant: str) -> str:
    """bug, fix or control: the variant's part in its story (``leaklab.report.roles``);
    ``planted`` for the controls' planted leaks, ``variant`` for a user's experiment."""
    if experiment == "planted":
        return "control" if variant == "zero" else "planted"
    found = roles.role(experiment, variant)
    return found.role if found else "variant"


def story_order(specs: Mapping[str, Spec], experiment: str, variants) -> list[str]:
    """Bug first, then fix, then control, each in the experiment's own order."""
    ordered = variant_order(specs, experiment, variants)
    return sorted(ordered, key=lambda v: (ROLE_ORDER.index(role(experiment, v)), ordered.index(v)))


def change_since_warmup(units: pd.DataFrame, warmup: float) -> pd.DataFrame:
    """Each run's values minus its own value at the end of the warm-up (the last unit
    not after it, else its first unit): runs that start apart are compared on what they
    gained, not on where they started."""
    frames = []
    for _, run in units.dropna(subset=["unit", "value"]).sort_values("unit").groupby(["variant", "replicate"]):
        before = run[run["unit"] <= warmup]
        start = before["value"].iloc[-1] if len(before) else run["value"].iloc[0]
        frames.append(run.assign(change=run["value"] - start))
    return pd.concat(frames) if frames else units.assign(change=pd.Series(dtype=float))


def _metrics(rows: pd.DataFrame, variants: list[str]) -> list[str]:
    """The metrics that decided any variant (in the variants' order), then RSS."""
    decides = rows["decides"].fillna(False).astype(bool) if "decides" in rows else pd.Series(False, rows.index)
    deciding = [m for v in variants for m in rows[(rows["variant"] == v) & decides]["metric"]]
    return [m for m in dict.fromkeys([*deciding, "rss_bytes"]) if m in set(rows["metric"])]


def _change_panel(ax, series: pd.DataFrame, rows: pd.DataFrame, metric: str, variants: list[str],
                  experiment: str, warmup: float, legend: bool) -> None:
    """Change since the warm-up per unit: a line per variant (mean over runs, band: their
    range), the warm-up shaded, the bar as a dashed line rising from zero.  The range,
    not a bootstrap interval of the mean: with the two or three runs a variant has, the
    95 % bootstrap interval is that range anyway, and seaborn drew it by resampling each
    unit 500 times (16 of fd_leak's 20 s figure job)."""
    bar = as_float(rows["leak_per_unit"].iloc[0]) / 2 if len(rows) else np.nan
    last = series["unit"].max() if len(series) else warmup + 1
    bar_end = bar * (last - warmup) if np.isfinite(bar) else 0.0
    div, name = axis_unit(metric, np.r_[series["change"].to_numpy(float), bar_end])
    if len(series):
        data = series.assign(change=series["change"] / div,
                             label=[f"{v} ({role(experiment, v)})" for v in series["variant"]])
        labels = [f"{v} ({role(experiment, v)})" for v in variants]
        colours = dict(zip(variants, itertools.cycle(LINE_COLOURS)))
        sns.lineplot(data, x="unit", y="change", hue="label", hue_order=labels, style="label", style_order=labels,
                     dashes=[ROLE_DASHES[role(experiment, v)] for v in variants],
                     palette=[colours[v] for v in variants], errorbar=("pi", 100),
                     linewidth=1.1, ax=ax, legend=legend)
        for line, label in zip(ax.lines, labels):
            line.set_gid(f"variant:{label.split(' (')[0]}")
        ax.axvspan(series["unit"].min(), warmup, color=WARMUP_COLOUR, zorder=0, gid="warmup")
    if np.isfinite(bar):
        ax.plot([warmup, last], [0, bar_end / div], **THRESHOLD_STYLE, gid="threshold")
    ax.axhline(0, color="#444444", linewidth=0.5)
    unit = rows["unit"].iloc[0] if len(rows) else "unit"
    ax.set(xlabel=f"{unit} (shaded: warm-up)", ylabel=f"change since warm-up ({name})" if name else
           "change since warm-up")
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_title(f"{short(metric)}: change since the warm-up", loc="left")


def _estimate_panel(ax, rows: pd.DataFrame, metric: str, value: str, low: str | None, high: str | None,
                    bar: pd.Series, bar_name: str, title: str, per: str = "") -> None:
    """Per variant the estimate with its 95 % interval (seaborn objects: Range and Dot,
    coloured by the verdict of this metric), the bar dashed, the amount written beside."""
    estimate, lows = rows[value].astype(float), rows[low].astype(float) if low else rows[value].astype(float)
    highs = rows[high].astype(float) if high else estimate
    div, name = axis_unit(metric, pd.concat([estimate, lows, highs, bar]))
    data = pd.DataFrame({"label": list(rows["variant"]), "x": estimate / div, "low": lows / div,
                         "high": highs / div, "verdict": list(rows["verdict"].fillna("none"))})
    palette = {v: verdict_colour(v) for v in data["verdict"]}
    plot = so.Plot(data, x="x", y="label", color="verdict").scale(color=palette)
    if low and data[["low", "high"]].notna().all(axis=1).any():  # a variant without an interval: its dot only
        plot = plot.add(so.Range(linewidth=2.2), data=data.dropna(subset=["low", "high"]), xmin="low", xmax="high",
                        legend=False)
    plot.add(so.Dot(pointsize=4.5, edgecolor="black", edgewidth=0.5), legend=False).on(ax).plot()
    for collection in ax.collections:
        collection.set_gid("interval" if isinstance(collection, LineCollection) else "estimate")
    bars = bar.dropna().unique()
    for b in bars:
        ax.axvline(b / div, **THRESHOLD_STYLE, gid="threshold")
    ax.axvline(0, color="#444444", linewidth=0.5)
    for y, r in enumerate(rows.itertuples()):
        ax.annotate(quantity(getattr(r, value), metric, sign=bool(low)), xy=(1, y), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=6.5, gid="amount")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set(ylabel="", xlabel=f"{name or short(metric)}{per} ({bar_name} dashed)")
    ax.set_title(title, loc="left")


def compare(units: pd.DataFrame, growth: pd.DataFrame, experiment: str, out, profiler: str = "plain", *,
            specs: Mapping[str, Spec]):
    """Bug, fix and control of ``experiment`` on the same metrics: change since the
    warm-up, growth per unit with its 95 % interval against the bar, and (releasing
    experiments) what stays after release against the retention threshold."""
    rows = growth[(growth["experiment"] == experiment) & (growth["profiler"] == profiler)
                  & growth["verdict"].notna()] if not growth.empty and "verdict" in growth else growth
    if rows.empty:
        return nothing(out, f"{experiment}: no verdict from {profiler} runs to compare")
    variants = story_order(specs, experiment, rows["variant"])
    metrics = _metrics(rows, variants)
    spec = specs.get(experiment)
    releases = spec.releases if spec else rows["retained"].notna().any()
    warmup = as_float(rows["warmup_units"].iloc[0])
    mine = units[(units["experiment"] == experiment) & (units["profiler"] == profiler)] if not units.empty else units
    columns = 3 if releases else 2
    with style():
        fig = figure(1.45 * len(metrics) + 0.9, width=2 * WIDTH)
        axes = fig.subplots(len(metrics), columns, squeeze=False,
                            width_ratios=[2.0, 1.3, 1.3][:columns])
        for i, metric in enumerate(metrics):
            part = rows[rows["metric"] == metric].set_index("variant").reindex(
                [v for v in variants if v in set(rows[rows["metric"] == metric]["variant"])]).reset_index()
            series = change_since_warmup(mine[mine["metric"] == metric], warmup) if not mine.empty \
                else pd.DataFrame(columns=["variant", "replicate", "unit", "change"])
            _change_panel(axes[i, 0], series, part, metric, variants, experiment, warmup, legend=i == 0)
            unit = part["unit"].iloc[0]
            _estimate_panel(axes[i, 1], part, metric, "growth_per_unit", "ci_low", "ci_high",
                            part["leak_per_unit"].astype(float) / 2, "bar", f"growth per {unit}, 95% interval",
                            per=f" per {unit}")
            if releases:
                _estimate_panel(axes[i, 2], part, metric, "retained", None, None,
                                part["retained_threshold"].astype(float), "threshold", "kept after release")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        handles += [Line2D([], [], **THRESHOLD_STYLE), Patch(color=WARMUP_COLOUR)]
        labels += ["bar (half the leak threshold) / retention threshold", "warm-up"]
        verdict_patches, verdict_labels = verdict_handles()
        fig.legend(handles + verdict_patches, [*labels, *(f"verdict: {v}" for v in verdict_labels)],
                   loc="outside lower center", ncol=4, frameon=False)
        fig.suptitle(f"{experiment}: bug, fix and control on the same metrics ({profiler} runs)")
        save(fig, out)
    return fig
