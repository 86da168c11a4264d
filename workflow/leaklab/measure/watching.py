"""Watching the measured process tree until it exits or must be stopped.

The runner's sampling loop: each pass takes one outside sample (``sampler``), enforces
the run's limits (memory cap, time limit), answers the program's request for its final
sample over the sync pipe, and gives sequential stopping (``stopping.Watcher``) its look."""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from leaklab.measure import stopping
from leaklab.measure.run_spec import RunSpec
from leaklab.process import containment, run_signals, sampler, unit_protocol, unit_readings


@dataclass(frozen=True)
class SyncPipes:
    """The two pipes a program asks for its final sample with: it writes to ``ready``
    once its work is done and waits on ``release`` (``leaklab.experiments.marks``)."""

    ready_r: int
    ready_w: int
    release_r: int
    release_w: int

    @classmethod
    def open(cls) -> SyncPipes:
        ready_r, ready_w = os.pipe()
        release_r, release_w = os.pipe()
        return cls(ready_r, ready_w, release_r, release_w)

    @property
    def program_ends(self) -> tuple[int, int]:
        """The ends the program is given (``marks.SYNC_ENV``), closed in the runner once it started."""
        return self.ready_w, self.release_r

    def close_runner_ends(self) -> None:
        os.close(self.ready_r)
        os.close(self.release_w)


def over_cap(row: dict | None, mem_cap_bytes: int | None) -> bool:
    """Whether the tree holds more than the cap: the cgroup's working set where there is
    one, else the summed PSS (a page shared by a pre-forked worker pool counts once),
    summed RSS only when neither is read."""
    if not mem_cap_bytes or row is None:
        return False
    if row["cgroup_bytes"] is not None:
        held = row["cgroup_bytes"]
    else:
        held = row["pss_bytes"] or row["rss_bytes"]
    return held > mem_cap_bytes


def until_exit(proc: subprocess.Popen, box: containment.ProcessGroup, run: RunSpec, sync: SyncPipes,
               rows: list[dict], t0: float, *, protocol: unit_protocol.ProtocolMarks | None = None,
               at_end_of_work: Callable[[int], None] | None = None, watcher: stopping.Watcher | None = None,
               guard: run_signals.Guard | None = None,
               readings: unit_readings.UnitReadings | None = None) -> str | None:
    """Sample the process tree (and its cgroup's members) until it exits or must be
    stopped; returns why it was stopped (``capped``, ``timeout``) or None.  Waiting on
    the sync pipe doubles as the sampling sleep, so the final sample is taken the
    moment the process asks, and waiting on a pidfd ends the wait the moment it exits,
    whatever the interval.  Samples after the final one (interpreter teardown) still
    enforce the limits but are not recorded: the final sample is the last one of the
    measured work.

    With a ``watcher`` (sequential stopping) every sample is also a chance to look at
    the marks: once the verdict is decided the program is asked to stop
    (``stopping.request_stop``).  A program that does not take its own final sample
    (not a built-in experiment) has the sample just taken
    marked final instead, the last one of its measured work, and gets
    ``stopping.STOP_GRACE_S`` to exit before it is killed.

    Between two samples the ``guard`` takes the signals sent to the runner (a stop
    signal from outside the tree raises ``run_signals.Stopped``).  A program that waits at
    its unit marks asks through the sync pipe too (``u<unit>``): it is read (``readings``)
    and let go at once."""
    own_final_sample = not run.experiment.command  # a built-in experiment takes its own
    ready_r, release_w, interval_s, smaps = sync.ready_r, sync.release_w, run.interval_s, run.smaps
    deadline = t0 + run.timeout_s
    final_taken, pipe_open = False, True
    exited = os.pidfd_open(proc.pid)  # readable once the process has exited
    while (guard is None or guard.take() is None) and proc.poll() is None:
        wait_s = max(0.0, min(interval_s, deadline - time.monotonic()))  # the time limit holds too
        ready = select.select([ready_r, exited] if pipe_open else [exited], [], [], wait_s)[0]
        asked = os.read(ready_r, 4096) if ready_r in ready else None
        final = bool(asked) and b"x" in asked
        pipe_open = pipe_open and asked != b"" and not final  # asked for the final sample, or EOF
        if asked and not final_taken:
            _read_at_marks(asked, readings, time.monotonic() - t0, release_w)
        row = sampler.sample(proc.pid, time.monotonic() - t0, smaps=smaps, final=final, members=box.pids())
        if row is not None:
            row["cgroup_bytes"] = box.memory_bytes()
        if row is not None and not final_taken:
            rows.append(row)
            if protocol:
                protocol.poll(row["t"], proc.pid)
        final_taken = final_taken or final
        if readings is not None and final_taken:
            readings.close()  # later readings would be teardown, not the measured work
        if watcher is not None and row is not None and not final_taken and watcher.decided is None \
                and watcher.update(rows) is not None and watcher.cuts_short():
            if not own_final_sample:
                rows[-1]["final"] = final_taken = True  # taken while it still held everything
            stopping.request_stop(proc.pid, own_final_sample)
            deadline = min(deadline, time.monotonic() + stopping.STOP_GRACE_S)
        if final:
            if at_end_of_work:  # the process waits: a profiler may look at it now
                at_end_of_work(proc.pid)
            try:
                os.write(release_w, b"x")
            except BrokenPipeError:
                pass
        stopped_for = None
        if box.oom_killed() or over_cap(row, run.mem_cap_bytes):
            stopped_for = "capped"
        elif time.monotonic() > deadline:
            # past the grace after the stop signal: killed, but stopped because it was decided
            stopped_for = "killed_after_stop" if watcher is not None and watcher.cuts_short() else "timeout"
        if stopped_for:
            box.stop()
            proc.wait()
            os.close(exited)
            return stopped_for
    os.close(exited)
    return "capped" if box.oom_killed() else None


def _read_at_marks(asked: bytes, readings: unit_readings.UnitReadings | None, t: float, release_w: int) -> None:
    """Take the reading of each unit a waiting program asked for, and let it go on."""
    for unit in unit_readings.requested_units(asked):
        if readings is not None:
            readings.asked(t, unit)
        try:
            os.write(release_w, b"u")
        except BrokenPipeError:
            pass
