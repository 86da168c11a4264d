"""``tracemalloc``: Python's own allocation tracer -- snapshots per unit of work.

Only the measured process can trace its Python allocations, so this profiler does
not wrap the command: it asks the process (through the environment) to start
tracemalloc and, at every unit mark, to dump a snapshot with :func:`dump_snapshot`.
It sees Python-level allocations with Python file:line tracebacks, and nothing a
C library allocates with its own malloc.

Settings (all optional):

``frames`` (10)
    frames kept per traceback (tracemalloc.start's ``nframe``); more costs more.
``warmup_units`` (1)
    units before steady state: ``growth`` compares the last snapshot with the
    first one at or after this unit, so caches filled in warm-up do not count.

Environment handed to the process: ``LEAKLAB_TRACEMALLOC`` (frames; read by
``leaklab.experiments.marks.start_tracing_if_asked``) and ``LEAKLAB_TRACEMALLOC_DIR``.
Artifacts: ``tracemalloc/unit_<N>.snap`` (``tracemalloc.Snapshot.dump``) and
``tracemalloc.json`` (settings, written by :func:`wrap`).

The measured process imports this module: keep it free of pandas at import time.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

from leaklab.profilers.errors import ParseError, saved_settings

if TYPE_CHECKING:
    import pandas as pd

FRAMES_ENV = "LEAKLAB_TRACEMALLOC"
DIR_ENV = "LEAKLAB_TRACEMALLOC_DIR"
SNAP_DIR = "tracemalloc"
META_NAME = "tracemalloc.json"
DEFAULTS: dict = {"frames": 10, "warmup_units": 1}
TOP_N = 10
STACK_FRAMES = 10

_SNAP = re.compile(r"^unit_(\d+)\.snap$")


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    """Leave the command alone; tell the process to trace and where to dump."""
    s = {**DEFAULTS, **(settings or {})}
    rundir = Path(rundir)
    snap_dir = rundir / SNAP_DIR
    snap_dir.mkdir(parents=True, exist_ok=True)
    (rundir / META_NAME).write_text(json.dumps({"settings": s}, indent=2) + "\n")
    env = dict(env)
    env[FRAMES_ENV] = str(int(s["frames"]))
    env[DIR_ENV] = str(snap_dir)
    return list(cmd), env


def dump_snapshot(unit: int) -> Path | None:
    """In the measured process: write ``unit_<unit>.snap`` if the runner asked for it.

    Does nothing (returns None) unless tracing is on and ``LEAKLAB_TRACEMALLOC_DIR``
    is set.  Writes to a temporary name first, so a process killed mid-dump leaves
    no half snapshot behind under the real name.
    """
    directory = os.environ.get(DIR_ENV)
    if not directory or not tracemalloc.is_tracing():
        return None
    path = Path(directory) / f"unit_{int(unit)}.snap"
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot = tracemalloc.take_snapshot()
    tmp = path.with_name(path.name + ".tmp")
    snapshot.dump(str(tmp))
    os.replace(tmp, path)
    return path


def collect(rundir: Path, unit_marks: "pd.DataFrame | None" = None) -> dict[str, "pd.DataFrame"]:
    """Traced bytes per unit snapshot, and the lines that grew after warm-up."""
    import pandas as pd

    from leaklab.profilers.stacks import empty_sites, timeline_frame

    rundir = Path(rundir)
    settings = _settings(rundir)
    snaps = find_snapshots(rundir)
    unit_t = _unit_times(unit_marks)
    rows = []
    for unit, path in snaps:
        t = unit_t.get(unit, float("nan")) if unit_t is not None else float(unit)
        rows.append((t, traced_bytes(load_snapshot(path)), "tracemalloc"))
    timeline = timeline_frame(rows)

    warmup = int(settings["warmup_units"])
    base = next(((u, p) for u, p in snaps if u >= warmup), None)
    last = snaps[-1]
    frames = []
    if base is not None and base[0] != last[0]:
        frames.append(growth_sites(load_snapshot(base[1]), load_snapshot(last[1])))
    if snaps:  # what is still traced at the last unit: retention shows here, not in growth
        last_snapshot = load_snapshot(last[1])
        live = growth_sites(tracemalloc.Snapshot([], last_snapshot.traceback_limit), last_snapshot)
        frames.append(live.assign(kind="leaked"))
    frames = [f for f in frames if len(f)]
    top_sites = pd.concat(frames, ignore_index=True) if frames else empty_sites()
    return {"heap_timeline": timeline, "top_sites": top_sites}


def find_snapshots(rundir: Path) -> list[tuple[int, Path]]:
    """``(unit, path)`` of every complete snapshot, in unit order."""
    directory = Path(rundir) / SNAP_DIR
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = _SNAP.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    if not found:
        raise ParseError(f"{directory / 'unit_<N>.snap'}: no tracemalloc snapshots (did the experiment "
                         "call dump_snapshot at its unit marks?)")
    return sorted(found)


def load_snapshot(path: Path) -> tracemalloc.Snapshot:
    """``Snapshot.load``, with a corrupt or truncated file reported by name."""
    try:
        snapshot = tracemalloc.Snapshot.load(str(path))
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, IndexError) as exc:
        raise ParseError(f"{path}: corrupt or truncated tracemalloc snapshot ({exc!r})") from None
    except OSError as exc:
        raise ParseError(f"{path}: unreadable tracemalloc snapshot ({exc})") from None
    if not isinstance(snapshot, tracemalloc.Snapshot):
        raise ParseError(f"{path}: not a tracemalloc snapshot (holds {type(snapshot).__name__})")
    return _without_tracer(snapshot)


def traced_bytes(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def growth_sites(base: tracemalloc.Snapshot, last: tracemalloc.Snapshot, top_n: int = TOP_N) -> "pd.DataFrame":
    """The lines whose traced bytes grew most from ``base`` to ``last``.

    Grouped by line (``compare_to(..., 'lineno')``); the stack is the traceback that
    grew most among those whose innermost frame is that line.
    """
    import pandas as pd

    from leaklab.profilers.stacks import empty_sites

    by_line = [d for d in last.compare_to(base, "lineno") if d.size_diff > 0]
    by_line.sort(key=lambda d: (-d.size_diff, str(d.traceback[0])))
    by_line = by_line[:top_n]
    if not by_line:
        return empty_sites()
    wanted = {_where(d.traceback[0]) for d in by_line}
    best_stack: dict[str, tuple[int, str]] = {}
    for diff in last.compare_to(base, "traceback"):
        innermost = _where(diff.traceback[-1])  # tracebacks iterate oldest frame first
        if innermost in wanted and (innermost not in best_stack or diff.size_diff > best_stack[innermost][0]):
            frames = [_where(frame) for frame in reversed(diff.traceback)][:STACK_FRAMES]
            best_stack[innermost] = (diff.size_diff, ";".join(frames))
    frames_ = [_where(d.traceback[0]) for d in by_line]
    return pd.DataFrame({
        "rank": pd.Series(range(1, len(by_line) + 1), dtype="int64"),
        "bytes": pd.Series([d.size_diff for d in by_line], dtype="int64"),
        "count": pd.Series([d.count_diff for d in by_line], dtype="Int64"),
        "frame": pd.Series(frames_, dtype="object"),
        "native_caller": pd.Series([None] * len(by_line), dtype="object"),
        "stack": pd.Series([best_stack.get(f, (0, f))[1] for f in frames_], dtype="object"),
        "kind": pd.Series(["growth"] * len(by_line), dtype="object"),
    })


def _where(frame: tracemalloc.Frame) -> str:
    return f"{frame.filename}:{frame.lineno}"


def _without_tracer(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    """Drop what tracemalloc and this module allocate while taking the snapshot."""
    return snapshot.filter_traces([
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, os.path.join("*", "leaklab", "profilers", "tracemalloc.py")),
        tracemalloc.Filter(False, os.path.join("*", "leaklab", "experiments", "marks.py")),
    ])


def _unit_times(unit_marks: "pd.DataFrame | None") -> dict[int, float] | None:
    """Unit number -> t (s since run start) from the ``unit`` marks; None without marks."""
    if unit_marks is None or not {"t", "unit", "phase"} <= set(unit_marks.columns):
        return None
    marks = unit_marks[(unit_marks["phase"] == "unit") & unit_marks["unit"].notna()]
    return {int(unit): float(t) for unit, t in zip(marks["unit"], marks["t"])}


def _settings(rundir: Path) -> dict:
    return saved_settings(Path(rundir) / META_NAME, DEFAULTS)
