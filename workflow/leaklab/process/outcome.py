"""What the last pipeline left that is not a result: runs that did not end ok, steps to retry.

Read by the Snakefile (no pandas: a dry run or a no-op re-run should not pay for it)
and by ``leaklab run`` before and after Snakemake.  Two rules follow from it:

- the exit status says the same on every re-run: a pipeline whose ``runs.csv`` lists a
  run that did not end ``ok`` exits 1, also when there was nothing left to do (Snakemake
  runs no ``onsuccess`` handler then, so ``leaklab run`` checks after it);
- what failed for a reason that is not the measured program's outcome is done again on
  the next run: a run the aggregation could not read (``parse_error``: its files were
  lost or changed after the run) is measured again, and a ``setup`` step that did not
  end ``ok`` runs again (the user fixes their build; nothing tells Snakemake), and so
  does a fixture build that failed: ``leaklab run`` and ``leaklab nightly`` give them
  to Snakemake's ``--forcerun`` and say so.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

RUNS_CSV = Path("results/tables/runs.csv")
REMEASURED = ("parse_error",)  # statuses that say nothing about the program: measure again


def _runs(directory: Path) -> list[dict]:
    try:
        with open(Path(directory) / RUNS_CSV, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def failed_runs(directory: Path = Path(".")) -> list[str]:
    """Runs whose status is not ok, as ``path: status`` lines (from runs.csv)."""
    return [f"{r.get('experiment')}/{r.get('variant')}/{r.get('profiler')}/rep{r.get('replicate')}: {r.get('status')}"
            for r in _runs(directory) if r.get("status") != "ok"]


def report_failed(directory: Path = Path(".")) -> int:
    """Say which runs did not end ok (stderr); 1 if any did, else 0."""
    import sys

    failed = failed_runs(directory)
    if failed:
        print(f"leaklab: {len(failed)} run(s) did not end ok:\n  " + "\n  ".join(failed), file=sys.stderr)
    return 1 if failed else 0


def remeasure(directory: Path) -> list[str]:
    """``meta.json`` of every run the last aggregation recorded as not readable (and
    whose directory is still there: a run no longer configured is left alone)."""
    paths = (f"results/runs/{r.get('experiment')}/{r.get('variant')}/{r.get('profiler')}/rep{r.get('replicate')}"
             for r in _runs(directory) if r.get("status") in REMEASURED)
    return sorted(f"{path}/meta.json" for path in paths if (Path(directory) / path).is_dir())


FAILED_FIXTURE = "FAILED.json"  # in a fixture's directory: its build did not end ok (and why)


def setup_status(path: Path) -> dict:
    """A setup step's recorded outcome; a missing or unreadable record is not ``ok``."""
    try:
        outcome = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        return {"status": "failed", "reason": f"{path}: {err}"}
    return outcome if isinstance(outcome, dict) and "status" in outcome else \
        {"status": "failed", "reason": f"{path}: not a setup record"}


def prerequisite_failure(setup: str | None, fixture: str | None) -> tuple[str, str] | None:
    """Why a run cannot be measured: ``(status, reason)`` when its setup step or its
    fixture build did not end ok, else None."""
    if setup is not None:
        record = setup_status(Path(setup))
        if record["status"] != "ok":
            return "setup_failed", f"setup {record['status']}: {record.get('reason') or ''}".strip()
    if fixture is not None and (Path(fixture) / FAILED_FIXTURE).exists():
        record = setup_status(Path(fixture) / FAILED_FIXTURE)
        return "fixture_failed", f"fixture build {record['status']}: {record.get('reason') or ''}".strip()
    return None


def retried_steps(directory: Path) -> list[str]:
    """The setup records and fixture builds that did not end ok: run again."""
    directory = Path(directory)
    results = directory / "results"
    found = [str(p.relative_to(directory)) for p in sorted(results.glob("commands/*/setup.json"))
             if setup_status(p)["status"] != "ok"]
    found += [str(p.parent.relative_to(directory)) for p in sorted(results.glob(f"fixtures/*/*/{FAILED_FIXTURE}"))]
    return found


def unfinished(directory: Path) -> list[str]:
    """What the next pipeline run does again, as ``--forcerun`` targets (see the module)."""
    return [*remeasure(directory), *retried_steps(directory)]
