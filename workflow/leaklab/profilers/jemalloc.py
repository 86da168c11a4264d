"""``jemalloc``: jemalloc's sampling heap profiler -- how to run it and read its dumps.

The process runs on jemalloc (preloaded) with profiling on: every ~2^lg_prof_sample
bytes allocated one allocation's stack is recorded, so the cost is small enough to
run full-length experiments, and the numbers are estimates (jeprof scales samples
back up).  jemalloc writes ``jeprof.<pid>.<seq>.i<n>.heap`` every 2^lg_prof_interval
bytes allocated and ``jeprof.<pid>.<seq>.f.heap`` at exit (what is still allocated
then: the leaks, with ``prof_leak`` also summarised on stderr).

Settings (all optional):

``lg_prof_sample`` (17)
    log2 of the mean bytes between samples (17 = 128 KiB).  Lower is more exact
    and slower; allocations much smaller than this are seen only statistically.
``lg_prof_interval`` (26)
    log2 of bytes allocated between interval dumps (26 = 64 MiB); -1 disables
    them (no timeline and no ``growth`` sites then).
``library`` (``/usr/lib/x86_64-linux-gnu/libjemalloc.so.2``)
    the jemalloc built with ``--enable-prof`` to preload.
``pythonmalloc`` (None)
    value for ``PYTHONMALLOC``; "malloc" sends Python objects through jemalloc
    too, None leaves pymalloc's arenas (mmap'd, invisible here) in place.

Artifacts: the ``jeprof.*.heap`` dumps, ``jemalloc.json`` (interpreter binary and
wall-clock start, written by :func:`wrap`), and from :func:`collect`
``jemalloc.collapsed`` (stacks still allocated at exit, flame-graph input),
``jemalloc.growth.collapsed`` and ``jemalloc.txt`` (jeprof's text report at exit).

jeprof symbolises with the interpreter binary and the mappings recorded in each
dump.  It names static functions of stripped libraries after the nearest exported
symbol: libffi's call trampolines show up as ``ffi_prep_go_closure`` and
``ffi_closure_free``; they are treated as glue like the rest of libffi.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from leaklab.profilers.errors import ParseError

if TYPE_CHECKING:
    import pandas as pd

LIBRARY = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
PREFIX = "jeprof"
META_NAME = "jemalloc.json"
DEFAULTS: dict = {
    "lg_prof_sample": 17,
    "lg_prof_interval": 26,
    "library": LIBRARY,
    "pythonmalloc": None,
}
JEPROF_TIMEOUT_S = 600

_DUMP = re.compile(rf"^{PREFIX}\.(\d+)\.(\d+)\.([ifmu])(\d*)\.heap$")


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    """Preload jemalloc with profiling into the measured process only.

    The command is unchanged (the runner keeps sampling the real process); the
    interpreter binary and a wall-clock start time go to ``jemalloc.json`` because
    jeprof needs the binary and dump mtimes are wall-clock.
    """
    s = {**DEFAULTS, **(settings or {})}
    rundir = Path(rundir)
    env = dict(env)
    preload = env.get("LD_PRELOAD", "").strip()
    env["LD_PRELOAD"] = f"{s['library']}:{preload}" if preload else str(s["library"])
    conf = (
        f"prof:true,prof_leak:true,prof_final:true,lg_prof_sample:{int(s['lg_prof_sample'])},"
        f"lg_prof_interval:{int(s['lg_prof_interval'])},prof_prefix:{rundir / PREFIX}"
    )
    existing = env.get("MALLOC_CONF", "").strip(",")
    env["MALLOC_CONF"] = f"{existing},{conf}" if existing else conf  # later options win
    if s["pythonmalloc"]:
        env["PYTHONMALLOC"] = str(s["pythonmalloc"])
    binary = shutil.which(cmd[0], path=env.get("PATH")) or cmd[0]
    meta = {
        "binary": os.path.realpath(binary),
        "start_time": time.time(),
        "settings": s,
        "command": list(cmd),
    }
    (rundir / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return list(cmd), env


def collect(rundir: Path, unit_marks: "pd.DataFrame | None" = None) -> dict[str, "pd.DataFrame"]:
    """Timeline from the interval dumps; ``leaked`` sites from the final dump,
    ``growth`` sites from the final dump less the first interval dump."""
    import pandas as pd

    from leaklab.profilers.stacks import empty_sites, timeline_frame

    rundir = Path(rundir)
    meta = read_meta(rundir)
    dumps = find_dumps(rundir)
    final = dumps["final"]
    if final is None:
        raise ParseError(f"{rundir / (PREFIX + '.<pid>.<seq>.f.heap')}: final jemalloc dump is missing "
                         "(the process was killed, or jemalloc was not preloaded)")
    start = float(meta["start_time"])
    rows = [(p.stat().st_mtime - start, heap_total_bytes(p), "jemalloc-interval") for p in dumps["intervals"]]
    rows.append((final.stat().st_mtime - start, heap_total_bytes(final), "jemalloc-final"))

    binary = meta["binary"]
    jobs = {
        "leaked": _start_jeprof(["--collapsed", binary, str(final)]),
        "text": _start_jeprof(["--text", binary, str(final)]),
    }
    if dumps["intervals"]:
        jobs["growth"] = _start_jeprof(["--collapsed", f"--base={dumps['intervals'][0]}", binary, str(final)])
    out = {name: _finish_jeprof(proc, final) for name, proc in jobs.items()}

    (rundir / "jemalloc.collapsed").write_text(out["leaked"])
    (rundir / "jemalloc.txt").write_text(out["text"])
    frames = [collapsed_sites(out["leaked"], "leaked")]
    if "growth" in out:
        (rundir / "jemalloc.growth.collapsed").write_text(out["growth"])
        frames.append(collapsed_sites(out["growth"], "growth"))
    top_sites = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else empty_sites()
    return {"heap_timeline": timeline_frame(rows), "top_sites": top_sites}


def read_meta(rundir: Path) -> dict:
    path = Path(rundir) / META_NAME
    try:
        meta = json.loads(path.read_text())
        meta["binary"], meta["start_time"]
    except FileNotFoundError:
        raise ParseError(f"{path}: missing (written by jemalloc.wrap; was this run profiled with jemalloc?)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ParseError(f"{path}: corrupt ({exc!r})") from None
    return meta


def find_dumps(rundir: Path) -> dict:
    """The measured process's interval dumps (in order) and its final dump.

    Children that inherited the preload dump too, under their own pids; the
    measured process is the one whose last dump is newest (it outlives them).
    """
    by_pid: dict[int, list[tuple[int, str, Path]]] = {}
    for path in Path(rundir).glob(f"{PREFIX}.*.heap"):
        match = _DUMP.match(path.name)
        if match:
            by_pid.setdefault(int(match.group(1)), []).append((int(match.group(2)), match.group(3), path))
    if not by_pid:
        return {"pid": None, "intervals": [], "final": None}
    pid = max(by_pid, key=lambda p: max(item[2].stat().st_mtime for item in by_pid[p]))
    dumps = sorted(by_pid[pid])
    finals = [path for _, kind, path in dumps if kind == "f"]
    return {
        "pid": pid,
        "intervals": [path for _, kind, path in dumps if kind == "i"],
        "final": finals[-1] if finals else None,
    }


def heap_total_bytes(path: Path) -> int:
    """In-use bytes of one ``heap_v2`` dump, scaled up for sampling as jeprof does.

    Equal to jeprof's ``Total: X B`` (its AdjustSamples: each stack's bytes divided
    by the probability ``1 - exp(-mean_size / period)`` of sampling one of its
    allocations), without jeprof's second-long symbolisation per dump.  Also the
    check that a dump is complete: it must end with its ``MAPPED_LIBRARIES``.
    """
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise ParseError(f"{path}: unreadable jemalloc dump ({exc})") from None
    lines = text.splitlines()
    header = re.match(r"^heap_v2/(\d+)$", lines[0].strip()) if lines else None
    if not header:
        raise ParseError(f"{path}: not a jemalloc heap_v2 profile (first line {lines[0][:40]!r})"
                         if lines else f"{path}: empty jemalloc dump")
    period = int(header.group(1))
    total = 0.0
    in_stack = False
    complete = False
    for line in lines[1:]:
        if line.startswith("MAPPED_LIBRARIES:"):
            complete = True
            break
        item = line.strip()
        if item.startswith("@"):
            in_stack = True
            continue
        match = re.match(r"^t\*: (\d+): (\d+) \[", item)
        if match and in_stack:
            count, nbytes = int(match.group(1)), int(match.group(2))
            if count and period:
                total += nbytes / (1.0 - math.exp(-(nbytes / count) / period))
            else:
                total += nbytes
            in_stack = False
        elif not item or item.startswith("t"):
            continue
        else:
            raise ParseError(f"{path}: unexpected line {item[:60]!r} in jemalloc dump")
    if not complete:
        raise ParseError(f"{path}: jemalloc dump is truncated (no MAPPED_LIBRARIES section)")
    if not text.endswith("\n"):
        raise ParseError(f"{path}: jemalloc dump is truncated (ends mid-line)")
    return int(total)


def collapsed_sites(text: str, kind: str) -> "pd.DataFrame":
    """Rank jeprof ``--collapsed`` stacks (outermost first, ``value`` last) by frame."""
    from leaklab.profilers.flamegraph import read_collapsed
    from leaklab.profilers.stacks import Frame, clean_func, rank_sites

    sites = []
    for names, nbytes in read_collapsed(text):
        frames = [Frame(clean_func(name)) for name in reversed(names) if name]
        sites.append((frames, nbytes, None))
    return rank_sites(sites, kind)


def _start_jeprof(args: list[str]) -> subprocess.Popen:
    if shutil.which("jeprof") is None:
        raise ParseError("jeprof not found on PATH; it is needed to read jemalloc dumps")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    return subprocess.Popen(["jeprof", "--show_bytes", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish_jeprof(proc: subprocess.Popen, dump: Path) -> str:
    try:
        out, err = proc.communicate(timeout=JEPROF_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ParseError(f"{dump}: jeprof took over {JEPROF_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise ParseError(f"{dump}: jeprof failed (exit {proc.returncode}): {tail}")
    return out
