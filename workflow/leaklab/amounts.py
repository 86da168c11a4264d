"""How an amount of a metric is written in verdict reasons, regression notes and the
summary: bytes in the binary unit that fits them (750 B, 4.8 KiB, 31.3 MiB), counts
(fds, objects, units) as they are."""

from __future__ import annotations

import math

MIB = 2**20
BYTE_UNITS = (("GiB", 2**30), ("MiB", MIB), ("KiB", 2**10))


def byte_unit(magnitude: float) -> tuple[str, float]:
    """The unit a number of bytes of this size is written in, and its size."""
    for name, size in BYTE_UNITS:
        if abs(magnitude) >= size:
            return name, size
    return "B", 1.0


def amount(value, metric: str, spec: str = ".3g", count_spec: str | None = None) -> str:
    """``value`` of ``metric`` as text, ``n/a`` when there is no number to show."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(number):
        return "n/a"
    if metric.endswith("_bytes"):
        name, size = byte_unit(number)
        return f"{number / size:{spec}} {name}"
    return f"{number:{count_spec or spec}}"
