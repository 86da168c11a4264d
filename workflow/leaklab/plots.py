"""Figures from the tidy tables (never from run directories): seaborn, PNG.

Byte metrics are drawn in MiB; every axis says its unit.  Replicates are thin lines
so their spread stays visible.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from leaklab import experiments  # noqa: E402
from leaklab.amounts import MIB  # noqa: E402

VERDICT_COLOURS = {"leak": "#d62728", "retention": "#ff7f0e", "stable": "#2ca02c", "inconclusive": "#7f7f7f"}


def _save(fig, out: Path, rect: tuple | None = None, layout: bool = True) -> None:
    """Lay out, write as PNG at report size, and free the figure."""
    if layout:
        fig.tight_layout(**({"rect": rect} if rect else {}))
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _say(ax, message: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.axis("off")


def _nothing(out: Path, message: str) -> None:
    """A figure that says why it is empty, so the report and its links stay whole."""
    fig, ax = plt.subplots(figsize=(6, 2))
    _say(ax, message)
    _save(fig, out, layout=False)


def _scaled(metric: str, values: pd.Series) -> tuple[pd.Series, str]:
    if metric.endswith("_bytes"):
        return values / MIB, f"{metric.removesuffix('_bytes')} (MiB)"
    return values, metric


def _replicate_lines(ax, frame: pd.DataFrame, x: str, y: str, order: list[str]) -> None:
    sns.lineplot(data=frame, x=x, y=y, hue="variant", hue_order=order, units="replicate",
                 estimator=None, linewidth=0.9, alpha=0.8, ax=ax)


def timeline(samples: pd.DataFrame, units: pd.DataFrame, experiment: str, out: Path,
             profiler: str = "plain") -> None:
    """RSS over time, then each metric that matters for the experiment over its units
    (``plain`` runs only: under a profiler RSS includes the profiler's own memory)."""
    if samples.empty:
        return _nothing(out, "no data: every run failed, or none ran")
    spec = experiments.get(experiment)
    if not samples.empty:
        samples = samples[samples["profiler"] == profiler]
    if not units.empty:
        units = units[units["profiler"] == profiler]
    order = [v for v in spec.variants if v in set(samples.get("variant", []))]
    key_metrics = [m for m in spec.key_metrics if not units.empty and m in set(units["metric"])]
    fig, axes = plt.subplots(1, 1 + len(key_metrics), figsize=(5.5 * (1 + len(key_metrics)), 4.2), squeeze=False)
    rss = samples[samples["experiment"] == experiment].copy()
    rss["rss"], label = _scaled("rss_bytes", rss["rss_bytes"])
    _replicate_lines(axes[0][0], rss, "t", "rss", order)
    axes[0][0].set(xlabel="time since start (s)", ylabel=label.replace("rss", "RSS"), title="RSS (sampler)")
    for ax, metric in zip(axes[0][1:], key_metrics):
        part = units[(units["experiment"] == experiment) & (units["metric"] == metric)].copy()
        part["value"], label = _scaled(metric, part["value"])
        _replicate_lines(ax, part, "unit", "value", order)
        ax.set(xlabel=f"{spec.unit} (unit of work)", ylabel=label, title=metric)
    for ax in axes[0][1:]:
        if ax.get_legend():
            ax.get_legend().remove()
    fig.suptitle(f"{experiment}: memory by variant (thin lines: replicates)")
    _save(fig, out)


def growth_overview(growth: pd.DataFrame, out: Path, profiler: str = "plain") -> None:
    """Growth per unit of RSS and of each experiment's key metric, coloured by verdict."""
    if growth.empty:
        return _nothing(out, "no data: every run failed, or none ran")
    data = growth[growth["profiler"] == profiler]
    names = [n for n in experiments.names() if n in set(data["experiment"])]
    panels = [(n, m) for n in names for m in ("rss_bytes", *experiments.get(n).key_metrics)
              if m in set(data[data["experiment"] == n]["metric"])]
    cols = 2
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, metric) in zip(axes.flat, panels):
        part = data[(data["experiment"] == name) & (data["metric"] == metric)].copy()
        order = [v for v in experiments.get(name).variants if v in set(part["variant"])]
        part = part.set_index("variant").loc[order].reset_index()
        values, label = _scaled(metric, part["growth_per_unit"])
        bars = ax.barh(part["variant"], values, color=[VERDICT_COLOURS.get(v, "#333") for v in part["verdict"]])
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=8, padding=2)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.invert_yaxis()
        ax.set(title=f"{name}: {metric}", xlabel=f"{label} per {part['unit'].iloc[0]}")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS.values()]
    fig.legend(handles, VERDICT_COLOURS.keys(), loc="lower center", ncol=4, frameon=False)
    fig.suptitle("Growth per unit of work after warm-up (pooled over replicates)")
    _save(fig, out, rect=(0, 0.04, 1, 1))


def heap_timelines(heap_timeline: pd.DataFrame, experiment: str, out: Path) -> None:
    """Each profiler's own heap figure over time, by variant: what it saw grow."""
    from leaklab.profiler_tables import HEAP_SOURCES

    if heap_timeline.empty:
        return _nothing(out, "no data: every run failed, or none ran")
    data = heap_timeline[(heap_timeline["experiment"] == experiment)
                         & heap_timeline["source"].isin(HEAP_SOURCES.values())].copy()
    names = [p for p in HEAP_SOURCES if p in set(data["profiler"])]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(5 * max(1, len(names)), 4), squeeze=False)
    order = [v for v in experiments.get(experiment).variants if v in set(data["variant"])]
    for ax, profiler in zip(axes[0], names):
        part = data[data["profiler"] == profiler].copy()
        part["heap"] = part["heap_bytes"] / MIB
        _replicate_lines(ax, part, "t", "heap", order)
        ax.set(title=profiler, xlabel="time since start (s)", ylabel="heap (MiB)")
    if not names:
        _say(axes[0][0], "no profiler timeline for this experiment")
    fig.suptitle(f"{experiment}: heap as each profiler sees it (runs are scaled, see runs.scale)")
    _save(fig, out)


def top_sites(sites: pd.DataFrame, experiment: str, out: Path, kind: str = "leaked", top: int = 5) -> None:
    """The largest allocation sites still live at exit, per profiler and variant."""
    if sites.empty:
        return _nothing(out, "no data: every run failed, or none ran")
    data = sites[(sites["experiment"] == experiment) & (sites["kind"] == kind) & (sites["rank"] <= top)].copy()
    if data.empty:  # tracemalloc reports growth, not leaked sites
        data = sites[(sites["experiment"] == experiment) & (sites["rank"] <= top)].copy()
    pairs = sorted(set(zip(data["profiler"], data["variant"])))
    fig, axes = plt.subplots(max(1, len(pairs)), 1, figsize=(10, 1.0 + 1.3 * max(1, len(pairs))), squeeze=False)
    for ax, (profiler, variant) in zip(axes[:, 0], pairs):
        part = data[(data["profiler"] == profiler) & (data["variant"] == variant)].sort_values("rank")
        labels = [_site_label(row) for row in part.itertuples()]
        bars = ax.barh(labels, part["bytes"] / MIB, color="#4c72b0")
        ax.bar_label(bars, labels=[f"{b / MIB:.2f}" for b in part["bytes"]], fontsize=7, padding=2)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=7)
        ax.set(title=f"{variant} under {profiler} ({part['kind'].iloc[0]})", xlabel="MiB")
    if not pairs:
        _say(axes[0][0], "no profiler ran on this experiment")
    fig.suptitle(f"{experiment}: top allocation sites")
    _save(fig, out)


def _site_label(row) -> str:
    caller = row.native_caller if isinstance(row.native_caller, str) and row.native_caller else None
    frame = str(row.frame)
    label = f"{caller} <- {frame.split(' (')[0]}" if caller and caller not in frame else frame
    return label if len(label) <= 70 else label[:67] + "..."


def profiler_overhead(overhead: pd.DataFrame, out: Path) -> None:
    """CPU cost of one unit of work under each profiler, relative to plain (log scale)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if overhead.empty:
        _say(ax, "no profiled runs")
    else:
        data = overhead.dropna(subset=["cpu_per_unit_ratio"])
        sns.barplot(data=data, y="profiler", x="cpu_per_unit_ratio", hue="experiment", ax=ax, errorbar=None)
        ax.set_xscale("log")
        ax.axvline(1, color="black", linewidth=0.6)
        ax.set(xlabel="CPU per unit of work / plain (x, log scale)", ylabel="")
        ax.set_title("Profiler overhead (per unit, normalised by scale)")
    _save(fig, out)


def verdict_matrix(growth: pd.DataFrame, out: Path, profiler: str = "plain") -> None:
    """Experiment-variant x metric, coloured by verdict, growth per unit written in."""
    if growth.empty or "verdict" not in growth:
        return _nothing(out, "no verdicts: no plain run could be read")
    data = growth[(growth["profiler"] == profiler) & growth["verdict"].notna()].copy()
    if data.empty:
        return _nothing(out, f"no verdicts from {profiler} runs")
    data["row"] = data["experiment"] + " / " + data["variant"]
    rows, cols = sorted(set(data["row"])), sorted(set(data["metric"]))
    codes = {v: i for i, v in enumerate(VERDICT_COLOURS)}
    grid = pd.DataFrame(float("nan"), index=rows, columns=cols)
    text = pd.DataFrame("", index=rows, columns=cols)
    for r in data.itertuples():
        grid.loc[r.row, r.metric] = codes.get(r.verdict, float("nan"))
        value, _ = _scaled(r.metric, pd.Series([r.growth_per_unit]))
        text.loc[r.row, r.metric] = f"{r.verdict}\n{value.iloc[0]:.3g}"
    fig, ax = plt.subplots(figsize=(1.6 * len(cols) + 3, 0.42 * len(rows) + 1.5))
    cmap = matplotlib.colors.ListedColormap(list(VERDICT_COLOURS.values()))
    ax.imshow(grid.to_numpy(dtype=float), cmap=cmap, vmin=-0.5, vmax=len(codes) - 0.5, aspect="auto")
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            ax.text(j, i, text.loc[row, col], ha="center", va="center", fontsize=6.5, color="white")
    ax.set_xticks(range(len(cols)), [c.removesuffix("_bytes") + (" (MiB)" if c.endswith("_bytes") else "")
                                     for c in cols], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title("Verdicts (growth per unit in each cell)")
    _save(fig, out)


def attribution_bars(attribution: pd.DataFrame, out: Path) -> None:
    """Per experiment, each variant's growth (or retention) per unit stacked by layer."""
    from leaklab.attribution import HEAP_LAYERS, RESIDUAL

    layers = [*HEAP_LAYERS, RESIDUAL]
    if attribution.empty:
        return _nothing(out, "nothing to attribute: no plain run could be read")
    data = attribution[attribution["layer"].isin(layers)].copy()
    names = sorted(set(data["experiment"]))
    fig, axes = plt.subplots(len(names) or 1, 2, figsize=(12, 2.6 * max(1, len(names))), squeeze=False)
    palette = dict(zip(layers, sns.color_palette("Set2", len(layers))))
    for (ax_growth, ax_kept), name in zip(axes, names):
        part = data[data["experiment"] == name]
        for ax, column, title in ((ax_growth, "growth_per_unit", "growth"), (ax_kept, "retained", "retained")):
            table = part.pivot_table(index="variant", columns="layer", values=f"stacked_{column}", aggfunc="first")
            table = table.reindex(columns=[c for c in layers if c in table.columns]) / MIB
            if not table.notna().any().any():
                ax.axis("off")  # nothing released, so nothing to call retained
                continue
            table.plot.barh(stacked=True, ax=ax, color=[palette[c] for c in table.columns], legend=False)
            ax.axvline(0, color="black", linewidth=0.6)
            unit = part["unit"].iloc[0]
            ax.set(title=f"{name}: {title}", xlabel=f"MiB per {unit}" if column == "growth_per_unit" else "MiB",
                   ylabel="")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette[c]) for c in layers]
    fig.legend(handles, layers, loc="lower center", ncol=4, frameon=False)
    fig.suptitle("Where the memory lives (kernel fds and slab are outside RSS: see the attribution table)")
    _save(fig, out, rect=(0, 0.05, 1, 1))


def version_sweep(sweep: pd.DataFrame, out: Path, metric: str = "rss_bytes") -> None:
    """Growth per unit by library version, one panel per variant, coloured by verdict."""
    from leaklab.sweep import version_key

    data = sweep[sweep["metric"] == metric].copy() if not sweep.empty else sweep
    variants = sorted(set(data["variant"])) if not data.empty else []
    fig, axes = plt.subplots(1, max(1, len(variants)), figsize=(6 * max(1, len(variants)), 4), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        part = data[data["variant"] == variant].copy()
        part = part.iloc[sorted(range(len(part)), key=lambda i: version_key(str(part["version"].iloc[i])))]
        x = range(len(part))
        values, label = _scaled(metric, part["growth_per_unit"])
        low, _ = _scaled(metric, part["ci_low"])
        high, _ = _scaled(metric, part["ci_high"])
        ax.errorbar(x, values, yerr=[(values - low).clip(lower=0).fillna(0), (high - values).clip(lower=0).fillna(0)],
                    fmt="none", ecolor="#555", capsize=3)
        ax.scatter(x, values, c=[VERDICT_COLOURS.get(v, "#333") for v in part["verdict"]], s=50, zorder=3)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(list(x), part["version"].astype(str), rotation=45)
        ax.set(title=f"{variant}", xlabel=f"{part['package'].iloc[0]} version",
               ylabel=f"{label} per {part['unit'].iloc[0]}")
    if not variants:
        _say(axes[0][0], "no sweep results")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c) for c in VERDICT_COLOURS.values()]
    fig.legend(handles, VERDICT_COLOURS.keys(), loc="lower center", ncol=4, frameon=False)
    fig.suptitle("Version sweep: growth per unit by version (95% interval)")
    _save(fig, out, rect=(0, 0.06, 1, 1))


def time_to_verdict(table: pd.DataFrame, out: Path) -> None:
    """Seconds each experiment and variant needed for its verdict (the slowest run and
    deciding metric), against what its runs recorded; hatched: the length that would
    decide a run that was not decided."""
    from leaklab.sequential import by_variant

    if table.empty:
        _nothing(out, "no plain runs to replay")
        return
    data = by_variant(table)
    labels = data["experiment"] + " / " + data["variant"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(data) + 1.5))
    ax.barh(labels, data["recorded_seconds"], color="#dddddd", label="recorded run")
    ax.barh(labels, data["seconds"], height=0.5, color=[VERDICT_COLOURS.get(v, "#333") for v in data["verdict"]],
            hatch=["" if d else "//" for d in data["decided"]], label="to the decision")
    for y, row in enumerate(data.itertuples()):
        if row.decided:
            text = f"{row.units:.0f} x {row.unit}"
        elif row.units == row.units and row.units < float("inf"):
            text = f"undecided; about {row.units:.0f} x {row.unit} would decide"
        else:
            text = "undecided"
        end = max(row.recorded_seconds, row.seconds if row.seconds == row.seconds else 0)
        ax.text(end, y, f" {text}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.35)
    ax.set(xlabel="seconds of run time", title="Time to verdict (each look at 1 - 0.05/K)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    _save(fig, out)
