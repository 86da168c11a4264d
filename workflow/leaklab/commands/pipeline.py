"""The verbs that run leaklab's Snakemake workflow: run, sweep, report (and nightly).

Each reads the options every verb shares (``-d``/``--directory``, ``--configfile``)
with one parser, checks the config files (a missing or broken one is one line naming
the file and the line, not Snakemake's traceback), clears a stale lock (a pipeline
killed outright leaves one; see ``leaklab.commands.lock``), then runs Snakemake on leaklab's own
Snakefile with the options given, so ``--directory``, ``--configfile`` and ``--config
only=[...]`` work as they do for ``snakemake`` itself.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from leaklab.commands import lock

PROJECT = Path(__file__).resolve().parents[3]
SNAKEFILE = PROJECT / "Snakefile"
REPORT = "results/report.html"


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


@dataclass(frozen=True)
class PipelineOptions:
    """What leaklab itself reads of a pipeline verb's options; ``rest`` goes to Snakemake."""

    directory: Path
    configfiles: tuple[Path, ...]
    rest: tuple[str, ...]


def options(argv: list[str]) -> PipelineOptions:
    """The shared options, in every spelling Snakemake accepts (``-d DIR``, ``-dDIR``,
    ``--directory=DIR``, ``--configfile A B``), so a verb never reads one directory
    while Snakemake works in another."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--directory", "-d", type=Path, default=Path("."))
    parser.add_argument("--configfile", "--configfiles", dest="configfiles", nargs="+", type=Path, default=[],
                        action="extend")
    known, rest = parser.parse_known_args(argv)
    return PipelineOptions(known.directory, tuple(known.configfiles), tuple(rest))


def check_configfiles(paths: tuple[Path, ...]) -> str | None:
    """The first config file that is missing or not valid YAML, as one line (file, line,
    column); None when all read."""
    from leaklab.measure.validation import ConfigError, load_yaml

    for path in paths:
        if not path.is_file():
            return f"config: {path}: no such config file"
        try:
            load_yaml(path)
        except ConfigError as error:
            return f"config: {error}"
    return None


def snakemake(argv: list[str], *extra: str, profile: Path | None = None, retry: bool = False) -> int:
    """Snakemake on leaklab's Snakefile with ``argv`` (after the checks above) and ``extra``
    (targets and leaklab's own options, before the user's: an option that takes several
    values, ``--configfile a b``, cannot swallow them);
    with ``retry``, what the last run could not finish is done again (``leaklab.process.outcome``)."""
    from leaklab.process import outcome

    opts = options(argv)
    problem = check_configfiles(opts.configfiles)
    if problem:
        print(f"leaklab: {problem}", file=sys.stderr)
        return 1
    lock.clear_stale(opts.directory)
    configfiles = ["--configfile", *map(str, opts.configfiles)] if opts.configfiles else []
    workflow_profile = ["--workflow-profile", str(profile)] if profile else []
    again = outcome.unfinished(opts.directory) if retry else []
    if again:
        print(f"leaklab: doing again what the last run could not finish: {', '.join(again)}", file=sys.stderr)
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                           "--directory", str(opts.directory), *extra, *configfiles, *workflow_profile, *opts.rest,
                           *(["--forcerun", *again] if again else [])]).returncode


def _with_cores(argv: list[str]) -> list[str]:
    """``--cores 4`` (the profile's setting) unless the options name their own."""
    given = any(a in ("--cores", "-c") or a.startswith(("--cores=", "-c")) for a in argv)
    return argv if given else ["--cores", "4", *argv]


# options after which Snakemake has measured nothing, so runs.csv says nothing of this call
NOT_EXECUTING = ("-n", "--dry-run", "--dryrun", "--lint", "--list", "-l", "--list-rules", "--summary", "-S",
                 "--detailed-summary", "-D", "--dag", "--rulegraph", "--filegraph", "--unlock", "--touch", "-t",
                 "--report", "--cleanup-metadata", "--list-changes", "--lc", "--help", "-h")


@_verb("Run the whole pipeline: every configured experiment measured, analysed and drawn into results/.")
def run(argv: list[str]) -> int:
    """``leaklab run [snakemake options]``: the default target, doing again what the last
    run could not finish (``leaklab.process.outcome``).  Exits 1 when runs.csv lists a run that
    did not end ok, also after a re-run with nothing to do (Snakemake calls no
    ``onsuccess`` then): the same status on every re-run."""
    from leaklab.process import outcome

    executing = not any(a.split("=")[0] in NOT_EXECUTING for a in argv)
    returncode = snakemake(_with_cores(argv), retry=executing)
    return outcome.report_failed(options(argv).directory) if returncode == 0 and executing else returncode


@_verb("Run the version sweep: one experiment under several versions of one library (config: version_sweep).")
def sweep(argv: list[str]) -> int:
    """``leaklab sweep [snakemake options]``: the version sweep target."""
    return snakemake(_with_cores(argv), "version_sweep")


@_verb("Write results/report.html from the last run, opening on its findings.")
def report(argv: list[str]) -> int:
    """``leaklab report [snakemake options]``: results/report.html, the Snakemake target
    leaklab writes itself (rule ``report``): the findings first, then every experiment's
    figures and interactive charts.  Whatever of the run is missing or out of date is
    made first, as for any target."""
    return snakemake(_with_cores(argv), REPORT)
