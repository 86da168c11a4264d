"""Each variant against its experiment's baseline: the difference of their growth per
unit with its interval, and a rank test of the replicate slopes (``comparisons``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import PermutationMethod, mannwhitneyu

from leaklab.model.intervals import mover_difference
from leaklab.model.verdicts import GROUP_KEYS, replicate_slopes

COMPARISON_COLUMNS = ["experiment", "variant", "baseline", "profiler", "metric", "unit",
                      "growth_per_unit", "ci_low", "ci_high", "baseline_growth_per_unit",
                      "baseline_ci_low", "baseline_ci_high", "difference", "diff_ci_low", "diff_ci_high",
                      "diff_ci_method", "ratio", "rank_test_p", "n_replicates", "baseline_n_replicates",
                      "verdict", "baseline_verdict"]


def rank_test(slopes: Sequence[float], baseline_slopes: Sequence[float]) -> float:
    """Two-sided Mann–Whitney p-value of the replicate slopes against the baseline's.

    NaN with fewer than 2 slopes on a side.  With few replicates the p-value comes from
    all permutations, ties included (scipy's default switches to the normal
    approximation on ties, which with 2 vs 2 gives p = 0.19 where the exact floor is
    1/3).  That floor is the point: 2 vs 2 replicates cannot go below p = 1/3, 3 vs 3
    below 0.1, 4 vs 4 below 0.029.
    """
    a = np.asarray([s for s in slopes if not math.isnan(s)], dtype=float)
    b = np.asarray([s for s in baseline_slopes if not math.isnan(s)], dtype=float)
    if a.size < 2 or b.size < 2:
        return math.nan
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    method = PermutationMethod(n_resamples=np.inf) if math.comb(a.size + b.size, a.size) <= 20_000 else "auto"
    return float(mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)


def compare_to_baseline(units_or_per_run: pd.DataFrame, pooled: pd.DataFrame,
                        baselines: Mapping[str, str]) -> pd.DataFrame:
    """Each variant against its experiment's baseline, per profiler and metric.

    ``units_or_per_run`` is either the ``units`` table (replicate slopes are then fitted
    with the warm-ups recorded in ``pooled``) or ``replicate_slopes``' output; it feeds
    the rank test.  The difference's interval (``diff_ci_method`` ``mover``) combines the
    two pooled intervals rather than resampling 2-3 replicates per side, whose
    percentile interval cannot be wider than the spread of the slopes; with 3 or more
    replicates the pooled intervals already include the bootstrap over replicates.
    The baseline's own row is left out (a variant against itself says nothing).
    """
    if pooled.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    per_run = units_or_per_run
    if "slope" not in per_run.columns:
        warmups = pooled.groupby("experiment")["warmup_units"].first().astype(int).to_dict()
        per_run = replicate_slopes(units_or_per_run, warmups)
    slopes = {key: frame["slope"].to_list() for key, frame in per_run.groupby(GROUP_KEYS)}
    rows = []
    for (experiment, profiler, metric), group in pooled.groupby(["experiment", "profiler", "metric"], sort=True):
        baseline = baselines.get(experiment)
        base = group[group["variant"] == baseline]
        if base.empty:
            continue
        b = base.iloc[0]
        base_slopes = slopes.get((experiment, baseline, profiler, metric), [])
        for row in group[group["variant"] != baseline].itertuples():
            g, gb = float(row.growth_per_unit), float(b["growth_per_unit"])
            low, high = mover_difference(g, row.ci_low, row.ci_high, gb, b["ci_low"], b["ci_high"])
            rows.append({
                "experiment": experiment, "variant": row.variant, "baseline": baseline,
                "profiler": profiler, "metric": metric, "unit": row.unit,
                "growth_per_unit": g, "ci_low": row.ci_low, "ci_high": row.ci_high,
                "baseline_growth_per_unit": gb, "baseline_ci_low": b["ci_low"], "baseline_ci_high": b["ci_high"],
                "difference": g - gb, "diff_ci_low": low, "diff_ci_high": high, "diff_ci_method": "mover",
                "ratio": g / gb if gb != 0 and not math.isnan(gb) else math.nan,
                "rank_test_p": rank_test(slopes.get((experiment, row.variant, profiler, metric), []), base_slopes),
                "n_replicates": row.n_replicates, "baseline_n_replicates": int(b["n_replicates"]),
                "verdict": row.verdict, "baseline_verdict": b["verdict"],
            })
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
