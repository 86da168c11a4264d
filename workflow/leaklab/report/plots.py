"""The figures that show a decision, drawn from the tidy tables (never from run directories).

Growth is drawn divided by the bar its interval was held against (half the metric's
``leak_per_unit``, ``verdicts.DECISION_FRACTION``), so the bar sits at 1 in every panel,
whatever the metric's unit, and the leak threshold itself at 2; the axis is linear up to
the bar and logarithmic beyond (``symlog``), so a stable metric at noise level stays a
dot near 0 and a leak of thirty thresholds reaches far right.  Whiskers are the 95 %
interval, colour is the verdict (``figstyle.VERDICT_COLOURS``), and the real amount
with its unit is written beside every estimate.  Every function returns the figure it
saved, so tests can check what was drawn.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import patheffects
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from leaklab.model.amounts import MIB, counted
from leaklab.report.figstyle import (TEXT_ON, THRESHOLD_STYLE, WARMUP_COLOUR, WIDTH, as_float, axis_unit, experiment_order,
                              figure, from_zero, interval_text, nothing, panel_title, quantity, rate_text, save, say,
                              scaled, short, spec_of, style, variant_colours, variant_order, verdict_colour,
                              verdict_handles)

SYMLOG = {"linthresh": 1.0, "linscale": 1.0}  # linear within one bar, log beyond
LEAK_THRESHOLD_STYLE = {"color": "#777777", "linestyle": ":", "linewidth": 0.9}
TITLE_CHARS = 70  # a panel title line that fits across the figure at A4 half width
LEGEND_COLUMN_CHARS = 40  # legend labels this long still fit two columns across a headline panel


def _decides(frame: pd.DataFrame) -> pd.Series:
    return frame["decides"].fillna(False).astype(bool) if "decides" in frame else pd.Series(False, frame.index)


# ---------------------------------------------------------------- growth overview

def _overview_rows(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """The rows of one experiment's panel: per variant its deciding metric, RSS and the
    experiment's key metrics (those judged), deciding metric first."""
    part = data[data["experiment"] == name].assign(_decides=lambda f: _decides(f))
    spec = spec_of(name)
    wanted = ["rss_bytes", *(spec.key_metrics if spec else ())]
    rows = []
    for variant in variant_order(name, part["variant"]):
        mine = part[part["variant"] == variant]
        deciding = list(mine.loc[mine["_decides"], "metric"])
        for metric in dict.fromkeys([*deciding, *wanted]):
            rows.append(mine[mine["metric"] == metric])
    return pd.concat(rows) if rows else part.iloc[:0]


def _symlog_limits(lows: pd.Series, highs: pd.Series) -> tuple[float, float]:
    """One x range for every panel: at least [-1, 10] thresholds, wider when an interval is."""
    low = np.nanmin([-1.0, *lows.replace([np.inf, -np.inf], np.nan).dropna()])
    high = np.nanmax([10.0, *highs.replace([np.inf, -np.inf], np.nan).dropna()])
    return (low * 2 if low < -1 else -1.5), high * 2


def decision_bar(leak_per_unit):
    """What a growth interval is held against: half the leak threshold (``verdicts``)."""
    from leaklab.model.verdicts import DECISION_FRACTION

    return DECISION_FRACTION * leak_per_unit


def _bars_text(rows: pd.DataFrame, bar: pd.Series, name: str) -> str:
    """``bars: RSS 512 KiB, deleted_fds 0.25``: each metric's bar, once per panel, wrapped."""
    first = ~rows["metric"].duplicated()
    text = f"{name}: " + ", ".join(f"{short(m)} {quantity(b, m)}" for m, b in zip(rows["metric"][first], bar[first]))
    return "\n".join(textwrap.wrap(text, TITLE_CHARS))


def _decision_panel(ax, rows: pd.DataFrame, value: str, low: str | None, high: str | None, bar: pd.Series,
                    title: str, leak_threshold: float | None) -> None:
    """One panel of estimates over their bars: dot, whiskers (95 %), the bar at x = 1,
    the leak threshold (when it is not the bar) dotted, the verdict as colour, the real
    amount to the right, the bars in real units under the title."""
    y = np.arange(len(rows))
    ratio = rows[value].astype(float) / bar
    lo = rows[low].astype(float) / bar if low else ratio
    hi = rows[high].astype(float) / bar if high else ratio
    colours = [verdict_colour(v) for v in rows["verdict"]]
    for yi, a, b, c in zip(y, lo, hi, colours):
        if np.isfinite(a) and np.isfinite(b):
            ax.plot([a, b], [yi, yi], color=c, linewidth=2.2, solid_capstyle="butt", gid="interval")
    ax.scatter(ratio.fillna(0), y, c=colours, edgecolors="black", linewidths=0.5, s=22, zorder=3, gid="estimate")
    ax.axvline(1, **THRESHOLD_STYLE, gid="threshold")
    if leak_threshold is not None:
        ax.axvline(leak_threshold, **LEAK_THRESHOLD_STYLE, gid="leak_threshold")
    ax.axvline(0, color="#444444", linewidth=0.5)
    ax.set_yticks(y, [f"{r.variant} · {short(r.metric)}" for r in rows.itertuples()])
    for tick, decides in zip(ax.get_yticklabels(), rows["_decides"]):
        tick.set_fontweight("bold" if decides else "normal")
    for yi, r in zip(y, rows.itertuples()):
        ax.annotate(quantity(getattr(r, value), r.metric, sign=bool(low)), xy=(1, yi),
                    xycoords=("axes fraction", "data"), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=6.5, gid="amount")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xscale("symlog", **SYMLOG)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.tick_params(axis="x", labelbottom=True)
    name = "bars (half the leak threshold)" if leak_threshold else "thresholds"
    panel_title(ax, f"{title}\n{_bars_text(rows, bar, name)}")


def growth_overview(growth: pd.DataFrame, out, profiler: str = "plain"):
    """Growth per unit of every variant's deciding metric, RSS and key metrics, in units
    of the bar it was judged against, with 95 % intervals and verdict colours; for
    experiments whose units release their memory, what stays after release against the
    retention threshold."""
    if growth.empty or "verdict" not in growth:
        return nothing(out, "no growth: no run could be read")
    data = growth[(growth["profiler"] == profiler) & growth["verdict"].notna()]
    panels = [(name, _overview_rows(data, name)) for name in experiment_order(data["experiment"])]
    panels = [(name, rows) for name, rows in panels if len(rows)]
    releasing = [(name, rows[rows["retained"].notna() & rows["retained_threshold"].gt(0)])
                 for name, rows in panels if (spec_of(name) is None or spec_of(name).releases)]
    releasing = [(name, rows) for name, rows in releasing if len(rows)]
    if not panels:
        return nothing(out, f"no verdicts from {profiler} runs")
    everything = pd.concat([rows for _, rows in panels])
    kept = [r["retained"] / r["retained_threshold"] for _, r in releasing]
    bar = decision_bar(everything["leak_per_unit"].astype(float))
    xlim = _symlog_limits(pd.concat([everything["ci_low"] / bar, *kept]),
                          pd.concat([everything["ci_high"] / bar, *kept]))
    heights = [len(rows) + 2.6 for _, rows in panels] + [len(rows) + 2.6 for _, rows in releasing]
    with style():
        fig = figure(0.16 * sum(heights) + 1.0)
        axes = fig.subplots(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
        for ax, (name, rows) in zip(axes, panels):
            _decision_panel(ax, rows, "growth_per_unit", "ci_low", "ci_high",
                            decision_bar(rows["leak_per_unit"].astype(float)),
                            f"{name}: growth per {rows['unit'].iloc[0]}", 1 / decision_bar(1.0))
        for ax, (name, rows) in zip(axes[len(panels):], releasing):
            _decision_panel(ax, rows, "retained", None, None, rows["retained_threshold"].astype(float),
                            f"{name}: kept after release", None)
        for ax in axes:
            ax.set_xlim(*xlim)
        axes[-1].set_xlabel("estimate ÷ its bar (linear to 1, log beyond)")
        handles, labels = verdict_handles()
        handles += [Line2D([], [], **THRESHOLD_STYLE), Line2D([], [], **LEAK_THRESHOLD_STYLE),
                    Line2D([], [], color="#555555", linewidth=2.2)]
        labels += ["bar", "leak threshold", "95% interval"]
        fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
        fig.suptitle("Verdicts, plain runs (bold: the metric that decides the variant)")
        save(fig, out)
    return fig


# ---------------------------------------------------------------- headline per experiment

def _fit_line(x: np.ndarray, y: np.ndarray, slope: float) -> tuple[np.ndarray, np.ndarray]:
    """The pooled slope through the points: Theil–Sen's intercept, median(y - slope x)."""
    intercept = float(np.median(y - slope * x))
    ends = np.array([x.min(), x.max()])
    return ends, intercept + slope * ends


def _series(units: pd.DataFrame, experiment: str, variant: str, metric: str, profiler: str) -> pd.DataFrame:
    part = units[(units["experiment"] == experiment) & (units["variant"] == variant)
                 & (units["metric"] == metric) & (units["profiler"] == profiler)]
    return part.dropna(subset=["unit", "value"]).sort_values(["replicate", "unit"])


def _headline_panel(ax, series: pd.DataFrame, g: pd.Series, verdict: str, title: str) -> None:
    """One variant: each replicate as its change since the warm-up (runs that start
    apart are compared on what they gained; the level at the warm-up's end is named in
    the axis label, so no offset is hidden), warm-up shaded, the fitted growth in the
    verdict's colour beside a line rising at the decision bar from the same start (an
    interval steeper than that line is a leak), the verdict with its interval in the
    legend.  Each panel has its own scale: a 64 KiB/step leak beside a 4 MiB/step one
    is not flattened."""
    from leaklab.report.compare_plots import change_since_warmup

    metric, unit = g["metric"], g["unit"]
    warmup = as_float(g.get("warmup_units"))
    start = warmup if np.isfinite(warmup) else (series["unit"].min() if len(series) else 0.0)
    levels = series[series["unit"] <= start].groupby("replicate")["value"].last() if len(series) else pd.Series()
    series = change_since_warmup(series, start) if len(series) else series.assign(change=pd.Series(dtype=float))
    post = series[series["unit"] > start]
    slope = as_float(g.get("growth_per_unit"))
    bar = decision_bar(as_float(g.get("leak_per_unit")))
    span = (post["unit"].max() - post["unit"].min()) if len(post) else 0.0
    div, name = axis_unit(metric, np.r_[series["change"].to_numpy(float), bar * span if np.isfinite(bar) else 0])
    handles = []
    if len(post) >= 2 and np.isfinite(slope):
        x, y = _fit_line(post["unit"].to_numpy(float), post["change"].to_numpy(float), slope)
        handles += ax.plot(x, y / div, color=verdict_colour(verdict), linewidth=2.0, gid="fit", zorder=3,
                           path_effects=[patheffects.withStroke(linewidth=2.8, foreground="black")],
                           label=f"{verdict} {rate_text(slope, metric, unit)} "
                                 f"{interval_text(g.get('ci_low'), g.get('ci_high'), metric)}"
                                 + (f", {quantity(g.get('retained'), metric)} kept" if verdict == "retention" else ""))
        late = as_float(g.get("late_growth_per_unit"))
        if verdict == "settling" and np.isfinite(late):
            xs = np.sort(post["unit"].unique())
            tail = post[post["unit"] >= xs[len(xs) // 2]]
            lx, ly = _fit_line(tail["unit"].to_numpy(float), tail["change"].to_numpy(float), late)
            handles += ax.plot(lx, ly / div, color="black", linestyle=":", linewidth=1.4, gid="late_fit", zorder=5,
                               label=f"last half: {rate_text(late, metric, unit)}")
        if np.isfinite(bar):
            handles += ax.plot(x, (y[0] + bar * (x - x[0])) / div, **THRESHOLD_STYLE, gid="threshold",
                               label=f"bar {rate_text(bar, metric, unit)}")
    else:
        handles += ax.plot([], [], color=verdict_colour(verdict), linewidth=2.4, gid="fit",
                           label=f"{verdict}: no slope")
    replicates = list(series.groupby("replicate"))
    for i, (_, run) in enumerate(replicates):
        line = ax.plot(run["unit"], run["change"] / div, color="#333333", linewidth=0.7, marker="o",
                       markersize=1.8 if len(run) < 60 else 0, gid="replicate", zorder=5)
        if i == 0:
            line[0].set_label(f"{len(replicates)} replicate{'s' if len(replicates) > 1 else ''}")
            handles += line
    if len(series) and np.isfinite(warmup) and warmup >= series["unit"].min():
        handles.append(ax.axvspan(series["unit"].min(), warmup, color=WARMUP_COLOUR, zorder=0, gid="warmup",
                                  label="warm-up"))
    ax.axhline(0, color="#444444", linewidth=0.5)
    widest = max(len(h.get_label()) for h in handles)
    ax.legend(handles=handles, title=title, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False,
              ncol=2 if widest <= LEGEND_COLUMN_CHARS else 1, alignment="left", handlelength=1.6, borderaxespad=0.2)
    level = quantity(levels.median(), metric) if len(levels) else "n/a"
    ax.set_ylabel(f"Δ {short(metric)}" + (f" ({name})" if name else "") + f"\n0 = {level}")


def _levels_panel(ax, units: pd.DataFrame, experiment: str, variants: list[str], metrics: list[str],
                  profiler: str) -> None:
    """A library's own accounting beside RSS, per variant, from zero, in the unit the
    values need: which of them moves."""
    colours = variant_colours(variants)
    series = {(v, m): _series(units, experiment, v, m, profiler) for v in variants for m in metrics}
    div, name = axis_unit("level_bytes", pd.concat([s["value"] for s in series.values()] or [pd.Series()]))
    for variant in variants:
        for metric, line in zip(metrics, ("-", "--", ":")):
            for i, (_, run) in enumerate(series[(variant, metric)].groupby("replicate")):
                ax.plot(run["unit"], run["value"] / div, color=colours[variant], linestyle=line, linewidth=0.9,
                        gid=f"level:{metric}", label=f"{variant}: {short(metric)}" if i == 0 else None)
    ax.legend(title="levels: RSS beside the library's own accounting", loc="lower left", bbox_to_anchor=(0, 1.0),
              ncol=2, frameon=False, alignment="left", borderaxespad=0.2)
    from_zero(ax)
    ax.set(ylabel=name)


def headline(units: pd.DataFrame, growth: pd.DataFrame, verdicts: pd.DataFrame, experiment: str, out,
             profiler: str = "plain"):
    """The experiment on one page: per variant the metric that decided its verdict, each
    replicate over the units, the warm-up shaded, the fitted growth after it in the
    verdict's colour, the verdict and its interval in the legend; for an experiment with
    a library's own accounting, its level beside RSS."""
    from leaklab.tables.attribution import LAYERS

    mine = verdicts[(verdicts["experiment"] == experiment) & (verdicts["profiler"] == profiler)] \
        if not verdicts.empty else verdicts
    if mine.empty:
        return nothing(out, f"{experiment}: no verdict from {profiler} runs")
    variants = variant_order(experiment, mine["variant"])
    rows = mine.set_index("variant").loc[variants]
    library = [m for m, layer in LAYERS.items() if layer == "library accounting"
               and not units.empty and m in set(units[units["experiment"] == experiment]["metric"])]
    spec = spec_of(experiment)
    with style():
        fig = figure(1.75 * (len(variants) + bool(library)) + 0.5)
        axes = fig.subplots(len(variants) + bool(library), 1, sharex=True, squeeze=False)[:, 0]
        for ax, variant in zip(axes, variants):
            row = rows.loc[variant]
            match = growth[(growth["experiment"] == experiment) & (growth["variant"] == variant)
                           & (growth["profiler"] == profiler) & (growth["metric"] == row["metric"])]
            g = (match.iloc[0] if len(match) else row).copy()
            g["metric"], g["unit"] = row["metric"], row["unit"]
            _headline_panel(ax, _series(units, experiment, variant, row["metric"], profiler), g, row["verdict"],
                            f"{variant}: {row['verdict']} (decided by {short(row['metric'])})")
        if library:
            _levels_panel(axes[-1], units, experiment, variants, ["rss_bytes", *library], profiler)
        axes[-1].set_xlabel(f"{spec.unit if spec else 'unit'} (unit of work; shaded: warm-up, not fitted)")
        fig.suptitle(f"{experiment}: the deciding metric per variant ({profiler} runs)\nas change since the warm-up")
        save(fig, out)
    return fig


# ---------------------------------------------------------------- verdict matrix

def _cell_text(row: pd.Series) -> str:
    """The deciding metric and what decided: growth with its interval, or what was kept."""
    metric = row["metric"]
    if row["verdict"] == "retention":
        text = (f"retention · {short(metric)} {quantity(row['retained'], metric)} kept "
                f"(threshold {quantity(row['retained_threshold'], metric)})")
    else:
        text = (f"{row['verdict']} · {short(metric)} {rate_text(row['growth_per_unit'], metric, row['unit'])} "
                f"{interval_text(row['ci_low'], row['ci_high'], metric)}")
    not_ok = row.get("runs_not_ok")
    return f"{text} · ⚠ runs {not_ok}" if isinstance(not_ok, str) and not_ok else text


def verdict_matrix(verdicts: pd.DataFrame, out, profiler: str = "plain"):
    """One decisive verdict per experiment and variant, the metric that decided it named
    in the cell with its growth and 95 % interval (every metric is in ``growth.csv``)."""
    if verdicts.empty or "verdict" not in verdicts:
        return nothing(out, "no verdicts: no plain run could be read")
    data = verdicts[verdicts["profiler"] == profiler]
    if data.empty:
        return nothing(out, f"no verdicts from {profiler} runs")
    lines: list[tuple[str, pd.Series | None]] = []
    for name in experiment_order(data["experiment"]):
        part = data[data["experiment"] == name].set_index("variant")
        lines.append((name, None))
        lines += [(variant, part.loc[variant]) for variant in variant_order(name, part.index)]
    with style():
        fig = figure(0.2 * len(lines) + 0.9)
        ax = fig.add_subplot()
        for y, (label, row) in enumerate(lines):
            if row is None:
                ax.text(-0.02, y, label, ha="right", va="center", fontweight="bold", fontsize=7.5,
                        transform=ax.get_yaxis_transform())
                continue
            ax.barh(y, 1.0, height=0.86, color=verdict_colour(row["verdict"]), edgecolor="white", gid="cell")
            ax.text(0.012, y, _cell_text(row), va="center", fontsize=6.2,
                    color=TEXT_ON.get(row["verdict"], "black"))
        ax.set_yticks([y for y, (_, row) in enumerate(lines) if row is not None],
                      [label for label, row in lines if row is not None])
        ax.set_ylim(len(lines) - 0.5, -0.5)
        ax.set_xlim(0, 1)
        ax.tick_params(axis="y", length=0)
        ax.set_xticks([])
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        handles, labels = verdict_handles()
        fig.legend(handles, labels, loc="outside lower center", ncol=5, frameon=False)
        fig.suptitle("Verdict per variant: deciding metric, growth per unit, 95% interval")
        save(fig, out)
    return fig


# ---------------------------------------------------------------- attribution

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


def attribution_bars(attribution: pd.DataFrame, growth: pd.DataFrame, out):
    """Per experiment and variant: RSS growth per unit split into its layers (MiB),
    kernel objects on their own axes (deleted fds, slab KiB per unit), what stays after
    release for releasing experiments, each against the bar its verdict was judged by
    (dashed), and the layer that holds the growth named beside each variant."""
    from leaklab.tables.attribution import HEAP_LAYERS, MAPPING_PREFIX, NO_HEAP, RESIDUAL

    if attribution.empty:
        return nothing(out, "nothing to attribute: no plain run could be read")
    memory = [*HEAP_LAYERS, RESIDUAL, NO_HEAP]
    sections = []
    for name in experiment_order(attribution["experiment"]):
        part = attribution[attribution["experiment"] == name]
        variants = variant_order(name, part["variant"])
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


# ---------------------------------------------------------------- timeline

def timeline(samples: pd.DataFrame, units: pd.DataFrame, experiment: str, out, profiler: str = "plain"):
    """RSS over time (every sample, from zero), then each of the experiment's key
    metrics over its units as the change since the run's first unit (a system-wide
    level such as slab differs by megabytes between runs; what a run added is the
    story), by variant, replicates as thin lines (seaborn ``lineplot``, one line per
    replicate; ``plain`` runs only: under a profiler RSS includes the profiler's own
    memory)."""
    if samples.empty:
        return nothing(out, "no data: every run failed, or none ran")
    spec = spec_of(experiment)
    samples = samples[(samples["profiler"] == profiler) & (samples["experiment"] == experiment)]
    units = units[(units["profiler"] == profiler) & (units["experiment"] == experiment)] \
        if not units.empty else units
    key_metrics = [m for m in (spec.key_metrics if spec else ()) if not units.empty and m in set(units["metric"])]
    variants = variant_order(experiment, samples["variant"] if not samples.empty else [])
    colours = variant_colours(variants)
    with style():
        fig = figure(1.6 * (1 + len(key_metrics)) + 0.5)
        axes = fig.subplots(1 + len(key_metrics), 1, squeeze=False)[:, 0]
        panels = [(axes[0], samples.rename(columns={"rss_bytes": "value"}), "t", "rss_bytes",
                   "time since start (s)", None)]
        panels += [(ax, _since_first(units[units["metric"] == m]), "unit", m, f"{spec.unit} (unit of work)",
                    f"{short(m)} since start") for ax, m in zip(axes[1:], key_metrics)]
        for ax, frame, x, metric, xlabel, what in panels:
            if frame.empty:
                say(ax, f"no {short(metric)} recorded for {experiment}")
                continue
            values, label = scaled(metric, frame["value"], what)
            sns.lineplot(frame.assign(value=values), x=x, y="value", hue="variant", hue_order=variants,
                         units="replicate", estimator=None, palette=colours, linewidth=0.8, alpha=0.85,
                         legend=ax is axes[0], ax=ax)
            for line, variant in _lines_by_variant(ax, frame, variants):
                line.set_gid(f"variant:{variant}")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            if what is None:
                from_zero(ax)
            else:
                ax.axhline(0, color="#444444", linewidth=0.5)
            ax.set(xlabel=xlabel, ylabel=label, title=short(metric))
        if not samples.empty:
            handles = [Line2D([], [], color=colours[v]) for v in variants]
            fig.legend(handles, variants, loc="outside lower center", ncol=min(4, len(variants)),
                       frameon=False, title="variant (thin lines: replicates)")
        fig.suptitle(f"{experiment}: memory over the run ({profiler})")
        save(fig, out)
    return fig


def _since_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's values minus its first."""
    frame = frame.dropna(subset=["unit", "value"]).sort_values("unit")
    first = frame.groupby(["variant", "replicate"])["value"].transform("first")
    return frame.assign(value=frame["value"] - first)


def _lines_by_variant(ax, frame: pd.DataFrame, variants: list[str]):
    """seaborn draws one line per variant and replicate, in hue order: pair them up."""
    runs = [v for v in variants for _ in frame[frame["variant"] == v].groupby("replicate")]
    return zip(ax.lines, runs)


# ---------------------------------------------------------------- version sweep

def version_sweep(sweep: pd.DataFrame, out, metric: str = "rss_bytes"):
    """Growth per unit by library version, one panel per variant, in units of the bar its
    verdict was judged by (dashed at 1, half the leak threshold) with 95 % intervals,
    coloured by verdict."""
    from leaklab.tables.sweep import version_key

    data = sweep[sweep["metric"] == metric] if not sweep.empty else sweep
    if data.empty:
        return nothing(out, "no sweep results")
    variants = sorted(set(data["variant"]))
    with style():
        fig = figure(1.7 * len(variants) + 0.7)
        axes = fig.subplots(len(variants), 1, sharey=True, squeeze=False)[:, 0]
        for ax, variant in zip(axes, variants):
            part = data[data["variant"] == variant]
            part = part.iloc[sorted(range(len(part)), key=lambda i: version_key(str(part["version"].iloc[i])))]
            bar = decision_bar(part["leak_per_unit"].astype(float))
            x = np.arange(len(part))
            for xi, r in zip(x, part.itertuples()):
                if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
                    ends = [r.ci_low / decision_bar(r.leak_per_unit), r.ci_high / decision_bar(r.leak_per_unit)]
                    ax.plot([xi, xi], ends, color=verdict_colour(r.verdict), linewidth=2.2, gid="interval")
            ax.scatter(x, part["growth_per_unit"].astype(float) / bar, c=[verdict_colour(v) for v in part["verdict"]],
                       edgecolors="black", linewidths=0.5, s=22, zorder=3, gid="estimate")
            ax.axhline(1, **THRESHOLD_STYLE, gid="threshold")
            ax.axhline(0, color="#444444", linewidth=0.5)
            ax.set_yscale("symlog", **SYMLOG)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            bars = decision_bar(data["leak_per_unit"].astype(float))
            ax.set_ylim(*_symlog_limits(data["ci_low"] / bars, data["ci_high"] / bars))
            ax.set_xticks(x, part["version"].astype(str), rotation=45)
            ax.set(title=f"{variant}: {short(metric)} growth per {part['unit'].iloc[0]}",
                   xlabel=f"{part['package'].iloc[0]} version",
                   ylabel=f"growth / {quantity(bar.iloc[0], metric)} per {part['unit'].iloc[0]}")
        handles, labels = verdict_handles()
        fig.legend(handles + [Line2D([], [], **THRESHOLD_STYLE)], labels + ["bar (half the leak threshold)"],
                   loc="outside lower center", ncol=3, frameon=False)
        fig.suptitle("Version sweep: growth by version (95% interval)")
        save(fig, out)
    return fig


# ---------------------------------------------------------------- time to verdict

def _time_text(row) -> str:
    if row.decided:
        return f"{row.verdict} after {counted(row.units, row.unit)}"
    if isinstance(row.full_verdict, str):
        return f"{row.full_verdict} at the full {counted(row.recorded_units, row.unit)} (no earlier look)"
    if np.isfinite(as_float(row.units)):
        return f"undecided: ~{counted(round(row.units), row.unit)} would decide"
    return "undecided"


def _full_length_verdicts(table: pd.DataFrame) -> pd.Series:
    """Per experiment and variant, the severest verdict its runs got at their full
    length (the table's verdict, one look at 95 %), where the sequential looks (each
    at 1 - 0.05/K) decided nothing: a leak decided by the whole run is not "undecided"."""
    from leaklab.model.verdicts import VERDICTS

    if "table_verdict" not in table:
        return pd.Series(dtype=object)
    severity = {v: i for i, v in enumerate(VERDICTS)}
    judged = table[table["table_verdict"].isin(VERDICTS) & (table["table_verdict"] != "inconclusive")]
    return judged.groupby(["experiment", "variant"])["table_verdict"].agg(lambda v: min(v, key=severity.get))


def time_to_verdict(table: pd.DataFrame, out):
    """Seconds each experiment and variant needed for its verdict (the slowest run and
    deciding metric), in the verdict's colour, over the length its runs recorded (grey);
    hatched: no sequential look decided, drawn at the full length in the colour of the
    verdict the whole run got, or at the length that would decide.  Times span decades
    (a 0.5 s leak, a 150 s settling run), so the axis is logarithmic; what decided,
    after how many units, is written in a column to the right."""
    from leaklab.model.sequential import by_variant

    if table.empty:
        return nothing(out, "no plain runs to replay")
    data = by_variant(table)
    full = _full_length_verdicts(table)
    data["full_verdict"] = [None if d else full.get((e, v)) for e, v, d in
                            zip(data["experiment"], data["variant"], data["decided"])]
    late = data["full_verdict"].notna()
    data.loc[late, "verdict"] = data.loc[late, "full_verdict"]
    data.loc[late, "seconds"] = data.loc[late, "recorded_seconds"]
    y = np.arange(len(data))
    seconds = pd.concat([data["recorded_seconds"], data["seconds"]]).astype(float)
    positive = seconds[seconds > 0]
    with style():
        fig = figure(0.2 * len(data) + 1.3, width=1.4 * WIDTH)
        ax = fig.add_subplot()
        ax.set_xscale("log")
        ax.barh(y, data["recorded_seconds"], color="#DDDDDD", gid="recorded")
        ax.barh(y, data["seconds"].fillna(0), height=0.5, color=[verdict_colour(v) for v in data["verdict"]],
                hatch=["" if d else "//" for d in data["decided"]], gid="decision")
        for yi, row in zip(y, data.itertuples()):
            ax.annotate(_time_text(row), xy=(1, yi), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=6, gid="amount")
        ax.set_yticks(y, [f"{r.experiment} / {r.variant}" for r in data.itertuples()])
        ax.set_ylim(len(data) - 0.5, -0.5)
        if len(positive):
            ax.set_xlim(positive.min() / 2, positive.max() * 1.5)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set(xlabel="seconds of run time (log scale)")
        handles, labels = verdict_handles()
        fig.legend([Patch(color="#DDDDDD"), *handles], ["recorded run", *labels], loc="outside lower center",
                   ncol=6, frameon=False)
        fig.suptitle("Time to verdict (each look at 1 - 0.05/K; hatched: no look before the end decided)")
        save(fig, out)
    return fig


def _with_rss(part: pd.DataFrame, column: str) -> pd.DataFrame:
    """Each program's mechanism metric and, where that metric is in bytes, its RSS on
    the next row: a fix whose heap is clean but whose RSS stays (Go's ``rebuilt``) shows it."""
    if not part["metric"].str.endswith("_bytes").all() or f"rss_{column}" not in part:
        return part
    rss = part.assign(metric="rss_bytes", verdict=part["rss_verdict"], **{column: part[f"rss_{column}"]},
                      ci_low=np.nan, ci_high=np.nan)
    return pd.concat([part, rss]).sort_index(kind="stable")


def cross_language(table: pd.DataFrame, out):
    """The same mechanism in each language: growth per unit (or, where every unit
    releases everything, what stays after it) of the metric that measures it and of RSS
    beside it, verdict colours, 95 % whiskers and the amount in its own unit beside each
    bar; each panel's axis in the unit its values need."""
    if table.empty:
        return nothing(out, "no mechanism was measured in two languages")
    mechanisms = list(dict.fromkeys(table["mechanism"]))
    parts = []
    for mechanism in mechanisms:
        part = table[table["mechanism"] == mechanism]
        column = "retained" if part["measure"].iloc[0] == "retained" else "growth_per_unit"
        parts.append((mechanism, column, _with_rss(part.reset_index(drop=True), column)))
    heights = [len(part) + 1.6 for _, _, part in parts]
    with style():
        fig = figure(0.2 * sum(heights) + 0.8)
        axes = fig.subplots(len(mechanisms), 1, height_ratios=heights, squeeze=False)[:, 0]
        for ax, (mechanism, column, part) in zip(axes, parts):
            raw = part[column].astype(float)
            metric = part["metric"].iloc[0]
            bounds = [raw, part["ci_low"].astype(float), part["ci_high"].astype(float)] \
                if column == "growth_per_unit" else [raw]
            scale, unit_name = axis_unit(metric, pd.concat(bounds))
            y = np.arange(len(part))
            values = raw / scale
            ax.barh(y, values.fillna(0), color=[verdict_colour(v) for v in part["verdict"]], gid="estimate")
            if column == "growth_per_unit":
                low, high = part["ci_low"].astype(float) / scale, part["ci_high"].astype(float) / scale
                ax.errorbar(values, y, xerr=[(values - low).clip(lower=0), (high - values).clip(lower=0)],
                            fmt="none", ecolor="black", capsize=2, linewidth=0.8, gid="interval")
            for yi, r in zip(y, part.itertuples()):
                ax.annotate(quantity(getattr(r, column), r.metric, sign=column == "growth_per_unit"), xy=(1, yi),
                            xycoords=("axes fraction", "data"), xytext=(3, 0), textcoords="offset points",
                            va="center", fontsize=6.5, gid="amount")
            ax.set_yticks(y, [f"{r.language} · {r.variant} · {short(r.metric)}" for r in part.itertuples()])
            ax.set_ylim(len(part) - 0.5, -0.5)
            ax.axvline(0, color="#444444", linewidth=0.5)
            what = "kept after each unit" if column == "retained" else f"growth per {part['unit'].iloc[0]}"
            ax.set(xlabel=f"{what} ({unit_name or 'count'})")
            panel_title(ax, mechanism)
        handles, labels = verdict_handles()
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
        save(fig, out)
    return fig
