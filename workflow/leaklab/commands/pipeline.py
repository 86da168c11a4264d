"""The verbs that run leaklab's Snakemake workflow: run, sweep, report.

Each clears a stale lock first (a pipeline killed outright leaves one; see
``leaklab.lock``), then runs Snakemake on leaklab's own Snakefile with the options
given, so ``--directory``, ``--configfile`` and ``--config only=[...]`` work as they do
for ``snakemake`` itself.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from leaklab import lock

SNAKEFILE = lock.SNAKEFILE
REPORT = "results/report.html"
FINDINGS = "results/report_findings.yaml"  # written by the summary rule: the report's landing page


def _verb(what: str) -> Callable[[Callable[[list[str]], int]], Callable[[list[str]], int]]:
    """A verb's own ``--help`` (``usage: leaklab <verb>``, leaklab's options first, one line
    on what passes through) and ``--snakemake-help``, before its arguments reach Snakemake.
    Without them ``--help`` would print Snakemake's 1,000-line help under another name."""

    def wrap(function: Callable[[list[str]], int]) -> Callable[[list[str]], int]:
        verb = function.__name__

        @functools.wraps(function)
        def with_help(argv: list[str]) -> int:
            parser = argparse.ArgumentParser(
                prog=f"leaklab {verb}", description=what, allow_abbrev=False,
                usage=f"leaklab {verb} [-h] [--directory DIR] [--snakemake-help] [snakemake options ...]",
                epilog="Every other option passes through to Snakemake (--configfile, --config, -n, --cores, ...): "
                       f"`leaklab {verb} --snakemake-help` lists them all.")
            parser.add_argument("--directory", "-d", metavar="DIR",
                                help="where results/ goes and config.yaml is read (default: the current directory)")
            parser.add_argument("--snakemake-help", action="store_true", help="show Snakemake's own options and exit")
            if parser.parse_known_args(argv)[0].snakemake_help:
                script = Path(sys.executable).with_name("snakemake")  # says `usage: snakemake`, not __main__.py
                command = [str(script)] if script.exists() else [sys.executable, "-m", "snakemake"]
                return subprocess.run([*command, "--help"]).returncode
            return function(argv)

        return with_help

    return wrap


def _snakemake(argv: list[str], *extra: str) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--directory", "-d", type=Path, default=Path("."))
    known, rest = parser.parse_known_args(argv)
    lock.clear_stale(known.directory)
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                           "--directory", str(known.directory), *rest, *extra]).returncode


def _with_cores(argv: list[str]) -> list[str]:
    """``--cores 4`` (the profile's setting) unless the options name their own."""
    given = any(a in ("--cores", "-c") or a.startswith("--cores=") for a in argv)
    return argv if given else ["--cores", "4", *argv]


@_verb("Run the whole pipeline: every configured experiment measured, analysed and drawn into results/.")
def run(argv: list[str]) -> int:
    """``leaklab run [snakemake options]``: the default target."""
    return _snakemake(_with_cores(argv))


@_verb("Run the version sweep: one experiment under several versions of one library (config: version_sweep).")
def sweep(argv: list[str]) -> int:
    """``leaklab sweep [snakemake options]``: the version sweep target."""
    return _snakemake(_with_cores(argv), "version_sweep")


@_verb("Write results/report.html from the last run, opening on its findings.")
def report(argv: list[str]) -> int:
    """``leaklab report [snakemake options]``: results/report.html, opening on the findings
    (controls, failed runs, verdicts) the summary rule wrote, not on the workflow's graph."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--directory", "-d", type=Path, default=Path("."))
    directory = parser.parse_known_args(argv)[0].directory
    findings = directory / FINDINGS
    metadata = ["--report-metadata", str(findings.resolve())] if findings.exists() else []
    return _snakemake(argv, "--report", REPORT, *metadata)
