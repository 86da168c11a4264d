"""Unit marks for programs in any language: one line per finished unit of work.

A command experiment's program learns a file path from ``LEAKLAB_UNITS`` and appends
one line when it finishes each unit of work::

    <unit number> [name=value ...]

for example ``7`` or ``7 cache_entries=1200 queue_bytes=65536``; an optional line for
unit ``0`` before the first unit gives the values at the start.  Append and flush
each line (``fprintf`` + ``fflush`` in C, ``echo 7 >> "$LEAKLAB_UNITS"`` in shell).
The runner reads the file as it samples, stamps each line with the time it saw it
(within one sampling interval) and turns it into a mark; the outside metrics at that
mark come from the sampler.  With ``unit_source: seconds`` no line is needed: the
runner marks every whole second itself.  A program that already prints its progress
needs no change either: with ``unit_pattern`` (source ``pattern``) each line of its
output that matches the regular expression ends one unit, and the pattern's named
groups become metrics; its other output is not a protocol line and counts as nothing.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

UNITS_ENV = "LEAKLAB_UNITS"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Names the tables give a meaning of their own: a program's metric must not replace them.
RESERVED_NAMES = frozenset({"t", "unit", "phase", "cpu_s", "final", "metric", "value",
                            "experiment", "variant", "profiler", "replicate"})
METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_UNIT = 10**9           # a billion units: more than any run reaches, small enough for int64
MAX_LINE_BYTES = 4096      # a longer "line" is garbage, not a unit line
MAX_READ_BYTES = 1 << 20   # read at most this much per poll: a flood cannot exhaust the runner
QUOTED_BAD_LINES = 5


class BadLine(ValueError):
    """A line a measured program wrote that is not a valid unit line (the message says why)."""


class BadLines:
    """Counts what a measured program wrote wrongly and keeps the first few, quoted,
    for ``meta.json`` and the summary: bad input is reported, never raised."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, where: str, raw: bytes | str, reason: str) -> None:
        self.count += 1
        if len(self.examples) < QUOTED_BAD_LINES:
            self.examples.append(f"{where}: {reason}: {raw[:80]!r}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def check_unit(value: object) -> int:
    """A unit number: a whole number from 0 to ``MAX_UNIT``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadLine(f"unit {value!r} is not a whole number")
    if not 0 <= value <= MAX_UNIT:
        raise BadLine(f"unit {value} is outside 0..{MAX_UNIT}")
    return value


def check_metric(name: str, value: object) -> float:
    """A metric a program reports: a plain name that is not one of the tables' own
    columns, and a finite number."""
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise BadLine(f"metric name {name!r} is not a plain name ([A-Za-z_][A-Za-z0-9_]*, up to 64)")
    if name in RESERVED_NAMES:
        raise BadLine(f"metric name {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadLine(f"{name}={value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > 2.0**63:
        raise BadLine(f"{name}={value!r} is not a finite number")
    return float(value)


def parse_line(line: str) -> dict:
    """``{"unit": n, **metrics}`` from one protocol line; raises BadLine saying why not."""
    parts = line.split()
    if not parts:
        raise BadLine("empty line")
    try:
        unit = int(parts[0])
    except ValueError:
        raise BadLine("the unit number is not a whole number") from None
    record: dict = {"unit": check_unit(unit)}
    for pair in parts[1:]:
        name, sep, value = pair.partition("=")
        if not sep:
            raise BadLine(f"{pair!r} is not name=value")
        if name in record:
            raise BadLine(f"metric {name!r} given twice")
        record[name] = check_metric(name, value)
    return record


def read_complete_lines(path, offset: int) -> tuple[list[bytes], int]:
    """The complete lines written to ``path`` since ``offset``, and the new offset: a
    line still being written waits for the next poll, unless it is already too long to
    be a unit line (then it is returned as one bad line).  Reads at most
    ``MAX_READ_BYTES`` per call, so a runaway writer cannot fill the runner's memory."""
    try:
        with open(path, "rb") as feed:
            feed.seek(offset)
            chunk = feed.read(MAX_READ_BYTES)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n") + 1
    if end == 0:
        if len(chunk) <= MAX_LINE_BYTES:
            return [], offset
        end = len(chunk)  # no newline in sight: the garbage is skipped as one bad line
    lines = chunk[:end].split(b"\n")
    return (lines[:-1] if chunk[:end].endswith(b"\n") else lines), offset + end


class ProtocolMarks:
    """Turns a program's unit lines (or the clock) into marks in ``marks.jsonl``.

    Everything the program writes is untrusted: a line that does not decode, does not
    parse, names a reserved metric, or whose unit is negative, too large or not after
    the previous one is counted in ``bad`` and skipped, never raised."""

    def __init__(self, source: str, units_path: Path, marks_path: Path, bad: BadLines | None = None,
                 pattern: str | None = None):
        self.source, self.units_path, self.marks_path = source, Path(units_path), Path(marks_path)
        self.pattern = re.compile(pattern) if pattern else None
        self.offset = 0
        self.line_number = 0
        self.last_unit = -1  # an optional unit 0 line: the program's values at the start
        self.started = False
        self.next_second = 1
        self.bad = bad or BadLines()

    def _write(self, record: dict) -> None:
        with open(self.marks_path, "a") as out:
            out.write(json.dumps(record) + "\n")

    def _read_complete_lines(self) -> list[bytes]:
        lines, self.offset = read_complete_lines(self.units_path, self.offset)
        return lines

    def _match(self, t: float, cpu: float | None, raw: bytes) -> None:
        """One line of the program's own output: the next unit when it matches the
        pattern, its named groups checked as metrics; any other line is just output."""
        match = self.pattern.search(raw[:MAX_LINE_BYTES].decode("utf-8", errors="replace"))
        if match is None:
            return
        try:
            record = {"unit": check_unit(max(self.last_unit, 0) + 1),  # a match ends unit 1 onwards
                      **{name: check_metric(name, value) for name, value in match.groupdict().items()
                         if value is not None}}
        except BadLine as bad:
            self.bad.add(f"{self.units_path.name} line {self.line_number}", raw, str(bad))
            return
        self.last_unit = record["unit"]
        self._write({"t": t, "phase": "unit", "cpu_s": cpu, **record})

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
        for raw in self._read_complete_lines():
            self.line_number += 1
            if not raw.strip():
                continue
            if self.pattern:
                self._match(t, cpu, raw)
                continue
            try:
                if len(raw) > MAX_LINE_BYTES:
                    raise BadLine(f"longer than {MAX_LINE_BYTES} bytes")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadLine("not UTF-8 text") from None
                record = parse_line(line)
                if record["unit"] <= self.last_unit:
                    raise BadLine(f"unit {record['unit']} does not follow unit {self.last_unit}")
            except BadLine as bad:
                self.bad.add(f"{self.units_path.name} line {self.line_number}", raw, str(bad))
                continue
            self.last_unit = record["unit"]
            self._write({"t": t, "phase": "unit" if record["unit"] else "start", "cpu_s": cpu, **record})
