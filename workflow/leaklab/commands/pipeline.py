"""The verbs that run leaklab's Snakemake workflow: run, sweep, report.

Each clears a stale lock first (a pipeline killed outright leaves one; see
``leaklab.lock``), then runs Snakemake on leaklab's own Snakefile with the options
given, so ``--directory``, ``--configfile`` and ``--config only=[...]`` work as they do
for ``snakemake`` itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from leaklab import lock

SNAKEFILE = lock.SNAKEFILE
REPORT = "results/report.html"


def _snakemake(argv: list[str], *targets: str) -> int:
    """Snakemake with the user's options; ``targets`` go before them, where no option that
    takes several values (``--configfile a b``) can swallow them."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--directory", "-d", type=Path, default=Path("."))
    known, rest = parser.parse_known_args(argv)
    lock.clear_stale(known.directory)
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                           "--directory", str(known.directory), *targets, *rest]).returncode


def _with_cores(argv: list[str]) -> list[str]:
    """``--cores 4`` (the profile's setting) unless the options name their own."""
    given = any(a in ("--cores", "-c") or a.startswith("--cores=") for a in argv)
    return argv if given else ["--cores", "4", *argv]


def run(argv: list[str]) -> int:
    """``leaklab run [snakemake options]``: the default target."""
    return _snakemake(_with_cores(argv))


def sweep(argv: list[str]) -> int:
    """``leaklab sweep [snakemake options]``: the version sweep target."""
    return _snakemake(_with_cores(argv), "version_sweep")


def report(argv: list[str]) -> int:
    """``leaklab report [snakemake options]``: results/report.html, the Snakemake target
    leaklab writes itself (rule ``report``): the findings first, then every experiment's
    figures and interactive charts.  Whatever of the run is missing or out of date is
    made first, as for any target."""
    return _snakemake(_with_cores(argv), REPORT)
