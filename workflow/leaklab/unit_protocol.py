"""Unit marks for programs in any language: one line per finished unit of work.

A command experiment's program learns a file path from ``LEAKLAB_UNITS`` and appends
one line when it finishes each unit of work::

    <unit number> [name=value ...]

for example ``7`` or ``7 cache_entries=1200 queue_bytes=65536``.  Append and flush
each line (``fprintf`` + ``fflush`` in C, ``echo 7 >> "$LEAKLAB_UNITS"`` in shell).
The runner reads the file as it samples, stamps each line with the time it saw it
(within one sampling interval) and turns it into a mark; the outside metrics at that
mark come from the sampler.  With ``unit_source: seconds`` no line is needed: the
runner marks every whole second itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

UNITS_ENV = "LEAKLAB_UNITS"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parse_line(line: str) -> dict | None:
    """``{"unit": n, **metrics}`` from one protocol line; None if it is not one."""
    parts = line.split()
    if not parts:
        return None
    try:
        record: dict = {"unit": int(parts[0])}
        for pair in parts[1:]:
            name, value = pair.split("=", 1)
            record[name] = float(value)
    except ValueError:
        return None
    return record


class ProtocolMarks:
    """Turns a program's unit lines (or the clock) into marks in ``marks.jsonl``."""

    def __init__(self, source: str, units_path: Path, marks_path: Path):
        self.source, self.units_path, self.marks_path = source, Path(units_path), Path(marks_path)
        self.offset = 0
        self.started = False
        self.next_second = 1
        self.bad_lines = 0

    def _write(self, record: dict) -> None:
        with open(self.marks_path, "a") as out:
            out.write(json.dumps(record) + "\n")

    def poll(self, t: float, pid: int) -> None:
        cpu = cpu_seconds(pid)
        if not self.started:
            self._write({"t": t, "unit": 0, "phase": "start", "cpu_s": cpu})
            self.started = True
        if self.source == "seconds":
            while t >= self.next_second:
                self._write({"t": t, "unit": self.next_second, "phase": "unit", "cpu_s": cpu})
                self.next_second += 1
            return
        try:
            with open(self.units_path) as feed:
                feed.seek(self.offset)
                chunk = feed.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            record = parse_line(line)
            if record is None:
                self.bad_lines += line.strip() != ""
                continue
            self._write({"t": t, "phase": "unit", "cpu_s": cpu, **record})
