"""What each experiment can detect: leaks planted into its own baseline's recorded series.

The ``planted`` controls prove the detector on one experiment's noise and length.  A
leak in another experiment is judged against that experiment's noise, threshold and
length, so its sensitivity is measured there: RSS and the key metrics of the baseline
variant's plain runs, as recorded, gets a linear leak added at rates on a ladder around
its ``leak_per_unit`` (``LADDER`` x threshold), and each is judged by the same rule
as real data.  ``detected_at_threshold`` says whether a leak at the threshold is
caught; ``smallest_detected`` is the smallest rate on the ladder from which every
larger one is called a leak, in the experiment's own units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from leaklab.model import verdicts
from leaklab.model.settings import ExperimentSettings, deciding_metrics

LADDER = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
COLUMNS = ["experiment", "metric", "unit", "baseline", "leak_per_unit", "n_replicates", "n_units",
           "smallest_detected", "detected_at_threshold", "baseline_verdict", "verdicts_on_ladder"]


def _series(units: pd.DataFrame, experiment: str, variant: str, metric: str, warmup: int) -> list:
    rows = units[(units["experiment"] == experiment) & (units["variant"] == variant)
                 & (units["profiler"] == "plain") & (units["metric"] == metric)]
    out = []
    for _, run in verdicts.clean_units(rows).groupby("replicate"):
        x, y = verdicts.post_warmup(run, warmup)
        if x.size:
            out.append((x, y))
    return out


def ladder(series: list, leak_per_unit: float, metric: str, unit: str) -> list[tuple[float, str]]:
    """(planted rate, verdict) for each rate on the ladder, planted into ``series``."""
    results = []
    for factor in LADDER:
        rate = factor * leak_per_unit
        planted = [(x, y + rate * (x - x[0])) for x, y in series]
        results.append((rate, verdicts.judge(planted, leak_per_unit=leak_per_unit, metric=metric, unit=unit,
                                             n_boot=500).verdict))
    return results


def smallest_detected(results: list[tuple[float, str]]) -> float:
    """The smallest rate from which every larger planted rate is called a leak."""
    found = math.nan
    for rate, verdict in reversed(results):
        if verdict != "leak":
            break
        found = rate
    return found


def table(units: pd.DataFrame, resolved: Mapping[str, ExperimentSettings]) -> pd.DataFrame:
    rows = []
    if units.empty:
        return pd.DataFrame(columns=COLUMNS)
    for name, s in resolved.items():
        if name == "planted":  # its own controls say it
            continue
        for metric in [m for m in deciding_metrics(s) if m == "rss_bytes" or m in s.key_metrics]:
            series = _series(units, name, s.baseline, metric, s.warmup_units)
            if not series:
                continue
            limit = s.thresholds[metric].leak_per_unit
            results = ladder(series, limit, metric, s.unit)
            base = verdicts.judge(series, leak_per_unit=limit, metric=metric, unit=s.unit, n_boot=500).verdict
            rows.append({
                "experiment": name, "metric": metric, "unit": s.unit, "baseline": s.baseline,
                "leak_per_unit": limit, "n_replicates": len(series),
                "n_units": int(np.median([x.size for x, _ in series])),
                "smallest_detected": smallest_detected(results),
                "detected_at_threshold": dict(results)[limit] == "leak", "baseline_verdict": base,
                "verdicts_on_ladder": "; ".join(f"{r / limit:g}x: {v}" for r, v in results),
            })
    return pd.DataFrame(rows, columns=COLUMNS)
