"""One look for every figure: the verdict palette, sizes for A4 half width, PNG + SVG.

A figure goes into a report page or a paper column, so it is drawn at the size it is
printed at (``WIDTH``: half an A4 page, 105 mm) with fonts of 7-8 pt, and saved twice:
PNG for the HTML report, SVG beside it (same name) for publication.  A verdict has the
same colour in every figure (Okabe-Ito colours, told apart by colour-blind readers);
variants, which are not verdicts, get colours from a separate set that avoids them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from leaklab import experiments
from leaklab.model.amounts import MIB, plain_number

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
        return f"{plain_number(number / div, spec)} {name}"
    return plain_number(number, spec)


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
    return f"[{plain_number(low / div, '.4g')}, {plain_number(high / div, '.4g')}]" + (f" {name}" if name else "")


def verdict_colour(verdict) -> str:
    return VERDICT_COLOURS.get(verdict, UNKNOWN_COLOUR) if isinstance(verdict, str) else UNKNOWN_COLOUR


def variant_colours(variants: list[str]) -> dict[str, str]:
    return {v: VARIANT_COLOURS[i % len(VARIANT_COLOURS)] for i, v in enumerate(variants)}


@contextmanager
def style():
    """The shared rc settings, for drawing one figure."""
    with plt.rc_context(RC):
        yield


def figure(height: float, width: float = WIDTH):
    """A new figure at print size with constrained layout (labels never overlap)."""
    return plt.figure(figsize=(width, height), layout="constrained")


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


def axis_unit(metric: str, values) -> tuple[float, str]:
    """The unit one axis of ``metric`` is drawn in, chosen from the values it shows (a
    panel of KiB is drawn in KiB, not as 0.06 MiB): its size and name (``""`` for counts)."""
    if not metric.endswith("_bytes"):
        return 1.0, ""
    finite = pd.Series(values, dtype=float).replace([math.inf, -math.inf], math.nan).abs().dropna()
    return _byte_unit(float(finite.max()) if len(finite) else 0.0) if len(finite) else (MIB, "MiB")


def scaled(metric: str, values: pd.Series, what: str | None = None) -> tuple[pd.Series, str]:
    """Values in the unit that fits them (``axis_unit``); the label names the metric (or
    ``what``) and the unit, one unit per axis."""
    div, name = axis_unit(metric, values)
    label = what or short(metric)
    return values / div, f"{label} ({name})" if name else label


def from_zero(ax, axis: str = "y") -> None:
    """Stretch an axis of amounts to include zero (from exactly zero when every value is
    positive), so a 0.2 % change on a 3 MiB level is not drawn as a climb across the
    whole panel (no truncated axis)."""
    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    data_low = ax.dataLim.y0 if axis == "y" else ax.dataLim.x0
    limits = (0.0 if data_low >= 0 else min(low, 0.0), max(high, 0.0))
    (ax.set_ylim if axis == "y" else ax.set_xlim)(*limits)


def _texts_of(owner) -> list:
    """The texts a figure, subfigure or axes draws by itself, legends' included."""
    texts = list(owner.texts)
    for legend in getattr(owner, "legends", []) + ([owner.get_legend()] if hasattr(owner, "get_legend") else []):
        if legend is not None and legend.get_visible():
            texts += [*legend.get_texts(), legend.get_title()]
    return texts


def texts_outside(fig) -> list[str]:
    """Every drawn text of ``fig`` that reaches outside its canvas (clipped in the PNG):
    titles, annotations, legends, and each axis's tick and axis labels.  Empty when the
    figure fits its frame."""
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)  # closed: no canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    frame = fig.bbox

    def outside(box) -> bool:
        return box is not None and box.width > 0 and (box.x0 < frame.x0 - 1 or box.y0 < frame.y0 - 1
                                                     or box.x1 > frame.x1 + 1 or box.y1 > frame.y1 + 1)
    found = []
    owners = [fig, *fig.subfigs]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        owners.append(ax)
        if ax.axison:
            for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                if axis.get_visible() and outside(axis.get_tightbbox(renderer)):
                    found.append(f"{name} axis of {ax.get_title() or ax.get_ylabel() or 'a panel'}")
        found += [t.get_text() for t in (ax.title, ax._left_title, ax._right_title)
                  if t.get_text().strip() and outside(t.get_window_extent(renderer))]
    for owner in owners:
        found += [t.get_text() for t in _texts_of(owner)
                  if t.get_visible() and t.get_text().strip() and outside(t.get_window_extent(renderer))]
    return found


def short(metric: str) -> str:
    """A metric's name on a figure: RSS, malloc_in_use, deleted_fds."""
    return "RSS" if metric == "rss_bytes" else metric.removesuffix("_bytes")


def verdict_handles() -> tuple[list, list[str]]:
    """Legend entries for the whole verdict palette, so every figure's legend reads alike."""
    return [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS.values()], list(VERDICT_COLOURS)


def experiment_order(specs: Mapping[str, experiments.Spec], present) -> list[str]:
    """Experiments in the order of ``specs`` (``experiments.specs``: the built-ins, then
    the configuration's own), unknown ones last."""
    present = set(present)
    return [n for n in specs if n in present] + sorted(present - set(specs))


def variant_order(specs: Mapping[str, experiments.Spec], experiment: str, present) -> list[str]:
    """Variants in the experiment's order (baseline first), unknown ones last (an
    experiment ``specs`` does not know, from old tables: all sorted)."""
    spec, present = specs.get(experiment), set(present)
    known = [v for v in spec.variants if v in present] if spec else []
    return known + sorted(present - set(known))
