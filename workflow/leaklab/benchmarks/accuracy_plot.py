"""The accuracy benchmark's figure: which verdict each class of known truth got."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leaklab.model import verdicts
from leaklab.report import figstyle


TIER_NAMES = {"synthetic": "", "synthetic_confirmed": ", confirmed", "synthetic_stopped": ", stopped early"}


def confusion(cases: pd.DataFrame, real: pd.DataFrame, out: Path) -> None:
    """Rows: synthetic classes (share of data sets given each verdict), the classes the
    rule was set on first and the held-out ones after them, each in the window and after
    confirmation; then the real programs."""
    labels = list(verdicts.VERDICTS)
    order = {"tuning": 0, "held_out": 1, "held_out_new": 2}
    synthetic = cases.groupby(["set", "case", "truth", "tier"])[labels].sum()
    synthetic = synthetic.iloc[sorted(range(len(synthetic)), key=lambda i: (order.get(synthetic.index[i][0], 2),
                                                                          synthetic.index[i][1:]))]
    shares = synthetic.div(synthetic.sum(axis=1), axis=0)
    rows = [f"{'held out: ' if subset.startswith('held_out') else ''}{case}{TIER_NAMES.get(tier, tier)} (truth: {truth})"
            for subset, case, truth, tier in shares.index]
    grid = shares.to_numpy()
    real_rows = [f"real: {r.case} (truth: {r.truth})" for r in real.itertuples()]
    real_grid = [[1.0 if r.verdict == label else 0.0 for label in labels] for r in real.itertuples()]
    with figstyle.style():
        fig = figstyle.figure(0.2 * (len(rows) + len(real_rows)) + 1.2)
        _draw(fig.add_subplot(), pd.DataFrame([*grid, *real_grid], index=[*rows, *real_rows], columns=labels))
        figstyle.save(fig, out)


def _draw(ax, data: pd.DataFrame) -> None:
    """Shares as a heat map, each non-zero cell written in."""
    labels = list(data.columns)
    ax.imshow(data.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(data)), data.index, fontsize=6)
    for i, row in enumerate(data.to_numpy()):
        for j, value in enumerate(row):
            if value > 0:
                ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=5,
                        color="white" if value > 0.6 else "black")
    ax.set_xlabel("verdict given")
    ax.set_title("Verdicts on series and programs of known behaviour")
