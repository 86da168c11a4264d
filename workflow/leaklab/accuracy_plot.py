"""The accuracy benchmark's figure: which verdict each class of known truth got."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leaklab import figstyle, verdicts


def confusion(cases: pd.DataFrame, real: pd.DataFrame, out: Path) -> None:
    """Rows: synthetic classes (share of data sets given each verdict) and real programs."""
    labels = list(verdicts.VERDICTS)
    synthetic = cases.groupby(["case", "truth"])[labels].sum()
    shares = synthetic.div(synthetic.sum(axis=1), axis=0)
    rows = [f"{case} (truth: {truth})" for case, truth in shares.index]
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
