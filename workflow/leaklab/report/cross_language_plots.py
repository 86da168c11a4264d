"""The same mechanism in each language, drawn: the metric that measures it and RSS
beside it, each panel in the unit its values need."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leaklab.report.figstyle import (axis_unit, figure, nothing, panel_title, quantity, save, short, style,
                                     verdict_colour, verdict_handles)


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
