"""Interactive Vega-Lite charts for the report: the figures a reader explores rather than reads.

The static figures answer the question (does it leak?); these let a reader check the
answer against the data: every run's series, one line per run, with its values on
hover, pan and zoom, and a run picked out from the legend.  Written with Altair, which
emits Vega-Lite specifications; ``leaklab.report.report_page`` embeds them in the offline page
with the Vega libraries inlined.  Series are thinned for the browser (``thin``); the
tables keep every point.
"""

from __future__ import annotations

import json

import altair as alt
import pandas as pd

from leaklab.model.amounts import MIB

MAX_POINTS = 400  # per run and series: enough for the eye, small enough for the page
WIDTH = 760
TOP_SITES = 8


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Bytes in MiB, counts as they are, each metric labelled with its unit."""
    is_bytes = frame["metric"].str.endswith("_bytes")
    value = frame["value"].astype(float)
    return frame.assign(shown=value.where(~is_bytes, value / MIB),
                        series=frame["metric"].where(~is_bytes, frame["metric"] + " (MiB)"))


def _run_label(frame: pd.DataFrame) -> pd.Series:
    return frame["variant"] + " rep" + frame["replicate"].astype(int).astype(str)


def thin(frame: pd.DataFrame, by: list[str], x: str, y: str, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """At most ``max_points`` rows per group: the largest ``y`` in each of that many equal
    slices of ``x`` (a peak or a step survives thinning; the first and last rows too)."""
    parts = []
    for _, group in frame.groupby(by, sort=False):
        group = group.sort_values(x)
        if len(group) > max_points:
            slices = pd.cut(group[x], bins=max_points, labels=False, include_lowest=True)
            peaks = group.loc[group.groupby(slices)[y].idxmax()]
            group = pd.concat([group.iloc[[0]], peaks, group.iloc[[-1]]]).drop_duplicates().sort_values(x)
        parts.append(group)
    return pd.concat(parts, ignore_index=True) if parts else frame


def _text(field: str, title: str | None = None) -> alt.Tooltip:
    """A text field in a tooltip.  The empty format makes Vega-Lite 6.4 read it from the
    hovered point (under a nearest-point selection it otherwise reads the Voronoi cell's
    own datum and shows ``undefined``)."""
    return alt.Tooltip(f"{field}:N", title=title or field, format="")


def _interactive_lines(data: pd.DataFrame, x: alt.X, y_title: str | None, tooltip: list) -> alt.LayerChart:
    """Lines per run with hover points: the legend picks runs out, the scales pan and zoom."""
    pick = alt.selection_point(fields=["run"], bind="legend")
    zoom = alt.selection_interval(bind="scales")
    base = alt.Chart(data).encode(
        x=x, y=alt.Y("shown:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", title="run", scale=alt.Scale(scheme="tableau20")),
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.12)),
    )
    hover = alt.selection_point(on="pointerover", nearest=True, empty=False, clear="pointerout")
    lines = base.mark_line(strokeWidth=1.5).add_params(pick, zoom)
    # the reading nearest the pointer, shown with its values
    points = base.mark_circle(size=60).encode(opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
                                              tooltip=tooltip).add_params(hover)
    return alt.layer(lines, points)


def units_chart(units: pd.DataFrame, experiment: str, unit: str) -> dict | None:
    """Every metric the verdicts read, per unit of work, one line per plain run; one
    panel per metric with its own axis."""
    mine = units[(units["experiment"] == experiment) & (units["profiler"] == "plain")]
    if mine.empty:
        return None
    data = _shown(mine).assign(run=lambda f: _run_label(f))[["run", "variant", "unit", "series", "shown"]]
    tooltip = [_text("run"), alt.Tooltip("unit:Q", title=unit), _text("series", "metric"),
               alt.Tooltip("shown:Q", title="value", format=",.4~f")]
    chart = _interactive_lines(data, alt.X("unit:Q", title=unit), None, tooltip).properties(width=WIDTH, height=150)
    return chart.facet(row=alt.Row("series:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left",
                                                                                labelFontWeight="bold"))) \
        .resolve_scale(y="independent").to_dict()


def samples_chart(samples: pd.DataFrame, experiment: str) -> dict | None:
    """RSS of every plain run against seconds since it started, thinned per run."""
    mine = samples[(samples["experiment"] == experiment) & (samples["profiler"] == "plain")]
    if mine.empty:
        return None
    data = mine.assign(run=_run_label(mine), shown=mine["rss_bytes"] / MIB)[["run", "variant", "t", "shown"]]
    data = thin(data, ["run"], "t", "shown")
    tooltip = [_text("run"), alt.Tooltip("t:Q", title="seconds", format=".2f"),
               alt.Tooltip("shown:Q", title="RSS (MiB)", format=",.2f")]
    chart = _interactive_lines(data, alt.X("t:Q", title="seconds since the run started"), "RSS (MiB)", tooltip)
    return chart.properties(width=WIDTH, height=260).to_dict()


def sites_chart(site_timeline: pd.DataFrame, experiment: str, top: int = TOP_SITES) -> dict | None:
    """Live bytes of the largest sites at each snapshot, stacked, one panel per profiled run.

    The sites are the ``top`` largest at any snapshot of the experiment; the rest of each
    snapshot's heap is ``other``, so a stack's height is the profile's heap."""
    mine = site_timeline[site_timeline["experiment"] == experiment]
    if mine.empty:
        return None
    largest = mine.groupby("site")["bytes"].max().nlargest(top).index
    snapshot = ["profiler", "variant", "replicate", "t"]
    named = mine[mine["site"].isin(largest)]
    rest = mine.groupby(snapshot, as_index=False)["heap_bytes"].first().merge(
        named.groupby(snapshot, as_index=False)["bytes"].sum(), how="left", on=snapshot).fillna({"bytes": 0})
    rest = rest.assign(site="other", bytes=(rest["heap_bytes"] - rest["bytes"]).clip(lower=0))
    data = pd.concat([named[[*snapshot, "site", "bytes"]], rest[[*snapshot, "site", "bytes"]]], ignore_index=True)
    data = data.assign(run=data["variant"] + " " + data["profiler"] + " rep" + data["replicate"].astype(int).astype(str),
                       mib=data["bytes"] / MIB)
    order = [*largest, "other"]
    pick = alt.selection_point(fields=["site"], bind="legend")
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    chart = alt.Chart(data).mark_area(interpolate="step-after").encode(
        x=alt.X("t:Q", title="seconds since the run started"),
        y=alt.Y("mib:Q", title="live heap (MiB)", stack="zero"),
        color=alt.Color("site:N", sort=order, scale=alt.Scale(scheme="tableau10"),
                        legend=alt.Legend(labelLimit=420, orient="bottom", columns=1)),
        order=alt.Order("site_rank:Q"),
        opacity=alt.condition(pick, alt.value(0.9), alt.value(0.15)),
        tooltip=[_text("run"), alt.Tooltip("t:Q", title="seconds", format=".2f"), _text("site"),
                 alt.Tooltip("mib:Q", title="MiB", format=",.3f")],
    ).transform_calculate(site_rank=f"indexof({json.dumps(order)}, datum.site)").add_params(pick, zoom)
    return chart.properties(width=WIDTH, height=180).facet(
        row=alt.Row("run:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")),
    ).resolve_scale(x="independent", y="independent").to_dict()
