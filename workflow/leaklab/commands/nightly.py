"""The nightly command: a fresh measurement, appended to the history, judged.

    leaklab nightly [-d DIR] [--configfile FILE] [snakemake options ...]   (or python -m leaklab nightly)

Runs the pipeline with ``profiles/nightly`` (every measurement re-run, nightly
settings), which lists regressions against the previous night and then records the
night in the history store (once per run set).  Exits non-zero when the pipeline
failed (a run did not end ok), a planted control failed (the night's verdicts are
invalid), a regression counts, or the night was not compared and recorded by this
very run (files an earlier night left in ``DIR/results`` are never reported as
tonight's); says which on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from leaklab import history
from leaklab.model import controls
from leaklab.commands import pipeline
from leaklab.tables.tables import read_csv_table


def _written_since(path: Path, started: float) -> bool:
    """Whether ``path`` was written by this night's pipeline (not left by an earlier one)."""
    return path.exists() and path.stat().st_mtime >= started


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        parser = argparse.ArgumentParser(
            prog="leaklab nightly", description=__doc__.splitlines()[0],
            usage="leaklab nightly [-h] [-d DIR] [--configfile FILE] [snakemake options ...]",
            epilog="Every other option passes through to Snakemake (--configfile, --config, ...): "
                   "`leaklab run --snakemake-help` lists them all.")
        parser.add_argument("--directory", "-d", metavar="DIR", help="where results/ lives")
        parser.print_help()
        return 0
    directory = pipeline.options(argv).directory  # -d DIR, --directory DIR, --directory=DIR
    started = time.time() - 1  # file times are coarser than the clock on some filesystems
    returncode = pipeline.snakemake(argv, "nightly", profile=pipeline.PROJECT / "profiles" / "nightly", retry=True)
    tables = directory / "results" / "tables"
    night = directory / "results" / "nightly" / "night.json"
    if _written_since(night, started):
        recorded = json.loads(night.read_text())
        print(f"leaklab nightly: night {recorded['night_id']} "
              f"{'recorded' if recorded['recorded_now'] else 'was already recorded'} in {recorded['store']}",
              file=sys.stderr)
    problems = []
    if returncode != 0:
        problems.append(f"the pipeline exited {returncode} (see runs.csv and the log above)")
    if not _written_since(night, started):
        problems.append(f"tonight was not compared nor recorded ({night} not written by this run)")
    if _written_since(tables / "controls.csv", started) and \
            controls.all_passed(read_csv_table(tables / "controls.csv")) is False:
        problems.append("a planted control failed: tonight's verdicts are not valid (controls.csv)")
    if _written_since(tables / "regressions.csv", started):
        found = read_csv_table(tables / "regressions.csv")
        if history.exit_code(found):
            counting = found[found["counts"].astype(bool)]
            problems.append(f"{len(counting)} regression(s) against the previous night (regressions.csv):")
            problems += [f"  {r.experiment}/{r.variant}/{r.profiler} {r.metric}: {r.kind}: {r.note}"
                         for r in counting.itertuples()]
    for line in problems:
        print(f"leaklab nightly: {line}", file=sys.stderr)
    if not problems:
        print("leaklab nightly: no regression, controls passed", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
