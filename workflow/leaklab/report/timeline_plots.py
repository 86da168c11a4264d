"""The figures over run time: memory over a run (every sample, and each key metric per
unit), and the time each variant's verdict took (``leaklab.model.sequential``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from leaklab.experiments import Spec
from leaklab.model.amounts import counted
from leaklab.report.figstyle import (WIDTH, as_float, figure, from_zero, nothing, save, say, scaled, short, style,
                                     variant_colours, variant_order, verdict_colour, verdict_handles)


def timeline(samples: pd.DataFrame, units: pd.DataFrame, experiment: str, out, profiler: str = "plain", *,
             specs: Mapping[str, Spec]):
    """RSS over time (every sample, from zero), then each of the experiment's key
    metrics over its units as the change since the run's first unit (a system-wide
    level such as slab differs by megabytes between runs; what a run added is the
    story), by variant, replicates as thin lines (seaborn ``lineplot``, one line per
    replicate; ``plain`` runs only: under a profiler RSS includes the profiler's own
    memory)."""
    if samples.empty:
        return nothing(out, "no data: every run failed, or none ran")
    spec = specs.get(experiment)
    samples = samples[(samples["profiler"] == profiler) & (samples["experiment"] == experiment)]
    units = units[(units["profiler"] == profiler) & (units["experiment"] == experiment)] \
        if not units.empty else units
    key_metrics = [m for m in (spec.key_metrics if spec else ()) if not units.empty and m in set(units["metric"])]
    variants = variant_order(specs, experiment, samples["variant"] if not samples.empty else [])
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
