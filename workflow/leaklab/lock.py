"""Clear Snakemake's lock only when the pipeline that held it is dead.

    python -m leaklab.lock [DIRECTORY]

A pipeline killed outright (SIGKILL, a lost node, a power cut) leaves its lock in
``.snakemake/locks``, and Snakemake refuses to start again until ``--unlock``: it
cannot tell a dead pipeline from a live one.  This can: a live one is a running
process whose command line says snakemake and whose working directory is the same.
Only then is the lock kept; otherwise ``snakemake --unlock`` is run.  ``make run``
calls it first, so re-running after a kill finishes the work (Snakemake's own
incomplete-output tracking then re-runs the jobs that were cut short).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def live_pipelines(directory: Path) -> list[int]:
    """Pids of other snakemake processes working in ``directory``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
        if any(b"snakemake" in part for part in cmdline) and cwd == directory:
            found.append(int(entry))
    return found


SNAKEFILE = Path(__file__).resolve().parents[2] / "Snakefile"


def clear_stale(directory: Path) -> bool:
    """Unlock ``directory`` if it is locked by no live pipeline; True if it did."""
    directory = directory.resolve()
    locks = directory / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()) or live_pipelines(directory):
        return False
    print(f"leaklab: removing the stale lock of a pipeline that is no longer running ({locks})", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(directory),
                    "--unlock", "--quiet"], check=True, capture_output=True)
    return True


if __name__ == "__main__":
    clear_stale(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
