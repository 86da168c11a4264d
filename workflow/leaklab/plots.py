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

MIB = 2**20
VERDICT_COLOURS = {"leak": "#d62728", "retention": "#ff7f0e", "stable": "#2ca02c", "inconclusive": "#7f7f7f"}


def _scaled(metric: str, values: pd.Series) -> tuple[pd.Series, str]:
    if metric.endswith("_bytes"):
        return values / MIB, f"{metric.removesuffix('_bytes')} (MiB)"
    return values, metric


def _replicate_lines(ax, frame: pd.DataFrame, x: str, y: str, order: list[str]) -> None:
    sns.lineplot(data=frame, x=x, y=y, hue="variant", hue_order=order, units="replicate",
                 estimator=None, linewidth=0.9, alpha=0.8, ax=ax)


def timeline(samples: pd.DataFrame, units: pd.DataFrame, experiment: str, out: Path) -> None:
    """RSS over time, then each metric that matters for the experiment over its units."""
    spec = experiments.get(experiment)
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
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def growth_overview(growth: pd.DataFrame, out: Path, profiler: str = "plain") -> None:
    """Growth per unit of RSS and of each experiment's key metric, coloured by verdict."""
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
    fig.suptitle("Growth per unit of work after warm-up (median of replicates)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out, dpi=120)
    plt.close(fig)
