"""``marks.jsonl`` read back: the inside view's lines, checked like unit lines.

The measured program writes its marks itself (``leaklab.experiments.marks``; a user's
program may too, ``LEAKLAB_MARKS`` is in its environment), so every line is untrusted
input: a bad one is counted and quoted, never trusted or fatal."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from leaklab.process import unit_protocol


def mark_record(line: bytes, reserved: frozenset[str] = unit_protocol.RESERVED_NAMES) -> dict:
    """One line of ``marks.jsonl`` checked like a unit line: the measured program can
    write there too (``LEAKLAB_MARKS`` is in its environment); a command program may not
    name the runner's readings (``reserved``)."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise unit_protocol.BadLine("not a JSON mark") from None
    if not isinstance(record, dict):
        raise unit_protocol.BadLine("not a JSON object")
    t, unit, phase = record.pop("t", None), record.pop("unit", None), record.pop("phase", None)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise unit_protocol.BadLine(f"time {t!r} is not a finite number")
    if not isinstance(phase, str) or not 0 < len(phase) <= 64:
        raise unit_protocol.BadLine(f"phase {phase!r} is not a short name")
    out = {"t": float(t), "unit": None if unit is None else unit_protocol.check_unit(unit), "phase": phase}
    for name, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[name] = None  # not measured (glibc's heap under jemalloc, say)
        elif name == "cpu_s":
            out[name] = unit_protocol.check_metric("process_cpu_s", value)
        else:
            out[name] = unit_protocol.check_metric(name, value, reserved)
    return out


def read_marks(path: Path, bad: unit_protocol.BadLines,
                parse: Callable[[bytes], dict] = mark_record) -> pd.DataFrame:
    """``marks.jsonl`` as a frame; bad lines are counted in ``bad``, a last line cut
    short by a kill is dropped."""
    rows = []
    if path.exists():
        lines = path.read_bytes().split(b"\n")[:-1]  # the last piece has no newline: cut short
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(parse(line))
            except unit_protocol.BadLine as err:
                bad.add(f"{path.name} line {number}", line, str(err))
    return marks_frame(rows)


def marks_frame(rows: list[dict]) -> pd.DataFrame:
    """Checked mark records as a frame that always has ``t``, ``unit`` and ``phase``."""
    frame = pd.DataFrame(rows)
    for column in ("t", "unit", "phase"):
        if column not in frame:
            frame[column] = pd.Series(dtype="float64" if column != "phase" else "object")
    frame["unit"] = frame["unit"].astype("Int64")
    return frame
