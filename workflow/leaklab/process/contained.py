"""A helper step of the pipeline run the way a measured program is: contained.

A command experiment's ``setup``, the fixture build and the native builds run code
leaklab does not control (the user's build, a compiler, a generator).  Each runs here
in its own containment (``leaklab.process.containment``: a cgroup where there is one, else its
process group) with the measurements' memory cap and time limit, its output written to
the job's log up to a bound (the head and the tail are kept, what lies between is
counted), and at the end everything it started is killed: a daemon it left behind does
not outlive its job.  SIGTERM, SIGINT or SIGHUP to the step (Snakemake stopping its
jobs) kill the whole tree at once, whatever the tree does with the signal itself.

Nothing is raised for what the step does: the outcome says ``ok``, ``failed``,
``crashed``, ``timeout``, ``capped`` or ``stopped`` and why, so the job can record it
and let the pipeline go on.
"""

from __future__ import annotations

import collections
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from leaklab.process import containment

LOG_HEAD_BYTES = 4 * 2**20   # the start of a step's output, kept whole
LOG_TAIL_BYTES = 1 * 2**20   # and its end, where the error usually is
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_READ_BYTES = 1 << 16


class Stopped(Exception):
    """The step was told to stop (the signal's name): its tree is gone already."""


class _BoundedLog:
    """A log file that keeps the first ``head`` bytes written and the last ``tail``,
    counting what is left out between them."""

    def __init__(self, path: Path, head: int = LOG_HEAD_BYTES, tail: int = LOG_TAIL_BYTES):
        self.file = open(path, "ab")
        self.head_left = head
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_bytes, self.tail_limit = 0, tail
        self.dropped = 0

    def write(self, data: bytes) -> None:
        if self.head_left > 0:
            self.file.write(data[:self.head_left])
            data, self.head_left = data[self.head_left:], self.head_left - len(data[:self.head_left])
        if not data:
            return
        self.tail.append(data)
        self.tail_bytes += len(data)
        while self.tail_bytes - len(self.tail[0]) >= self.tail_limit:
            self.tail_bytes -= len(self.tail[0])
            self.dropped += len(self.tail.popleft())

    def close(self) -> None:
        kept = b"".join(self.tail)
        cut = max(0, len(kept) - self.tail_limit)
        self.dropped += cut
        if self.dropped:
            self.file.write(f"\n[leaklab: {self.dropped} bytes of output left out here]\n".encode())
        self.file.write(kept[cut:])
        self.file.close()


def _raise_stopped(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def _drain(fd: int, log: _BoundedLog, wait_s: float) -> bool:
    """Copy what the step wrote within ``wait_s`` into the log; False at end of output."""
    readable, _, _ = select.select([fd], [], [], wait_s)
    if not readable:
        return True
    data = os.read(fd, _READ_BYTES)
    if not data:
        return False
    log.write(data)
    return True


def _status(returncode: int | None, why: str | None) -> str:
    if why is not None:
        return why
    if returncode == 0:
        return "ok"
    return "crashed" if returncode is not None and returncode < 0 else "failed"


def run(cmd: list[str], log_path: Path, timeout_s: float, mem_cap_bytes: int | None,
        cwd: Path | None = None, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` contained (see the module's docstring); its outcome as a dict with
    ``status``, ``exit_code``, ``wall_s``, ``reason``, ``log_bytes_left_out`` and
    ``containment``.  Raises :class:`Stopped` when the step itself was signalled."""
    box = containment.create("auto", mem_cap_bytes)
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    log = _BoundedLog(Path(log_path))
    t0 = time.monotonic()
    why: str | None = None
    proc = None
    try:
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(cmd, stdout=write_fd, stderr=write_fd, stdin=subprocess.DEVNULL, cwd=cwd,
                                    env=env, start_new_session=True, preexec_fn=box.enter)
        except OSError as err:  # the program cannot start: a failed step, said so in its log
            os.close(read_fd)
            log.write(f"leaklab: cannot start {cmd[0]!r}: {err}\n".encode())
            return {"status": "failed", "exit_code": None, "wall_s": 0.0, "reason": f"cannot start: {err}",
                    "log_bytes_left_out": 0, "containment": box.describe()}
        finally:
            os.close(write_fd)
        box.started(proc.pid)
        deadline = t0 + timeout_s
        open_output = True
        while proc.poll() is None:
            if time.monotonic() > deadline:
                why = "timeout"
                break
            open_output = _drain(read_fd, log, 0.1) if open_output else (time.sleep(0.1) or False)
        capped = box.oom_killed()
        box.stop()  # the step is over: whatever it left running goes now (daemons included)
        proc.wait()
        status = _status(proc.returncode, why or ("capped" if capped else None))
        end = time.monotonic() + 2.0  # the rest of its output, from writers that are gone
        while open_output and time.monotonic() < end:
            open_output = _drain(read_fd, log, 0.1)
        os.close(read_fd)
    except Stopped as stopped:
        box.stop()
        why = "stopped"
        log.write(f"\nleaklab: stopped by {stopped}: the step's processes were killed\n".encode())
        raise
    finally:
        box.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc is not None and proc.returncode is None:
            proc.kill()
            proc.wait()
        log.close()
    reasons = {"ok": "", "failed": f"exited {proc.returncode}", "crashed": f"killed by signal {-proc.returncode}",
               "timeout": f"still running after {timeout_s:g} s (limits.timeout_s)",
               "capped": f"above the memory cap of {(mem_cap_bytes or 0) / 2**20:.0f} MiB (limits.mem_cap_mb)"}
    return {"status": status, "exit_code": proc.returncode, "wall_s": round(time.monotonic() - t0, 3),
            "reason": reasons[status], "log_bytes_left_out": log.dropped, "containment": box.describe()}


CHILD = "LEAKLAB_CONTAINED_STEP"  # set in the contained copy of a job's script


def script_contained(script: str, log_path: Path, timeout_s: float, mem_cap_bytes: int | None) -> bool:
    """Run a Snakemake job's own ``script`` (its ``__real_file__``) again as a contained
    child, its output bounded into ``log_path``; True in that child (go on with the
    work), else exit with the child's outcome: 0 when it ended ok, else one line saying
    why (the job fails, Snakemake keeps no partial output)."""
    import sys

    if os.environ.get(CHILD) == "1":
        return True
    containment.die_with_parent()
    Path(log_path).write_bytes(b"")
    done = run([sys.executable, script], Path(log_path), timeout_s, mem_cap_bytes, env={**os.environ, CHILD: "1"})
    if done["status"] != "ok":
        sys.exit(f"{Path(script).name}: {done['status']} ({done['reason']}); see {log_path}")
    sys.exit(0)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def stop_jobs_on_sigterm() -> None:
    """Make SIGTERM to the pipeline stop its running jobs too (called in ``onstart``).

    Snakemake answers SIGTERM by waiting for the jobs that run: a hung step would hold
    the pipeline for as long as it hangs.  This passes the signal on to every job
    process first; each kills its own tree (runner, contained step) and ends, and
    Snakemake's own handler then lets the pipeline end."""
    previous = signal.getsignal(signal.SIGTERM)

    def forward(signum, frame):
        for pid in _children(os.getpid()):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, forward)
