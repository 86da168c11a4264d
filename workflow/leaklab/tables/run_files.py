"""What a run directory holds, whether it is still what the runner wrote, and reading it.

The runner records a checksum of every file it leaves (``meta.json`` ``artifacts``);
the aggregation re-checks them, so a file damaged after the run is noticed rather than
read as if it were a measurement: damaged samples or marks make the run a
``parse_error``; a damaged table derived from a profiler's file is derived again from
that file (aside, in a scratch copy: the aggregation never writes into a run
directory, whose files are the run job's outputs); a damaged profiler file makes the
run's ``profile_status`` a ``parse_error``.  Every error names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from leaklab.profilers import flamegraph
from leaklab.tables.table_names import PROFILE_TABLES  # not profiler_tables: every run job imports this module, and that one imports scipy

MEASURED = ("samples.parquet", "marks.parquet")
NOT_CHECKED = ("meta.json", "run.log", "marks.jsonl", "units.txt")  # the runner's inputs, or its own log


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(rundir: Path) -> dict[str, str]:
    """sha256 of every file the run left (its work directory aside), by relative path."""
    rundir = Path(rundir)
    return {str(p.relative_to(rundir)): _sha256(p) for p in sorted(rundir.rglob("*"))
            if p.is_file() and p.name not in NOT_CHECKED and p.relative_to(rundir).parts[0] != "work"}


def damaged(rundir: Path, meta: dict) -> list[str]:
    """Files recorded in ``meta.json`` that are missing or changed since the run."""
    out = []
    for name, digest in (meta.get("artifacts") or {}).items():
        path = Path(rundir) / name
        if not path.is_file() or _sha256(path) != digest:
            out.append(name)
    return out


def read_run(rundir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A run directory's meta, samples and marks; ValueError naming the file if any is
    unreadable, not what the runner wrote, or lacks what the tables need."""
    rundir = Path(rundir)
    current = rundir / "meta.json"
    try:
        meta = json.loads(current.read_text())
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k), (str, int)) for k in
                                                 ("experiment", "variant", "profiler", "replicate")):
            raise ValueError("not a run's meta (experiment, variant, profiler, replicate)")
        changed = damaged(rundir, meta)
        for name in MEASURED:
            current = rundir / name
            if name in changed:
                raise ValueError("changed since the run (checksum in meta.json)")
        current = rundir / "samples.parquet"
        samples = pd.read_parquet(current)
        current = rundir / "marks.parquet"
        marks = pd.read_parquet(current)
        if not {"t", "unit", "phase"} <= set(marks.columns) or "t" not in samples.columns:
            raise ValueError("columns missing")
    except (OSError, ValueError) as err:
        raise ValueError(f"{current}: {err}") from err
    return meta, samples, marks


def collect_profile(profiler_module, rundir: Path, mark_frame: pd.DataFrame) -> tuple[str, str | None]:
    """Read the profiler's native artifacts into ``<table>.parquet`` files in the run
    directory.  A missing, truncated or corrupt artifact is recorded, not raised: the
    run's samples and marks stay usable and the aggregation goes on."""
    from leaklab.profilers.errors import ParseError

    if not hasattr(profiler_module, "collect"):
        return "none", None
    try:
        frames = profiler_module.collect(rundir, mark_frame)
    except (ParseError, OSError, ValueError) as err:
        return "parse_error", f"{type(err).__name__}: {err}"
    for name, frame in frames.items():
        frame.to_parquet(rundir / f"{name}.parquet", index=False)
    for collapsed in sorted(rundir.glob("*.collapsed")):
        what = "growth between the first and last dumps" if ".growth." in collapsed.name else "bytes still allocated at exit"
        flamegraph.write(collapsed, collapsed.with_suffix(".svg"), f"{collapsed.stem}: {what}")
    return "ok", None


def read_profile(rundir: Path, meta: dict, marks: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], str, str | None]:
    """The profiler tables of a run, its ``profile_status`` and error.

    Reading never writes into the run directory (the aggregation only reads what the run
    job wrote): a derived table that is damaged or unreadable is derived again from the
    profiler's own file in a scratch copy of the run, every time, so a repair never
    changes a file the checksums cover and is never thrown away by a later aggregation.
    A changed file that the derivation does not write (the profiler's own output) is a
    ``parse_error``."""
    rundir = Path(rundir)
    status, error = meta.get("profile_status", "none"), meta.get("profile_error")
    changed = [name for name in damaged(rundir, meta) if name not in MEASURED]
    if not changed:
        try:
            return _read_tables(rundir), status, error
        except (OSError, ValueError) as err:
            return _derive_aside(rundir, meta, marks, [], f"{type(err).__name__}: {err}")
    return _derive_aside(rundir, meta, marks, changed, f"{', '.join(changed)} changed since the run")


# what a derivation never needs: the measurement itself, the process's own output, its files
NOT_COPIED = (*MEASURED, *NOT_CHECKED, "work")


def _derive_aside(rundir: Path, meta: dict, marks: pd.DataFrame, changed: list[str],
                  why: str) -> tuple[dict[str, pd.DataFrame], str, str | None]:
    """The profiler tables derived again in a scratch copy of ``rundir``; ``changed``
    files the derivation did not write itself are the profiler's own, damaged."""
    import shutil
    import tempfile

    from leaklab import profilers

    with tempfile.TemporaryDirectory(prefix="leaklab-derive-") as scratch:
        scratch = Path(scratch)
        for path in rundir.iterdir():
            if path.name in NOT_COPIED:
                continue
            if path.is_dir():
                shutil.copytree(path, scratch / path.name, symlinks=True)
            elif path.is_file():
                shutil.copy2(path, scratch / path.name)
        before = {str(p.relative_to(scratch)): p.stat().st_mtime_ns for p in scratch.rglob("*") if p.is_file()}
        status, error = collect_profile(profilers.load(meta["profiler"]), scratch, marks)
        written = {str(p.relative_to(scratch)) for p in scratch.rglob("*")
                   if p.is_file() and before.get(str(p.relative_to(scratch))) != p.stat().st_mtime_ns}
        if status != "ok":  # the profiler's own file no longer reads
            return {}, status, "; ".join(filter(None, [
                f"{', '.join(changed)}: changed since the run (checksum in meta.json)" if changed else None, error]))
        raw = [name for name in changed if name not in written]
        if raw:
            return {}, "parse_error", f"{', '.join(raw)}: changed since the run (checksum in meta.json)"
        try:
            return _read_tables(scratch), "ok", f"derived again from the profiler's file ({why})"
        except (OSError, ValueError) as again:
            return {}, "parse_error", f"{type(again).__name__}: {again}"


def _read_tables(rundir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(rundir / f"{name}.parquet")
            for name in PROFILE_TABLES if (rundir / f"{name}.parquet").exists()}


def write_unmeasured(outdir: Path, run: dict, status: str, reason: str) -> dict:
    """The run directory of a run that could not start (its setup step failed, say):
    ``meta.json`` with ``status`` and ``reason``, and empty samples, marks and mappings,
    so the job ends like any run and the rest of the pipeline goes on without it."""
    from leaklab.process import mappings
    from leaklab.process.sampler import SAMPLE_COLUMNS

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "meta.json").unlink(missing_ok=True)  # written last, as the runner does
    pd.DataFrame(columns=list(SAMPLE_COLUMNS)).astype("float64").to_parquet(outdir / "samples.parquet", index=False)
    pd.DataFrame({"t": pd.Series(dtype="float64"), "unit": pd.Series(dtype="Int64"),
                  "phase": pd.Series(dtype="object")}).to_parquet(outdir / "marks.parquet", index=False)
    mappings.frame([]).to_parquet(outdir / "mappings.parquet", index=False)
    meta = {**run, "status": status, "stop_reason": status, "stopped_at_unit": None, "exit_code": None, "wall_s": 0.0,
            "n_samples": 0, "n_units": 0, "peak_rss_bytes": 0, "profile_status": "none", "profile_error": None,
            "error": reason, "log_tail": [reason], "artifacts": checksums(outdir)}
    (outdir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return meta


class SpaceReserve:
    """Room kept aside on the results' filesystem for a run job's last words.

    A measured program that fills the disk would leave its job nothing to write the
    status and the job log with.  The job holds this much allocated (a file beside its
    log) while the program runs, and frees it to record what happened."""

    BYTES = 8 * 2**20

    def __init__(self, path: Path, nbytes: int = BYTES):
        self.path = Path(path)
        try:
            with open(self.path, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, nbytes)
        except OSError:  # no room even now: nothing kept, nothing to free
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

