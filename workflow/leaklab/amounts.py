"""How an amount of a metric is written in verdict reasons, regression notes and the
summary: bytes in MiB, counts (fds, objects, units) as they are."""

from __future__ import annotations

import math

MIB = 2**20


def amount(value, metric: str, spec: str = ".3g", count_spec: str | None = None) -> str:
    """``value`` of ``metric`` as text, ``n/a`` when there is no number to show."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(number):
        return "n/a"
    if metric.endswith("_bytes"):
        return f"{number / MIB:{spec}} MiB"
    return f"{number:{count_spec or spec}}"
