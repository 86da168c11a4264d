"""One look for every figure: the verdict palette, sizes for A4 half width, PNG + SVG.

A figure goes into a report page or a paper column, so it is drawn at the size it is
printed at (``WIDTH``: half an A4 page, 105 mm) with fonts of 7-8 pt, and saved twice:
PNG for the HTML report, SVG beside it (same name) for publication.  A verdict has the
same colour in every figure (Okabe-Ito colours, told apart by colour-blind readers);
variants, which are not verdicts, get colours from a separate set that avoids them.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from leaklab import experiments  # noqa: E402
from leaklab.amounts import MIB  # noqa: E402

VERDICT_COLOURS = {
    "leak": "#D55E00",
    "settling": "#E69F00",
    "retention": "#CC79A7",
    "stable": "#009E73",
    "inconclusive": "#999999",
}
UNKNOWN_COLOUR = "#FFFFFF"  # no verdict at all (a metric nobody judged): an empty box
TEXT_ON = {"leak": "white", "stable": "white"}  # text colour inside a verdict cell; black otherwise
VARIANT_COLOURS = ("#0072B2", "#000000", "#56B4E9", "#8C564B", "#1F3A93", "#17BECF", "#6A3D9A", "#B15928")
THRESHOLD_STYLE = {"color": "black", "linestyle": "--", "linewidth": 0.9}
WARMUP_COLOUR = "#DDDDDD"
WIDTH = 4.13  # inches: A4 half width (105 mm)
DPI = 200
RC = {
    "font.size": 7.5, "axes.titlesize": 8, "axes.labelsize": 7.5, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 6.5, "legend.title_fontsize": 7, "figure.titlesize": 8.5, "axes.spines.top": False,
    "axes.spines.right": False, "axes.linewidth": 0.6, "lines.linewidth": 1.0, "svg.fonttype": "none",
}


BYTE_UNITS = ((2**30, "GiB"), (MIB, "MiB"), (1024, "KiB"), (1, "B"))


def as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _byte_unit(magnitude: float) -> tuple[float, str]:
    return next(((d, n) for d, n in BYTE_UNITS if magnitude >= d), (1, "B"))


def quantity(value, metric: str, sign: bool = False) -> str:
    """An amount as a reader takes it in: bytes in the unit that fits (B, KiB, MiB, GiB),
    counts as they are, 4 significant digits; ``n/a`` without a number."""
    number = as_float(value)
    if not math.isfinite(number):
        return "n/a"
    spec = "+.4g" if sign else ".4g"
    if metric.endswith("_bytes"):
        div, name = _byte_unit(abs(number))
        return f"{number / div:{spec}} {name}"
    return f"{number:{spec}}"


def rate_text(value, metric: str, unit: str) -> str:
    """``+31.98 MiB/pass``, ``+1/rotation``: a growth with its real unit."""
    text = quantity(value, metric, sign=True)
    return text if text == "n/a" else f"{text}/{unit}"


def interval_text(low, high, metric: str) -> str:
    """``[31.98, 31.99] MiB``: a 95 % interval, both ends in one unit."""
    low, high = as_float(low), as_float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no 95% interval"
    div, name = _byte_unit(max(abs(low), abs(high))) if metric.endswith("_bytes") else (1.0, "")
    return f"[{low / div:.4g}, {high / div:.4g}]" + (f" {name}" if name else "")


def verdict_colour(verdict) -> str:
    return VERDICT_COLOURS.get(verdict, UNKNOWN_COLOUR) if isinstance(verdict, str) else UNKNOWN_COLOUR


def variant_colours(variants: list[str]) -> dict[str, str]:
    return {v: VARIANT_COLOURS[i % len(VARIANT_COLOURS)] for i, v in enumerate(variants)}


@contextmanager
def style():
    """The shared rc settings, for drawing one figure."""
    with plt.rc_context(RC):
        yield


def figure(height: float):
    """A new figure at print size with constrained layout (labels never overlap)."""
    return plt.figure(figsize=(WIDTH, height), layout="constrained")


def save(fig, out) -> None:
    """Write ``out`` (PNG) and the SVG beside it, then free the figure.

    The figure object stays readable after this (tests look at what was drawn)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    fig.savefig(out.with_suffix(".svg"))
    plt.close(fig)


def panel_title(ax, text: str, **kwargs) -> None:
    """A panel's title from the figure's left edge (not the axes', which long tick labels
    push right), so it never runs off the page; found again by its gid ``title``."""
    ax.annotate(text, xy=(0, 1), xycoords=(ax.figure.transFigure, ax.transAxes), xytext=(3, 5),
                textcoords="offset points", ha="left", va="bottom", fontsize=RC["axes.titlesize"], gid="title",
                **kwargs)


def say(ax, message: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.axis("off")


def nothing(out, message: str):
    """A figure that says why it is empty, so the report and its links stay whole."""
    with style():
        fig = figure(1.2)
        say(fig.add_subplot(), message)
        save(fig, out)
    return fig


def scaled(metric: str, values: pd.Series) -> tuple[pd.Series, str]:
    """Byte metrics in MiB; the label names the metric and its unit."""
    if metric.endswith("_bytes"):
        return values / MIB, f"{short(metric)} (MiB)"
    return values, metric


def short(metric: str) -> str:
    """A metric's name on a figure: RSS, malloc_in_use, deleted_fds."""
    return "RSS" if metric == "rss_bytes" else metric.removesuffix("_bytes")


def verdict_handles() -> tuple[list, list[str]]:
    """Legend entries for the whole verdict palette, so every figure's legend reads alike."""
    return [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS.values()], list(VERDICT_COLOURS)


def spec_of(name: str):
    """The experiment's spec, or None for a name this project does not know (old tables)."""
    try:
        return experiments.get(name)
    except ValueError:
        return None


def experiment_order(present) -> list[str]:
    """Experiments in the project's order, unknown ones last."""
    present = set(present)
    return [n for n in experiments.names() if n in present] + sorted(present - set(experiments.names()))


def variant_order(experiment: str, present) -> list[str]:
    """Variants in the experiment's order (baseline first), unknown ones last."""
    spec, present = spec_of(experiment), set(present)
    known = [v for v in spec.variants if v in present] if spec else []
    return known + sorted(present - set(known))
