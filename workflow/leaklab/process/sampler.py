"""The outside view: read ``/proc/<pid>`` of a process tree at a fixed interval.

Snakemake's ``benchmark:`` polls every 0.5 s, then every 30 s, and never at exit; a leak
of a few MB per second needs finer and steadier samples.  The sampler runs in the
runner, not in the measured process, so all it costs the measured process is the
kernel work of answering ``/proc`` reads; ``leaklab.commands.bench`` measures that cost.

RSS, the high-water mark and threads come from ``status`` at every sample: the kernel
keeps them as counters, so reading them costs the process nothing.  PSS and USS need
``smaps_rollup``, which walks every page table under the process's mmap lock (a process
whose heap grows waits for it, and each walk is longer than the last), so it is read at
most every :data:`ROLLUP_INTERVAL_S` per process, at the final sample, and whenever the
unit-mark reading of full ``smaps`` (``leaklab.process.mappings``) has fresh figures; between
reads a sample carries the last ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# what the outside view measures, per unit of work (``growth.unit_series``)
OUTSIDE_METRICS = ("rss_bytes", "pss_bytes", "uss_bytes", "fds", "deleted_fds", "threads")
SAMPLE_COLUMNS = (
    "t", "pids", "rss_bytes", "pss_bytes", "uss_bytes", "vmhwm_bytes",
    "threads", "fds", "deleted_fds", "cgroup_bytes", "final",
)


def descendants(pid: int) -> list[int]:
    """``pid`` and every live descendant, through ``/proc/<pid>/task/*/children``."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{p}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
    return found


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(rest)
    return out


PF_EXITING = 0x4  # include/linux/sched.h: set when do_exit starts, before the memory is torn down


def exiting(pid: int) -> bool:
    """Whether ``pid`` has begun to exit (or is gone).  Asked after a read of its
    ``smaps``: a read that overlaps the teardown of its memory returns only the
    mappings not yet unmapped, a partial reading that looks like a fall in memory."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            flags = int(f.read().rsplit(")", 1)[1].split()[6])
    except (OSError, ValueError, IndexError):
        return True
    return bool(flags & PF_EXITING)


ROLLUP_INTERVAL_S = 1.0


class Rollups:
    """The last ``smaps_rollup`` figures of each process and when they were read."""

    def __init__(self, interval_s: float = ROLLUP_INTERVAL_S):
        self.interval_s = interval_s
        self._last: dict[int, tuple[float, dict[str, int]]] = {}

    def read(self, pid: int, fresh: bool = False) -> dict[str, int]:
        """``pid``'s PSS and private bytes, read again if older than the interval or
        ``fresh`` is asked (the final sample)."""
        now = time.monotonic()
        last = self._last.get(pid)
        if fresh or last is None or now - last[0] >= self.interval_s:
            last = (now, _smaps_rollup(pid))
            self._last[pid] = last
        return last[1]

    def store(self, pid: int, pss: int, private: int) -> None:
        """Figures read elsewhere (full ``smaps`` at a unit mark) count as a fresh read."""
        self._last[pid] = (time.monotonic(), {"Pss": pss, "Private": private})


# the runner's: one measured tree per runner process (pids are not reused within a run)
ROLLUPS = Rollups()


def _smaps_rollup(pid: int) -> dict[str, int]:
    out = {"Pss": 0, "Private": 0}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key == "Pss":
                out["Pss"] = int(rest.split()[0]) * 1024
            elif key in ("Private_Clean", "Private_Dirty"):
                out["Private"] += int(rest.split()[0]) * 1024
    return out


def fd_counts(pid: int) -> tuple[int, int]:
    """Open fds and those whose target was deleted (``lsof`` shows ``(deleted)``)."""
    fd_dir = f"/proc/{pid}/fd"
    names = os.listdir(fd_dir)
    deleted = 0
    for name in names:
        try:
            if os.readlink(f"{fd_dir}/{name}").endswith(" (deleted)"):
                deleted += 1
        except OSError:
            pass
    return len(names), deleted


def sample(pid: int, t: float, smaps: bool = True, final: bool = False,
           members: list[int] | tuple[int, ...] = ()) -> dict | None:
    """One sample of the tree rooted at ``pid``, plus ``members`` (the run's cgroup,
    which keeps descendants that left the tree by daemonising): sums over them.
    ``cgroup_bytes`` is the caller's to fill (None here).

    Returns None when the root is gone (a process that exits mid-read is skipped).
    """
    row = dict.fromkeys(SAMPLE_COLUMNS, 0)
    row.update(t=t, final=final, cgroup_bytes=None)
    pids = list(dict.fromkeys([*descendants(pid), *members]))
    for p in pids:
        try:
            status = _status(p)
            if "VmRSS" not in status:  # a zombie or kernel thread: nothing mapped
                continue
            rollup = ROLLUPS.read(p, fresh=final) if smaps else {"Pss": 0, "Private": 0}
            fds, deleted = fd_counts(p)
            if smaps and exiting(p):  # its rollup may be partial
                raise OSError(f"{p} is exiting")
        except OSError:
            if p == pid:
                return None
            continue
        row["pids"] += 1
        row["rss_bytes"] += status["VmRSS"]
        row["vmhwm_bytes"] = max(row["vmhwm_bytes"], status.get("VmHWM", 0))
        row["threads"] += status.get("Threads", 0)
        row["pss_bytes"] += rollup["Pss"]
        row["uss_bytes"] += rollup["Private"]
        row["fds"] += fds
        row["deleted_fds"] += deleted
    return row if row["pids"] else None
