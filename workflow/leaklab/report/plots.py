"""The figures that show a decision, drawn from the tidy tables (never from run directories):
the growth overview, each experiment's headline and the verdict matrix.  The other
figures each have their own module (``attribution_plots``, ``timeline_plots``,
``sweep_plots``, ``cross_language_plots``, ``profile_plots``, ``compare_plots``).

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

import textwrap
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from leaklab.experiments import Spec
from leaklab.report.figstyle import (TEXT_ON, THRESHOLD_STYLE, WARMUP_COLOUR, as_float, axis_unit, experiment_order,
                                     figure, from_zero, interval_text, nothing, panel_title, quantity, rate_text, save,
                                     short, style, variant_colours, variant_order, verdict_colour,
                                     verdict_handles)

SYMLOG = {"linthresh": 1.0, "linscale": 1.0}  # linear within one bar, log beyond
LEAK_THRESHOLD_STYLE = {"color": "#777777", "linestyle": ":", "linewidth": 0.9}
TITLE_CHARS = 70  # a panel title line that fits across the figure at A4 half width
LEGEND_COLUMN_CHARS = 40  # legend labels this long still fit two columns across a headline panel


def _decides(frame: pd.DataFrame) -> pd.Series:
    return frame["decides"].fillna(False).astype(bool) if "decides" in frame else pd.Series(False, frame.index)


# ---------------------------------------------------------------- growth overview

def _overview_rows(data: pd.DataFrame, name: str, specs: Mapping[str, Spec]) -> pd.DataFrame:
    """The rows of one experiment's panel: per variant its deciding metric, RSS and the
    experiment's key metrics (those judged), deciding metric first."""
    part = data[data["experiment"] == name].assign(_decides=lambda f: _decides(f))
    spec = specs.get(name)
    wanted = ["rss_bytes", *(spec.key_metrics if spec else ())]
    rows = []
    for variant in variant_order(specs, name, part["variant"]):
        mine = part[part["variant"] == variant]
        deciding = list(mine.loc[mine["_decides"], "metric"])
        for metric in dict.fromkeys([*deciding, *wanted]):
            rows.append(mine[mine["metric"] == metric])
    return pd.concat(rows) if rows else part.iloc[:0]


def symlog_limits(lows: pd.Series, highs: pd.Series) -> tuple[float, float]:
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


def growth_overview(growth: pd.DataFrame, out, profiler: str = "plain", *, specs: Mapping[str, Spec]):
    """Growth per unit of every variant's deciding metric, RSS and key metrics, in units
    of the bar it was judged against, with 95 % intervals and verdict colours; for
    experiments whose units release their memory, what stays after release against the
    retention threshold."""
    if growth.empty or "verdict" not in growth:
        return nothing(out, "no growth: no run could be read")
    data = growth[(growth["profiler"] == profiler) & growth["verdict"].notna()]
    panels = [(name, _overview_rows(data, name, specs)) for name in experiment_order(specs, data["experiment"])]
    panels = [(name, rows) for name, rows in panels if len(rows)]
    releasing = [(name, rows[rows["retained"].notna() & rows["retained_threshold"].gt(0)])
                 for name, rows in panels if (specs.get(name) is None or specs[name].releases)]
    releasing = [(name, rows) for name, rows in releasing if len(rows)]
    if not panels:
        return nothing(out, f"no verdicts from {profiler} runs")
    everything = pd.concat([rows for _, rows in panels])
    kept = [r["retained"] / r["retained_threshold"] for _, r in releasing]
    bar = decision_bar(everything["leak_per_unit"].astype(float))
    xlim = symlog_limits(pd.concat([everything["ci_low"] / bar, *kept]),
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
             profiler: str = "plain", *, specs: Mapping[str, Spec]):
    """The experiment on one page: per variant the metric that decided its verdict, each
    replicate over the units, the warm-up shaded, the fitted growth after it in the
    verdict's colour, the verdict and its interval in the legend; for an experiment with
    a library's own accounting, its level beside RSS."""
    from leaklab.tables.attribution import LAYERS

    mine = verdicts[(verdicts["experiment"] == experiment) & (verdicts["profiler"] == profiler)] \
        if not verdicts.empty else verdicts
    if mine.empty:
        return nothing(out, f"{experiment}: no verdict from {profiler} runs")
    variants = variant_order(specs, experiment, mine["variant"])
    rows = mine.set_index("variant").loc[variants]
    library = [m for m, layer in LAYERS.items() if layer == "library accounting"
               and not units.empty and m in set(units[units["experiment"] == experiment]["metric"])]
    spec = specs.get(experiment)
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


def verdict_matrix(verdicts: pd.DataFrame, out, profiler: str = "plain", *, specs: Mapping[str, Spec]):
    """One decisive verdict per experiment and variant, the metric that decided it named
    in the cell with its growth and 95 % interval (every metric is in ``growth.csv``)."""
    if verdicts.empty or "verdict" not in verdicts:
        return nothing(out, "no verdicts: no plain run could be read")
    data = verdicts[verdicts["profiler"] == profiler]
    if data.empty:
        return nothing(out, f"no verdicts from {profiler} runs")
    lines: list[tuple[str, pd.Series | None]] = []
    for name in experiment_order(specs, data["experiment"]):
        part = data[data["experiment"] == name].set_index("variant")
        lines.append((name, None))
        lines += [(variant, part.loc[variant]) for variant in variant_order(specs, name, part.index)]
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
