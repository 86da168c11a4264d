"""The version sweep's figure: growth per unit by library version, on the scale of the
bar each verdict was judged by (``leaklab.report.plots``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from leaklab.report.figstyle import (THRESHOLD_STYLE, figure, nothing, quantity, save, short, style, verdict_colour,
                                     verdict_handles)
from leaklab.report.plots import SYMLOG, decision_bar, symlog_limits


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
            ax.set_ylim(*symlog_limits(data["ci_low"] / bars, data["ci_high"] / bars))
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
