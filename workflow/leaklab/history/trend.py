"""The nightly trend: growth per unit across nights, as a table and a figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from leaklab.model.amounts import MIB
from leaklab.history import store
from leaklab import experiments
from leaklab.history.regressions import counting

NIGHT_COLUMNS = ["night_id", "seq", "date", "commit", "dirty", "hostname"]
GROWTH_COLUMNS = ["experiment", "variant", "profiler", "metric", "unit", "growth_per_unit", "ci_low", "ci_high",
                  "verdict"]
TREND_COLUMNS = [*NIGHT_COLUMNS, "night_label", *GROWTH_COLUMNS]


def _is_true(value) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def trend(history_path: str | Path, metric: str = "rss_bytes", profiler: str | None = "plain",
          hostname: str | None = None) -> pd.DataFrame:
    """Growth per unit of one metric, per night, oldest first: the data of the trend figure.

    ``profiler`` defaults to ``plain`` (the sampler's runs with every replicate; profiled
    runs are scaled and single); ``None`` keeps all.  ``night_label`` is the night's date
    and short commit (and host, when the history holds several), for the x axis.
    """
    return trend_frame(*store.load(history_path), metric, profiler, hostname)


def trend_frame(nights: pd.DataFrame, growth: pd.DataFrame, metric: str = "rss_bytes",
                profiler: str | None = "plain", hostname: str | None = None) -> pd.DataFrame:
    """:func:`trend` over the store's tables (``store.load``, tonight added by ``store.with_night``)."""
    if "metric" not in growth:
        return pd.DataFrame(columns=TREND_COLUMNS)
    rows = growth.reindex(columns=["night_id", *GROWTH_COLUMNS])
    rows = rows[rows["metric"] == metric]
    if profiler is not None:
        rows = rows[rows["profiler"] == profiler]
    keys = nights.reindex(columns=NIGHT_COLUMNS)
    if hostname is not None:
        keys = keys[keys["hostname"] == hostname]
    frame = keys.merge(rows, on="night_id")
    frame = frame.assign(_date=pd.to_datetime(frame["date"])).sort_values(
        ["_date", "seq", "experiment", "variant"], kind="stable").drop(columns="_date").reset_index(drop=True)
    several_hosts = frame["hostname"].nunique(dropna=False) > 1
    frame["night_label"] = [
        f"{pd.Timestamp(d):%Y-%m-%d}\n{str(c)[:7]}{'*' if _is_true(dirty) else ''}" + (f"\n{h}" if several_hosts else "")
        for d, c, dirty, h in zip(frame["date"], frame["commit"], frame["dirty"], frame["hostname"])
    ]
    for column in ("growth_per_unit", "ci_low", "ci_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame[TREND_COLUMNS]


def _variant_order(experiment: str, present: set) -> list[str]:
    """Variants in a built-in experiment's own order; an experiment no longer in the
    project (or a command experiment: nights may come from other configs) still has its
    history, sorted."""
    spec = experiments.builtin(experiment)
    known = list(spec.variants) if spec else []
    known = [v for v in known if v in present]
    return known + sorted(present - set(known))


def _experiment_order(present: set) -> list[str]:
    known = [n for n in experiments.NAMES if n in present]
    return known + sorted(present - set(known))


def plot_trend(trend_df: pd.DataFrame, out_png: str | Path, regressions_df: pd.DataFrame | None = None) -> None:
    """Growth per unit across nights: one panel per experiment, one line per variant.

    Error bars are each night's confidence interval, so a point that moved beyond the
    previous night's bar is visible as such; nights where a regression counts are ringed
    in red when ``regressions_df`` is given.  Byte metrics are drawn in MiB per unit of
    work; a dashed line marks zero growth.  An empty trend still gives a figure saying so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    data = trend_df.copy()
    if data.empty:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, "no nights in the history yet", ha="center", va="center")
        ax.axis("off")
        fig.savefig(out_png, dpi=120)
        plt.close(fig)
        return
    metric = str(data["metric"].iloc[0])
    scale, shown = (MIB, f"{metric.removesuffix('_bytes')} growth (MiB") if metric.endswith("_bytes") \
        else (1.0, f"{metric} growth (")
    data["_date"] = pd.to_datetime(data["date"])
    nights = data.drop_duplicates("night_id").sort_values(["_date", "seq"])
    position = {nid: i for i, nid in enumerate(nights["night_id"])}
    labels = list(nights["night_label"])
    names = _experiment_order(set(data["experiment"]))
    cols = min(2, len(names))
    rows = -(-len(names) // cols)
    width = max(6.0, min(16.0, 1.1 * len(labels) + 3))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 3.6 * rows), squeeze=False, sharex=True)
    flagged = set()
    if regressions_df is not None and len(regressions_df):
        hits = regressions_df[counting(regressions_df["counts"]) & (regressions_df["metric"] == metric)]
        flagged = set(zip(hits["night_id"], hits["experiment"], hits["variant"], hits["profiler"]))
    for ax, name in zip(axes.flat, names):
        part = data[data["experiment"] == name]
        variants = _variant_order(name, set(part["variant"]))
        colours = dict(zip(variants, sns.color_palette("tab10", len(variants))))
        width_dodge = 0.3 / max(1, len(variants))
        for i, variant in enumerate(variants):
            line = part[part["variant"] == variant].sort_values(["_date", "seq"])
            for profiler, one in line.groupby("profiler", sort=True):
                x = one["night_id"].map(position).to_numpy(dtype=float) + (i - (len(variants) - 1) / 2) * width_dodge
                y = one["growth_per_unit"].to_numpy(dtype=float) / scale
                low = (one["growth_per_unit"] - one["ci_low"]).clip(lower=0).to_numpy(dtype=float) / scale
                high = (one["ci_high"] - one["growth_per_unit"]).clip(lower=0).to_numpy(dtype=float) / scale
                low[np.isnan(low)] = 0.0
                high[np.isnan(high)] = 0.0
                label = variant if line["profiler"].nunique() == 1 else f"{variant} ({profiler})"
                ax.errorbar(x, y, yerr=[low, high], fmt="-o", markersize=4, capsize=3, linewidth=1.2,
                            color=colours[variant], label=label)
                ringed = [(xx, yy) for xx, yy, nid in zip(x, y, one["night_id"])
                          if (nid, name, variant, profiler) in flagged]
                if ringed:
                    ax.scatter(*zip(*ringed), s=140, facecolors="none", edgecolors="#d62728", linewidths=1.8,
                               zorder=5, label="regression")
        ax.axhline(0, color="black", linewidth=0.6, linestyle="--")
        unit = part["unit"].dropna().iloc[0] if part["unit"].notna().any() else "unit"
        ax.set(title=name, ylabel=f"{shown} per {unit})", xlabel="night (date, commit; * = uncommitted edits)")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        handles, names_ = ax.get_legend_handles_labels()
        unique = dict(zip(names_, handles))
        if "regression" in unique:  # after the variants, not before the first line drawn
            unique["regression"] = unique.pop("regression")
        ax.legend(unique.values(), unique.keys(), fontsize=8, title="variant", title_fontsize=8, loc="best")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes.flat:
        ax.tick_params(axis="x", labelbottom=True)
    profilers = ", ".join(sorted(set(data["profiler"].astype(str))))
    fig.suptitle(f"{metric}: growth per unit of work across nights ({profilers}); bars: 95 % interval")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
