"""The nightly command: a fresh measurement, appended to the history, judged.

    leaklab nightly [--directory DIR] [snakemake options ...]   (or python -m leaklab.nightly)

Runs the pipeline with ``profiles/nightly`` (every measurement re-run, nightly
settings), which lists regressions against the previous night and then records the
night in the history store (once per run set).  Exits non-zero when the pipeline
failed (a run did not end ok), a planted control failed (the night's verdicts are
invalid), or a regression counts; says which on stderr.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from leaklab import controls, history, lock
from leaklab.tables import read_csv_table

PROJECT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="leaklab nightly", description=__doc__.splitlines()[0],
        usage="leaklab nightly [-h] [--directory DIRECTORY] [snakemake options ...]",
        epilog="Every other option passes through to Snakemake (--configfile, --config, ...): "
               "`leaklab run --snakemake-help` lists them all.")
    parser.add_argument("--directory", type=Path, default=Path("."), help="where results/ lives")
    args, snakemake_args = parser.parse_known_args(argv)
    lock.clear_stale(args.directory)
    pipeline = subprocess.run([
        sys.executable, "-m", "snakemake", "--snakefile", str(PROJECT / "Snakefile"),
        "--directory", str(args.directory), "--workflow-profile", str(PROJECT / "profiles" / "nightly"),
        *snakemake_args, "nightly",
    ])
    tables = args.directory / "results" / "tables"
    night = args.directory / "results" / "nightly" / "night.json"
    if night.exists():
        recorded = json.loads(night.read_text())
        print(f"leaklab nightly: night {recorded['night_id']} "
              f"{'recorded' if recorded['recorded_now'] else 'was already recorded'} in {recorded['store']}",
              file=sys.stderr)
    problems = []
    if pipeline.returncode != 0:
        problems.append(f"the pipeline exited {pipeline.returncode} (see runs.csv and the log above)")
    if (tables / "controls.csv").exists() and controls.all_passed(read_csv_table(tables / "controls.csv")) is False:
        problems.append("a planted control failed: tonight's verdicts are not valid (controls.csv)")
    if (tables / "regressions.csv").exists():
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
