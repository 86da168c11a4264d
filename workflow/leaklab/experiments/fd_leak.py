"""``fd_leak``: deleted LOCK files held open by a storage-rotation loop.

After DoltHub's "Hunting a Memory Leak": stats storage was rotated by deleting its
directory without closing the ``LOCK`` file, which it held with a file lock.  The Go
heap stayed flat; the kernel kept each deleted file's inode and dentry alive (slab
caches grew) and ``lsof`` listed the handles as ``(deleted)``.  Fixed in Dolt v1.57.1.

One unit = one rotation.  ``close`` closes the LOCK file before deleting the old
directory; ``leak`` deletes it with the file still open.  The loop stops cleanly,
with a ``fd_limit`` mark, before it would run out of file descriptors.
"""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
import time
from pathlib import Path

from leaklab.experiments import cli
from leaklab.experiments.marks import mark

VARIANTS = ("close", "leak")
BASELINE = "close"
UNIT = "rotation"
KEY_METRICS = ("deleted_fds", "slab_bytes")
DEFAULTS = {"rotations": 400, "interval_s": 0.02, "payload_bytes": 4096, "fd_headroom": 64}
LENGTH_PARAM = "rotations"
PARAM_MAXIMA = {"rotations": 1_000_000, "interval_s": 60, "payload_bytes": 2**26, "fd_headroom": 100_000}
PACED = True  # waits between rotations: 1.3 s of CPU in a 16.5 s run
SLAB_CACHES = ("dentry", "ext4_inode_cache", "xfs_inode", "btrfs_inode", "shmem_inode_cache", "inode_cache")


def meminfo_slab() -> dict[str, int]:
    """``/proc/meminfo`` Slab, SReclaimable and SUnreclaim, in bytes."""
    wanted = {"Slab": "slab_bytes", "SReclaimable": "sreclaimable_bytes", "SUnreclaim": "sunreclaim_bytes"}
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in wanted:
                out[wanted[key]] = int(rest.split()[0]) * 1024
    return out


def slab_caches() -> dict[str, int | None]:
    """Active objects of the dentry and inode caches; None when slabinfo is unreadable."""
    out: dict[str, int | None] = {f"slab_{name}_objs": None for name in SLAB_CACHES}
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] in SLAB_CACHES:
                    out[f"slab_{fields[0]}_objs"] = int(fields[1])
    except OSError:
        pass
    return out


def fd_census() -> tuple[int, int]:
    """Open fds and fds pointing at deleted files, as ``lsof`` would show them."""
    names = os.listdir("/proc/self/fd")
    deleted = 0
    for name in names:
        try:
            deleted += os.readlink(f"/proc/self/fd/{name}").endswith(" (deleted)")
        except OSError:
            pass
    return len(names), deleted


def next_fd() -> int:
    """The number the next ``open`` gets: Dolt's regression test watches exactly this."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def open_storage(root: Path, generation: int) -> tuple[Path, int]:
    store = root / f"stats-{generation:06d}"
    store.mkdir()
    lock_fd = os.open(store / "LOCK", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return store, lock_fd


def run(variant: str, params: dict, workdir: Path) -> None:
    """Rotate a LOCK-guarded storage directory ``rotations`` times."""
    p = {**DEFAULTS, **params}
    payload = b"\0" * int(p["payload_bytes"])
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    root = workdir / "storage"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    store, lock_fd = open_storage(root, 0)
    held: list[int] = []
    mark(0, "start", fds=fd_census()[0], deleted_fds=0, next_fd=next_fd(), **meminfo_slab(), **slab_caches())
    for rotation in range(1, int(p["rotations"]) + 1):
        fds, deleted = fd_census()
        if fds + int(p["fd_headroom"]) >= soft_limit:
            mark(rotation - 1, "fd_limit", fds=fds, fd_soft_limit=soft_limit)
            break
        (store / "stats.dat").write_bytes(payload)
        new_store, new_lock_fd = open_storage(root, rotation)
        if variant == "close":
            os.close(lock_fd)
        else:
            held.append(lock_fd)
        shutil.rmtree(store)
        store, lock_fd = new_store, new_lock_fd
        fds, deleted = fd_census()
        mark(rotation, "unit", fds=fds, deleted_fds=deleted, next_fd=next_fd(),
             **meminfo_slab(), **slab_caches())
        time.sleep(float(p["interval_s"]))


main = cli(run, VARIANTS)

if __name__ == "__main__":
    main()
