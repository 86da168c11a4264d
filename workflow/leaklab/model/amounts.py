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


def plural(unit: str) -> str:
    """The plural of a unit of work: passes, cycles, entries, seconds (never "passs")."""
    if unit.endswith(("s", "x", "z", "ch", "sh")):
        return unit + "es"
    if len(unit) > 1 and unit.endswith("y") and unit[-2] not in "aeiou":
        return unit[:-1] + "ies"
    return unit + "s"


def counted(number, unit: str) -> str:
    """``1 pass``, ``8 passes``, ``2.5 cycles``: a number of units in words that agree."""
    text = plain_number(number, ".4g")
    return f"{text} {unit if text in ('1', '+1', '-1') else plural(unit)}"


def plain_number(number: float, spec: str = ".3g") -> str:
    """``number`` to the significant digits of ``spec`` without scientific notation
    (``-1020``, not ``-1.02e+03``): a reader compares amounts, not exponents."""
    text = f"{number:{spec}}"
    if "e" not in text or not math.isfinite(number):
        return text
    digits = int(spec.rstrip("g").lstrip("+-")[1:] or 6) if "." in spec else 6
    rounded = float(f"{number:.{digits}g}")
    sign = "+" if "+" in spec and rounded >= 0 else ""
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded)))) if rounded else 0
    return f"{sign}{rounded:.{decimals}f}"


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
        return f"{plain_number(number / size, spec)} {name}"
    return plain_number(number, count_spec or spec)
