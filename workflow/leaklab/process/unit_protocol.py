"""Unit marks for programs in any language: one line per finished unit of work.

A command experiment's program learns a file path from ``LEAKLAB_UNITS`` and appends
one line when it finishes each unit of work::

    <unit number> [name=value ...]

for example ``7`` or ``7 cache_entries=1200 queue_bytes=65536``; an optional line for
unit ``0`` before the first unit gives the values at the start.  Append and flush
each line (``fprintf`` + ``fflush`` in C, ``echo 7 >> "$LEAKLAB_UNITS"`` in shell).
The runner follows the file (every few milliseconds), stamps each line with the time
it saw it and turns it into a mark, and reads the process at that moment
(``reading``: one reading per unit, bounded in rate), so the outside metrics at a mark
are the process's own at that unit, not a reading shared with the units before.  With ``unit_source: seconds`` no line is needed: the
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
import threading
import time
from collections.abc import Callable
from pathlib import Path

import regex

UNITS_ENV = "LEAKLAB_UNITS"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Names the tables give a meaning of their own: a program's metric must not replace them.
RESERVED_NAMES = frozenset({"t", "unit", "phase", "cpu_s", "final", "metric", "value",
                            "experiment", "variant", "profiler", "replicate"})
# ... and the runner's own readings of the process: a metric of a command program named
# rss_bytes would replace the reading it is judged by (a built-in experiment reads its
# own RSS at each mark, which is why these are not reserved for it).
PROGRAM_RESERVED_NAMES = RESERVED_NAMES | {"pids", "rss_bytes", "pss_bytes", "uss_bytes", "vmhwm_bytes",
                                           "threads", "fds", "deleted_fds", "cgroup_bytes"}
METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_UNIT = 10**9           # a billion units: more than any run reaches, small enough for int64
MAX_LINE_BYTES = 4096      # a longer "line" is garbage, not a unit line
MAX_READ_BYTES = 1 << 20   # read at most this much per poll: a flood cannot exhaust the runner
QUOTED_BAD_LINES = 5
# A unit_pattern may take this long on one line (the regex package's timeout; it overshoots
# by a few times): a catastrophic pattern gives up on the line, never holds the run.
PATTERN_TIMEOUT_S = 0.05
FOLLOW_PAUSE_S = 0.002     # how often the units file is looked at while nothing new is in it
DRAIN_BUDGET_S = 10.0      # after the run, how long the units file may still be read


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


def check_metric(name: str, value: object, reserved: frozenset[str] = RESERVED_NAMES) -> float:
    """A metric a program reports: a plain name that is not one of the tables' own
    columns (nor, for a command program, one of the runner's readings: ``reserved``),
    and a finite number."""
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        raise BadLine(f"metric name {name!r} is not a plain name ([A-Za-z_][A-Za-z0-9_]*, up to 64)")
    if name in reserved:
        raise BadLine(f"metric name {name!r} is reserved ({', '.join(sorted(reserved))})")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise BadLine(f"{name}={value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > 2.0**63:
        raise BadLine(f"{name}={value!r} is not a finite number")
    return float(value)


def parse_line(line: str, reserved: frozenset[str] = PROGRAM_RESERVED_NAMES) -> dict:
    """``{"unit": n, **metrics}`` from one protocol line; raises BadLine saying why not
    (a metric may not take a ``reserved`` name)."""
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
        record[name] = check_metric(name, value, reserved)
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


def compile_pattern(pattern: str) -> "regex.Pattern":
    """A ``unit_pattern`` compiled for matching with a timeout; raises ValueError saying why
    not (it does not compile, or a named group would replace a reserved name)."""
    try:
        compiled = regex.compile(pattern)
    except regex.error as err:
        raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
    shadowing = sorted(set(compiled.groupindex) & PROGRAM_RESERVED_NAMES)
    if shadowing:
        raise ValueError(f"group {shadowing[0]!r} of {pattern!r} would replace a reading or column of "
                         f"the same name; reserved: {', '.join(sorted(PROGRAM_RESERVED_NAMES))}")
    return compiled


class ProtocolMarks:
    """Turns a program's unit lines (or the clock) into marks in ``marks.jsonl``.

    Everything the program writes is untrusted: a line that does not decode, does not
    parse, names a reserved metric, or whose unit is negative, too large or not after
    the previous one is counted in ``bad`` and skipped, never raised.  Lines arrive
    from another thread than the clock's (``line``; ``poll`` from the sampling loop):
    a lock keeps the marks whole and in order.  ``reading(t, unit)`` is called at every
    unit mark, the moment its line arrived: the runner reads the process there
    (``leaklab.process.unit_readings``)."""

    def __init__(self, source: str, units_path: Path, marks_path: Path, bad: BadLines | None = None,
                 pattern: str | None = None, reading: Callable[..., None] | None = None,
                 reserved: frozenset[str] = PROGRAM_RESERVED_NAMES):
        self.source, self.units_path, self.marks_path = source, Path(units_path), Path(marks_path)
        self.reserved = reserved
        self.pattern = compile_pattern(pattern) if pattern else None
        self.reading = reading
        self.offset = 0
        self.line_number = 0
        self.last_unit = -1  # an optional unit 0 line: the program's values at the start
        self.started = False
        self.next_second = 1
        self.bad = bad or BadLines()
        self.pattern_timeouts = 0
        self.unread_lines = 0  # lines of the units file left unread when the drain's budget ran out
        self.lock = threading.Lock()
        self.out = open(self.marks_path, "a", buffering=1)

    def close(self) -> None:
        with self.lock:
            self.out.close()

    def _write(self, record: dict) -> None:
        if not self.out.closed:
            self.out.write(json.dumps(record) + "\n")

    def _start(self, t: float, cpu: float | None) -> None:
        if not self.started:
            self._write({"t": t, "unit": 0, "phase": "start", "cpu_s": cpu})
            self.started = True

    def _unit(self, t: float, pid: int, record: dict) -> None:
        """One unit mark: the process read at this moment, then the mark."""
        cpu = cpu_seconds(pid)
        self._start(t, cpu)
        if self.reading is not None:
            self.reading(t, record["unit"])
        self.last_unit = record["unit"]
        self._write({"t": t, "phase": "unit" if record["unit"] else "start", "cpu_s": cpu, **record})

    def _search(self, raw: bytes) -> tuple[object, bool]:
        """The pattern searched in one output line, outside the lock (a search may take up
        to ``PATTERN_TIMEOUT_S``, and the sampling loop takes the lock at every sample):
        the match (or None), and whether the search gave up."""
        try:
            return self.pattern.search(raw[:MAX_LINE_BYTES].decode("utf-8", errors="replace"),
                                       timeout=PATTERN_TIMEOUT_S, concurrent=True), False
        except TimeoutError:
            return None, True

    def _match(self, raw: bytes, match: object, gave_up: bool) -> dict | None:
        """One line of the program's own output: the next unit when it matched the
        pattern, its named groups checked as metrics; any other line is just output."""
        if gave_up:
            self.pattern_timeouts += 1
            self.bad.add(f"output line {self.line_number}", raw,
                         f"unit_pattern gave up after {PATTERN_TIMEOUT_S} s: not counted as a unit")
            return None
        if match is None:
            return None
        return {"unit": check_unit(max(self.last_unit, 0) + 1),  # a match ends unit 1 onwards
                **{name: check_metric(name, value, self.reserved)
                   for name, value in match.groupdict().items() if value is not None}}

    def _protocol(self, raw: bytes) -> dict:
        if len(raw) > MAX_LINE_BYTES:
            raise BadLine(f"longer than {MAX_LINE_BYTES} bytes")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadLine("not UTF-8 text") from None
        record = parse_line(line, self.reserved)
        if record["unit"] <= self.last_unit:
            raise BadLine(f"unit {record['unit']} does not follow unit {self.last_unit}")
        return record

    def line(self, raw: bytes, t: float, pid: int) -> None:
        """One line the program wrote (its output with a pattern, else its units file),
        seen at ``t``."""
        match, gave_up = None, False
        if self.pattern and raw.strip():
            match, gave_up = self._search(raw)
        with self.lock:
            self.line_number += 1
            if not raw.strip():
                return
            where = "output" if self.pattern else self.units_path.name
            try:
                record = self._match(raw, match, gave_up) if self.pattern else self._protocol(raw)
            except BadLine as bad:
                self.bad.add(f"{where} line {self.line_number}", raw, str(bad))
                return
            if record is not None:
                self._unit(t, pid, record)

    def poll(self, t: float, pid: int) -> None:
        """From the sampling loop: the start mark, and with ``unit_source: seconds`` a
        mark at every whole second."""
        with self.lock:
            cpu = cpu_seconds(pid)
            self._start(t, cpu)
            if self.source == "seconds":
                while t >= self.next_second:
                    if self.reading is not None:  # the sample just taken is this second's: no other
                        self.reading(t, self.next_second, sample=False)
                    self._write({"t": t, "unit": self.next_second, "phase": "unit", "cpu_s": cpu})
                    self.next_second += 1

    def follow(self, clock: Callable[[], float], pid: int, done: threading.Event) -> None:
        """Follow the units file until ``done`` (the program is gone), then read what is
        left of it, for at most ``DRAIN_BUDGET_S``: what is still unread then is counted
        (``unread_lines``), never silently lost."""
        while not done.is_set():
            lines, self.offset = read_complete_lines(self.units_path, self.offset)
            for raw in lines:
                self.line(raw, clock(), pid)
            if not lines:
                done.wait(FOLLOW_PAUSE_S)
        budget_end = time.monotonic() + DRAIN_BUDGET_S
        while time.monotonic() < budget_end:
            lines, self.offset = read_complete_lines(self.units_path, self.offset)
            if not lines:
                return
            t = clock()
            for raw in lines:
                self.line(raw, t, pid)
        self.unread_lines = count_lines(self.units_path, self.offset)


def count_lines(path: Path, offset: int) -> int:
    """Newlines in ``path`` after ``offset`` (read in pieces: the file may be huge)."""
    count = 0
    try:
        with open(path, "rb") as feed:
            feed.seek(offset)
            while piece := feed.read(MAX_READ_BYTES):
                count += piece.count(b"\n")
    except OSError:
        pass
    return count
