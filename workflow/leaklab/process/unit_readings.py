"""One reading of the process tree per unit mark: RSS, mappings and heap from one instant.

A unit's growth is placed in layers (``leaklab.process.mappings``) and compared with
its RSS growth; both must come from the same point of the unit's cycle, or a program
whose memory rises and falls within a unit shows two different slopes.  So everything
the runner reads at a mark is read in one go, by :meth:`UnitReadings.take`:

- a sample of the tree (``leaklab.process.sampler``: RSS, PSS, fds; at most one per
  :data:`MIN_SAMPLE_GAP_S`);
- its mappings (full ``smaps``, which walks every page table under the process's mmap
  lock), paced by :func:`due`: at most one per :data:`MIN_GAP_S`, and never sooner
  than :data:`COST_FACTOR` times the last reading's cost after it, so reading costs at
  most 1/:data:`COST_FACTOR` of the run's time; the units in between share a reading;
- the heap in use (glibc's libmemusage records or jemalloc's dumps,
  ``leaklab.process.allocator_heap``) and a profiler's hook (pprof fetches a heap
  profile), once per unit.

When the reading is taken depends on who wrote the mark.  A command experiment's
program (a user's) is read the moment its unit line arrives (``unit_protocol``).  The
project's own programs (``leaklab.experiments.marks``, ``native/unitline``) *wait* at
a mark until the reading is taken: at each mark that is due by the same pace they write
``u<unit>`` into the sync pipe (:data:`PACE_ENV` tells them the pace) and wait for the
runner's answer, at most 2 s (``marks.READING_WAIT_S``: a slow runner never hangs them), so the
reading sees the process exactly as its own mark did.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from leaklab.process import allocator_heap, containment, mappings, sampler, unit_protocol

MIN_SAMPLE_GAP_S = 0.002  # a flood of unit lines does not turn the runner into a busy loop over /proc
MIN_GAP_S = 0.05          # mappings at most this often (the sampler's own interval)
COST_FACTOR = 10          # ... and at most 1/10 of the time: the next reading waits 10 x the last one's cost
PACE_ENV = "LEAKLAB_UNIT_READINGS"  # "<MIN_GAP_S>,<COST_FACTOR>": the pace a waiting program keeps
REQUEST = b"u"            # "u<unit>\n" in the sync pipe: read me now, at the end of this unit


def pace() -> str:
    """The value of :data:`PACE_ENV` for the runner's own programs."""
    return f"{MIN_GAP_S},{COST_FACTOR}"


def due(now: float, last_end: float, last_cost: float) -> bool:
    """Whether a mappings reading may be taken at ``now``: :data:`MIN_GAP_S` after the
    last one ended, and :data:`COST_FACTOR` times its cost."""
    return now - last_end >= max(MIN_GAP_S, COST_FACTOR * last_cost)


def requested_units(data: bytes) -> list[int]:
    """The units a program asked to be read in ``data`` (``u<unit>`` lines of the sync
    pipe); anything else in it is skipped (the final sample's ``x``, garbage)."""
    units = []
    for piece in data.split(b"\n"):
        piece = piece.strip(b"x")
        if piece.startswith(REQUEST) and piece[1:].isdigit() and len(piece) < 12:
            units.append(int(piece[1:]))
    return [u for u in units if 0 <= u <= unit_protocol.MAX_UNIT]


class UnitReadings:
    """The runner's readings at unit marks: samples into ``rows`` (the verdict's
    samples), mappings into ``mapping_rows`` (``mappings.parquet``), glibc's heap into
    ``heap_by_unit``.  Called from several threads (the sampling loop for a waiting
    program and for ``unit_source: seconds``, the units-file follower, the output pump
    for a ``unit_pattern``): one lock, and each unit is read at most once.  Only the
    project's own programs (``own``) are read when they ask: a user's program has the
    sync pipe too, and what it writes there is untrusted (a flood of made-up units would
    fetch a pprof endpoint for each)."""

    def __init__(self, pid: int, box: containment.ProcessGroup, smaps: bool, rows: list[dict],
                 heap_file: Path | None = None, at_unit: Callable[[int], None] | None = None, own: bool = True):
        self.pid, self.box, self.smaps, self.rows = pid, box, smaps, rows
        self.heap_file, self.at_unit, self.own = heap_file, at_unit, own
        self.mapping_rows: list[dict] = []
        self.heap_by_unit: dict[int, int] = {}
        self.seconds = 0.0  # the runner's own time spent reading mappings, for meta.json
        self.readings = 0
        self.closed = False  # set at the final sample: what comes after is teardown
        self._lock = threading.Lock()
        self._last_sample_t = -math.inf
        self._last_unit = -1     # the last unit whose heap and hook were read
        self._mapped_unit = -1   # the last unit whose mappings were read
        self._last_end, self._last_cost = -math.inf, 0.0

    def take(self, t: float, unit: int, sample: bool = True) -> None:
        """Read the tree at unit ``unit``'s mark (time ``t`` on the run's clock); with
        ``sample`` false the caller has just sampled the tree itself."""
        with self._lock:
            if self.closed:
                return
            if sample and t - self._last_sample_t >= MIN_SAMPLE_GAP_S:
                row = sampler.sample(self.pid, t, smaps=self.smaps, members=self.box.pids())
                if row is not None:
                    row["cgroup_bytes"] = self.box.memory_bytes()
                    self.rows.append(row)
                    self._last_sample_t = t
            if unit > self._last_unit:
                self._last_unit = unit
                self._heap_and_hook(unit)
            start = time.monotonic()
            if unit > self._mapped_unit and due(start, self._last_end, self._last_cost):
                pids = list(dict.fromkeys([*sampler.descendants(self.pid), *self.box.pids()]))
                self.mapping_rows.extend(mappings.read_tree(pids, t, unit))
                self._mapped_unit = unit
                self._last_end = time.monotonic()
                self._last_cost = self._last_end - start
                self.seconds += self._last_cost
                self.readings += 1

    def asked(self, t: float, unit: int) -> None:
        """A program asked through the sync pipe to be read at unit ``unit``'s mark."""
        if self.own:
            self.take(t, unit)

    def _heap_and_hook(self, unit: int) -> None:
        if self.at_unit is not None:
            self.at_unit(unit)
        if self.heap_file is not None:
            in_use = allocator_heap.read(self.heap_file)
            if in_use is not None:
                self.heap_by_unit[unit] = in_use

    def close(self) -> None:
        """No reading after this (the final sample: what follows is teardown)."""
        with self._lock:
            self.closed = True

    def write(self, path: Path) -> None:
        mappings.frame(self.mapping_rows).to_parquet(path, index=False)
