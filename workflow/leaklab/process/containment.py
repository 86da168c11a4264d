"""Keep a measured process tree together, so it can be sampled, capped and stopped whole.

A process group is not enough: a descendant that daemonises (``setsid`` and a double
fork) leaves the group and the tree, and would outlive the run unmeasured.  A cgroup
keeps every descendant, whatever it does.  Each run gets its own cgroup, created
under the runner's own:

- cgroup v1 with the ``memory``, ``pids`` and ``freezer`` controllers: the memory
  limit is the run's cap (the kernel enforces it between two samples), ``pids.max``
  stops a fork bomb, and stopping freezes the group, kills every member and thaws it;
- cgroup v2: the same with ``memory.max``, ``pids.max`` and ``cgroup.kill`` (memory
  and pids only where the parent delegates them);
- neither usable (not root, not mounted): the process group, as before; ``meta.json``
  says which one a run had (``containment``) and why.

A runner killed outright (SIGKILL) cannot clean up: its measured process dies with it
(``PR_SET_PDEATHSIG``), and whatever is left in its cgroup is killed by the next
runner, which sweeps the cgroups of runners that no longer exist.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import time
from pathlib import Path

KINDS = ("auto", "cgroup_v1", "cgroup_v2", "process_group")
V1_CONTROLLERS = ("memory", "pids", "freezer")
MAX_PIDS = 4096          # processes and threads of one run: far above any experiment, far below a fork bomb
_counter = itertools.count(1)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies: a runner
    whose pipeline was killed must not go on measuring (and writing) on its own.

    Called first thing in a job's script, before any slow import: a job killed in that
    window must never start its program.  A parent that died before the call sends
    nothing, so a process already re-parented (to init or a sub-reaper, which never
    started a job) ends here at once."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() == 1 or _is_subreaper(os.getppid()):
        os.kill(os.getpid(), sig)
        raise SystemExit(f"parent gone before start (re-parented to {os.getppid()}): not started")


def _is_subreaper(pid: int) -> bool:
    """Whether ``pid`` is a process that adopts orphans (``PR_SET_CHILD_SUBREAPER``):
    systemd's user manager and container inits are; a pipeline never is."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return True  # gone already
    return name in ("systemd", "init", "tini", "dumb-init", "catatonit")


class Unavailable(OSError):
    """This kind of containment cannot be used here (the message says why)."""


def _mounts(fstype: str) -> list[tuple[str, set[str]]]:
    """(mount point, options) of every mounted filesystem of ``fstype``."""
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            _, point, kind, options, *_ = line.split()
            if kind == fstype:
                found.append((point.replace("\\040", " "), set(options.split(","))))
    return found


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and ``""`` for v2 (``/proc/self/cgroup``)."""
    out = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(path: Path) -> dict[str, int]:
    """A ``memory.stat``-style file as a dict (empty when unreadable)."""
    try:
        return {k: int(v) for k, v in (line.split() for line in path.read_text().splitlines())}
    except (OSError, ValueError):
        return {}


class ProcessGroup:
    """The fallback: the measured process leads its own session and process group."""

    kind = "process_group"

    def __init__(self, reason: str = ""):
        self.reason = reason
        self.leader: int | None = None

    def describe(self) -> dict:
        return {"kind": self.kind, "path": None, "reason": self.reason}

    def enter(self) -> None:
        """Runs in the child between fork and exec (it is already a session leader):
        it dies with the runner, even one killed outright."""
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def started(self, pid: int) -> None:
        self.leader = pid

    def pids(self) -> list[int]:
        """Members the tree walk cannot see (none: a process group is not tracked)."""
        return []

    def memory_bytes(self) -> int | None:
        return None

    def oom_killed(self) -> bool:
        return False

    def stop(self) -> None:
        """Kill the whole process group (profilers and their children included)."""
        if self.leader is None:
            return
        try:
            os.killpg(self.leader, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        """Stop what is left; afterwards nothing is signalled any more (the group id may be reused)."""
        self.stop()
        self.leader = None


class _Cgroup(ProcessGroup):
    """What both cgroup versions share: membership, sampling, stopping."""

    def __init__(self, dirs: dict[str, Path]):
        super().__init__()
        self.dirs = dirs  # controller (or "" for v2) -> this run's cgroup directory

    @property
    def main(self) -> Path:
        return next(iter(self.dirs.values()))

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.main), "reason": self.reason}

    def enter(self) -> None:
        super().enter()
        for path in dict.fromkeys(self.dirs.values()):
            _write(path / "cgroup.procs", str(os.getpid()))

    def sweep_orphans(self) -> None:
        """Kill and remove the cgroups of runners that died without cleaning up."""
        for sibling in self.main.parent.glob("leaklab-*-*"):
            runner_pid = int(sibling.name.split("-")[1])
            if sibling.name == self.main.name or os.path.exists(f"/proc/{runner_pid}"):
                continue
            type(self)({k: d.parent / sibling.name for k, d in self.dirs.items()}).close()

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.main / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def _kill_members(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _wait_empty(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        """Stop every member, wait until the cgroup is empty, remove it."""
        self.stop()
        self._wait_empty()
        for path in reversed(list(dict.fromkeys(self.dirs.values()))):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # members still exiting
                    self._kill_members()
                    time.sleep(0.02)
        self.leader = None


class CgroupV1(_Cgroup):
    kind = "cgroup_v1"

    @classmethod
    def create(cls, name: str, mem_cap_bytes: int | None) -> "CgroupV1":
        mounts = {c: point for point, options in _mounts("cgroup") for c in V1_CONTROLLERS if c in options}
        missing = [c for c in V1_CONTROLLERS if c not in mounts]
        if missing:
            raise Unavailable(f"cgroup v1 controllers not mounted: {', '.join(missing)}")
        own = _own_cgroups()
        dirs = {c: Path(mounts[c]) / own.get(c, "/").lstrip("/") / name for c in V1_CONTROLLERS}
        box = cls(dirs)
        try:
            for path in dirs.values():
                path.mkdir()
            box.sweep_orphans()
            if mem_cap_bytes:
                _write(dirs["memory"] / "memory.limit_in_bytes", str(mem_cap_bytes))
            _write(dirs["pids"] / "pids.max", str(MAX_PIDS))
        except OSError as err:
            box.close()
            raise Unavailable(f"cgroup v1 not writable: {err}") from err
        return box

    def memory_bytes(self) -> int | None:
        """The cgroup's charge less what the kernel can drop at once (its working set)."""
        usage = _read_int(self.dirs["memory"] / "memory.usage_in_bytes")
        if usage is None:
            return None
        return max(0, usage - _stat(self.dirs["memory"] / "memory.stat").get("total_inactive_file", 0))

    def oom_killed(self) -> bool:
        return _stat(self.dirs["memory"] / "memory.oom_control").get("oom_kill", 0) > 0

    def stop(self) -> None:
        """Freeze (so nothing forks meanwhile), kill every member, thaw (so they die)."""
        super().stop()
        state = self.dirs["freezer"] / "freezer.state"
        try:
            _write(state, "FROZEN")
            deadline = time.monotonic() + 2.0
            while state.read_text().strip() != "FROZEN" and time.monotonic() < deadline:
                time.sleep(0.01)
        except OSError:
            pass
        self._kill_members()
        try:
            _write(state, "THAWED")
        except OSError:
            pass


class CgroupV2(_Cgroup):
    kind = "cgroup_v2"

    @classmethod
    def create(cls, name: str, mem_cap_bytes: int | None) -> "CgroupV2":
        mounts = _mounts("cgroup2")
        if not mounts:
            raise Unavailable("cgroup v2 not mounted")
        parent = Path(mounts[0][0]) / _own_cgroups().get("", "/").lstrip("/")
        box = cls({"": parent / name})
        try:
            box.main.mkdir()
        except OSError as err:
            raise Unavailable(f"cgroup v2 not writable: {err}") from err
        box.sweep_orphans()
        try:
            wanted = {"memory", "pids"} & set((parent / "cgroup.controllers").read_text().split())
            for controller in wanted:  # delegate what the parent may (refused if it holds processes itself)
                try:
                    _write(parent / "cgroup.subtree_control", f"+{controller}")
                except OSError:
                    pass
            enabled = set((box.main / "cgroup.controllers").read_text().split())
            if "memory" in enabled and mem_cap_bytes:
                _write(box.main / "memory.max", str(mem_cap_bytes))
            if "pids" in enabled:
                _write(box.main / "pids.max", str(MAX_PIDS))
        except OSError as err:
            box.close()
            raise Unavailable(f"cgroup v2 not writable: {err}") from err
        missing = {"memory", "pids"} - enabled
        if missing:
            box.reason = f"cgroup v2 without {', '.join(sorted(missing))} (not delegated here): contained, not limited"
        return box

    def memory_bytes(self) -> int | None:
        usage = _read_int(self.main / "memory.current")
        if usage is None:
            return None
        return max(0, usage - _stat(self.main / "memory.stat").get("inactive_file", 0))

    def oom_killed(self) -> bool:
        return _stat(self.main / "memory.events").get("oom_kill", 0) > 0

    def stop(self) -> None:
        super().stop()
        try:
            _write(self.main / "cgroup.kill", "1")
        except OSError:  # kernels before 5.14: kill member by member
            self._kill_members()


def create(kind: str = "auto", mem_cap_bytes: int | None = None) -> ProcessGroup:
    """The strongest containment available for one run: ``kind`` ``auto`` tries cgroup
    v1, then v2, then falls back to the process group, recording why."""
    if kind not in KINDS:
        raise ValueError(f"unknown containment {kind!r}; allowed: {', '.join(KINDS)}")
    name = f"leaklab-{os.getpid()}-{next(_counter)}"
    reasons = []
    for cls in (CgroupV1, CgroupV2):
        if kind in ("auto", cls.kind):
            try:
                return cls.create(name, mem_cap_bytes)
            except Unavailable as err:
                reasons.append(str(err))
    if kind not in ("auto", "process_group"):
        raise Unavailable("; ".join(reasons))
    return ProcessGroup("; ".join(reasons) or "asked for")
