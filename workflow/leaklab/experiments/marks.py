"""In-process marks: what only the measured process knows.

An experiment calls :func:`mark` at the end of every unit of work (a pass, a cycle,
a rotation, a second) and at phase boundaries.  Each mark is one JSON line appended
to the file named by ``LEAKLAB_MARKS``; the runner turns them into ``marks.parquet``.
Times share the runner's clock (``time.monotonic`` is system-wide on Linux) so marks
line up with the outside sampler's samples.

Every mark carries RSS read from ``/proc/self/statm``, the glibc heap in use
(``mallinfo2``), the number of live Python blocks, the process's CPU seconds (for
per-unit profiler overheads), and the Python heap traced by tracemalloc when tracing
is on (the ``tracemalloc`` profiler then also dumps a snapshot at every unit).  Experiments add their own metrics as keyword args.

At exit :func:`finish` writes an ``end`` mark and, when the runner handed over a
sync pipe, waits (briefly) for the runner to take a final outside sample, so the
samples include one taken just before the process exits.  Through the same pipe the
process waits at its unit marks (``start`` and ``unit``) for the runner's reading of its
mappings (``leaklab.process.unit_readings``), so that reading sees the memory its mark's
RSS saw, not the next unit's: at the pace ``LEAKLAB_UNIT_READINGS`` gives
(``<min gap s>,<cost factor>``: never sooner than the gap, nor than the factor times
the last wait, after the last wait ended), and for at most :data:`READING_WAIT_S`.

A run whose verdict is decided early is asked to stop with SIGTERM
(``leaklab.measure.stopping``).  :func:`stop_on_signal` turns the signal into a request that the
next unit mark honours by raising :class:`StopRequested`: the unit in progress is
finished and marked, and the experiment's ``main`` still writes the end mark and waits
for the final sample with what it holds still alive.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
import time
import tracemalloc

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MARKS_ENV = "LEAKLAB_MARKS"
T0_ENV = "LEAKLAB_T0"
SYNC_ENV = "LEAKLAB_SYNC_FDS"
TRACEMALLOC_ENV = "LEAKLAB_TRACEMALLOC"
PACE_ENV = "LEAKLAB_UNIT_READINGS"  # leaklab.process.unit_readings.PACE_ENV (that layer sits above this one)
READING_WAIT_S = 2.0
FINAL_WAIT_S = 60.0  # a profiler may snapshot the process meanwhile


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]


def _load_mallinfo2():
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    return fn


_mallinfo2 = _load_mallinfo2()
_out = None
_stop_requested = False
_next_reading_at = 0.0  # monotonic time before which a mark does not wait for a reading


class StopRequested(Exception):
    """The runner asked the process to stop after the unit it just finished (its verdict
    is decided); raised by :func:`mark` at that unit's mark."""
_t0 = float(os.environ.get(T0_ENV, time.monotonic()))


def malloc_in_use_bytes() -> int | None:
    """Bytes the C allocator has handed out and not had back (brk and mmap chunks).

    Under a preloaded allocator (jemalloc) glibc's figures say nothing: ``None``.
    """
    if _mallinfo2 is None or "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return None
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_SIZE


def _stream():
    global _out
    if _out is None:
        path = os.environ.get(MARKS_ENV)
        _out = open(path, "a", buffering=1) if path else sys.stderr
    return _out


def start_tracing_if_asked() -> None:
    """Start tracemalloc when the runner asked for it (the ``tracemalloc`` profiler)."""
    frames = os.environ.get(TRACEMALLOC_ENV)
    if frames and not tracemalloc.is_tracing():
        tracemalloc.start(int(frames))


def stop_on_signal(signum: int = signal.SIGTERM) -> None:
    """Let ``signum`` end the run at the next unit boundary instead of at once, so the
    last unit is whole and the final sample still sees what the process holds."""

    def requested(*_):
        global _stop_requested
        _stop_requested = True

    signal.signal(signum, requested)


def mark(unit: int | None, phase: str, **metrics: float | int | str | None) -> None:
    """Record one mark: ``unit`` is the unit of work just finished (None for phases
    outside the unit loop); ``phase`` names the point (``unit``, ``filled``, ...)."""
    record: dict = {
        "t": time.monotonic() - _t0,
        "unit": unit,
        "phase": phase,
        "rss_bytes": rss_bytes(),
        "malloc_in_use_bytes": malloc_in_use_bytes(),
        "py_blocks": sys.getallocatedblocks(),
        "cpu_s": time.process_time(),
    }
    if tracemalloc.is_tracing():
        record["py_heap_bytes"] = tracemalloc.get_traced_memory()[0]
    record.update(metrics)
    _stream().write(json.dumps(record) + "\n")
    if phase in ("start", "unit") and unit is not None:
        _wait_for_reading(unit)
    if phase == "unit" and unit is not None and tracemalloc.is_tracing():
        from leaklab.profilers.tracemalloc import dump_snapshot

        dump_snapshot(unit)  # after the mark line, so the mark's time is not inflated
    if _stop_requested and phase == "unit" and unit is not None:
        raise StopRequested(f"asked to stop after unit {unit}")


def _sync_fds() -> tuple[int, int] | None:
    """The sync pipe's ends (ask, be let go), or None when the runner handed none over."""
    try:
        ready_w, release_r = (int(x) for x in os.environ[SYNC_ENV].split(","))
    except (KeyError, ValueError):
        return None
    return ready_w, release_r


def _ask_and_wait(request: bytes, answer: bytes, wait_s: float) -> float:
    """Ask the runner through the sync pipe and wait for its answer (``answer``), at most
    ``wait_s``; the seconds waited.  An answer left over from a wait that timed out is
    dropped first, and one to another request arriving late does not end this wait."""
    fds = _sync_fds()
    if fds is None:
        return 0.0
    ready_w, release_r = fds
    start = time.monotonic()
    try:
        os.set_blocking(release_r, False)
        while select.select([release_r], [], [], 0)[0] and os.read(release_r, 64):
            pass
        os.write(ready_w, request)
        while (left := start + wait_s - time.monotonic()) > 0 and select.select([release_r], [], [], left)[0]:
            got = os.read(release_r, 64)
            if not got or answer in got:  # the runner's end closed, or this wait's answer
                break
    except OSError:
        return wait_s  # the pipe is gone: wait no more (see the pace)
    return time.monotonic() - start


def _wait_for_reading(unit: int) -> None:
    """At a unit mark that is due, let the runner read the process before going on."""
    global _next_reading_at
    try:
        gap_s, factor = (float(x) for x in os.environ[PACE_ENV].split(","))
    except (KeyError, ValueError):
        return
    if time.monotonic() < _next_reading_at:
        return
    waited = _ask_and_wait(f"u{unit}\n".encode(), b"u", READING_WAIT_S)
    _next_reading_at = time.monotonic() + max(gap_s, factor * waited)


def finish(**metrics) -> None:
    """Write the ``end`` mark and let the runner take its last sample before exit."""
    mark(None, "end", **metrics)
    _ask_and_wait(b"x", b"x", FINAL_WAIT_S)
