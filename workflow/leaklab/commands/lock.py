"""Clear Snakemake's lock only when the pipeline that held it is provably dead.

    python -m leaklab lock [DIRECTORY]

A pipeline killed outright (SIGKILL, a lost node, a power cut) leaves its lock in
``.snakemake/locks``, and Snakemake refuses to start again until ``--unlock``: it
cannot tell a dead pipeline from a live one.  This can, when it can see enough: a
live one is a running process whose command line says snakemake and whose working
directory is the same.  What it cannot see counts as alive: a snakemake process whose
working directory it may not read (another user's), a lock another user owns (their
processes may be hidden from us).  Only a lock proved stale is removed (what ``snakemake
--unlock`` removes, without parsing the workflow: an unlock must not depend on the
configuration it will run with being found or valid); otherwise it is kept, the owner
named, and ``leaklab lock`` exits 1.  ``make run`` calls it first, so
re-running after a kill finishes the work (Snakemake's own incomplete-output tracking
then re-runs the jobs that were cut short).
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def live_pipelines(directory: Path) -> list[str]:
    """Other snakemake processes that are, or may be, working in ``directory``,
    described as ``pid N (user U)``; one whose working directory cannot be read
    may be, so it is listed."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            owner = _user(os.stat(f"/proc/{entry}").st_uid)
        except FileNotFoundError:
            continue  # gone meanwhile
        except OSError:
            cmdline, owner = [b"snakemake?"], "unknown"  # unreadable: cannot rule it out
        if not any(b"snakemake" in part for part in cmdline):
            continue
        try:
            if Path(os.readlink(f"/proc/{entry}/cwd")) != directory:
                continue
            found.append(f"pid {entry} (user {owner})")
        except FileNotFoundError:
            continue
        except OSError:
            found.append(f"pid {entry} (user {owner}, working directory unreadable)")
    return found


def held_locks(directory: Path) -> list[Path]:
    """Snakemake's lock files in ``directory`` (none: not locked)."""
    locks = Path(directory).resolve() / ".snakemake" / "locks"
    return sorted(locks.iterdir()) if locks.is_dir() else []


def clear_stale(directory: Path) -> bool:
    """Unlock ``directory`` if its lock is provably held by no live pipeline; True if
    it did.  When it keeps a lock it says why, naming the owner."""
    directory = directory.resolve()
    locks = directory / ".snakemake" / "locks"
    held = held_locks(directory)
    if not held:
        return False
    owners = {_user(p.stat().st_uid) for p in held}
    me = _user(os.geteuid())
    if os.geteuid() != 0 and owners != {me}:
        print(f"leaklab: keeping the lock of {directory}: it belongs to {', '.join(sorted(owners))}, whose "
              f"processes {me} cannot all see; ask them (or root) to run `python -m leaklab lock`", file=sys.stderr)
        return False
    live = live_pipelines(directory)
    if live:
        print(f"leaklab: keeping the lock of {directory} (owned by {', '.join(sorted(owners))}): a pipeline may still "
              f"be working there: {'; '.join(live)}", file=sys.stderr)
        return False
    print(f"leaklab: removing the stale lock of a pipeline that is no longer running ({locks})", file=sys.stderr)
    for path in held:
        path.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """``leaklab lock [DIRECTORY]``: 0 when ``DIRECTORY`` is left unlocked, 1 when a lock is kept."""
    import argparse

    parser = argparse.ArgumentParser(prog="leaklab lock", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=Path("."), help="where results/ lives")
    directory = parser.parse_args(argv).directory
    clear_stale(directory)
    return 1 if held_locks(directory) else 0


if __name__ == "__main__":
    sys.exit(main())
