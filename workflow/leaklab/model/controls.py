"""Known-leaky controls: did this pipeline run's detector find what was planted?

The ``planted`` experiment keeps known bytes per step.  Each control passes when its
RSS verdict is the expected one (``stable`` for ``zero``, ``retention`` for
``fragment``, ``settling`` or ``stable`` for the bounded ``cache``, ``settling`` for ``settle``,
``leak`` for the rest) and, for a planted rate, the measured growth per step is within
``TOLERANCE`` of it, by RSS and by the metric that decides the variant's verdict (the
one the tables name: it must tell the leak's size, not a part of it).  One failed control makes every verdict of
the run invalid (``growth.controls_passed``), visibly.  What each experiment can
detect at its own threshold and length is ``leaklab.model.sensitivity``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from leaklab.model import verdicts
from leaklab.experiments import planted
from leaklab.model.settings import ExperimentSettings

TOLERANCE = 0.25
METRIC = "rss_bytes"


# A cache reads ``settling`` while it fills inside the judged window and ``stable`` once
# it was full early in it (``cache_steps`` against the warm-up): both say "no leak".
# ``settle`` approaches its ceiling over the whole run: only ``settling`` is right.
BOUNDED = ("settling", "stable")


def allowed_verdicts(variant: str) -> tuple[str, ...]:
    """The verdicts that are right for a planted variant."""
    return {"zero": ("stable",), "fragment": ("retention",), "cache": BOUNDED,
            "settle": ("settling",)}.get(variant, ("leak",))


def expected_verdict(variant: str) -> str:
    return " or ".join(allowed_verdicts(variant))


def check(growth: pd.DataFrame, resolved: Mapping[str, ExperimentSettings]) -> pd.DataFrame:
    """One row per planted variant: planted and measured rate, verdict, passed."""
    entry = resolved.get("planted")
    if entry is None or growth.empty:
        return pd.DataFrame()
    params = {**planted.DEFAULTS, **entry.params}
    measured = growth[(growth["experiment"] == "planted") & (growth["profiler"] == "plain")
                      & (growth["metric"] == METRIC)].set_index("variant")
    deciding = verdicts.variant_verdicts(growth[growth["experiment"] == "planted"], resolved).set_index("variant")
    rows = []
    for variant in entry.variants:
        rate = planted.planted_rate(variant, params)
        row = measured.loc[variant] if variant in measured.index else None
        growth_per_unit = float(row["growth_per_unit"]) if row is not None else math.nan
        verdict = row["verdict"] if row is not None else "missing"
        expected = expected_verdict(variant)
        within = rate == 0 or abs(growth_per_unit / rate - 1) <= TOLERANCE
        decided = deciding.loc[variant] if variant in deciding.index else None
        decided_growth = float(decided["growth_per_unit"]) if decided is not None else math.nan
        # the metric that names the variant's verdict must tell the planted size too
        decided_within = rate == 0 or abs(decided_growth / rate - 1) <= TOLERANCE
        rows.append({
            "variant": variant, "metric": METRIC, "planted_bytes_per_step": rate,
            "growth_per_unit": growth_per_unit,
            "ci_low": float(row["ci_low"]) if row is not None else math.nan,
            "ci_high": float(row["ci_high"]) if row is not None else math.nan,
            "relative_error": growth_per_unit / rate - 1 if rate else math.nan,
            "verdict": verdict, "expected_verdict": expected, "tolerance": TOLERANCE,
            "deciding_metric": decided["metric"] if decided is not None else "missing",
            "deciding_growth_per_unit": decided_growth,
            "deciding_relative_error": decided_growth / rate - 1 if rate else math.nan,
            "passed": bool(verdict in allowed_verdicts(variant) and within and decided_within),
        })
    return pd.DataFrame(rows)


def all_passed(controls: pd.DataFrame) -> bool | None:
    """True or False; None when no controls ran (verdicts are then unchecked)."""
    return None if controls.empty else bool(controls["passed"].all())
