"""``heaptrack``: heaptrack's allocation tracer -- how to run it and read its report.

heaptrack preloads a library that records every malloc/free with its stack and
pipes it to ``heaptrack_interpret`` (compressed on the fly), so it counts calls as
well as bytes, and sees exactly what is still allocated at exit.  It costs a few
times the process's run time (unwinding every allocation) but much less than
valgrind.  Note the runner's process tree then also holds heaptrack's shell
wrapper and ``heaptrack_interpret``.

Settings (all optional):

``print_limit`` (100)
    backtraces ``heaptrack_print`` lists per section (``-n``); sites are built from
    these, so a leak spread thinner than the 100th backtrace is not named.
``pythonmalloc`` (None)
    value for ``PYTHONMALLOC``; "malloc" makes Python objects visible (pymalloc
    takes its arenas from mmap, which heaptrack does not track).

Artifacts: ``heaptrack.zst`` (or ``.gz``; heaptrack appends the compressor's
suffix to ``-o``), ``heaptrack.json`` (settings), and from :func:`collect`
``heaptrack.txt`` (heaptrack_print's report), ``heaptrack.collapsed`` (leaked
bytes per stack, flame-graph input) and ``heaptrack.massif`` (massif-format
timeline, read with :func:`leaklab.profilers.massif.parse_massif`).

heaptrack_print prints sizes with three or four significant digits (``13.11M``,
1000-based), so site bytes are within ~0.1% of the truth, not exact.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from leaklab.profilers.errors import ParseError, saved_settings

if TYPE_CHECKING:
    import pandas as pd

OUT_STEM = "heaptrack"
META_NAME = "heaptrack.json"
DEFAULTS: dict = {"print_limit": 100, "pythonmalloc": None}
PRINT_TIMEOUT_S = 600

_DATA_FILE = re.compile(r"^heaptrack(\..+)?\.(zst|gz)$")
_SIZE = re.compile(r"^(-?\d+(?:\.\d+)?)([BKMGTPEZY])$")
_UNITS = {u: 1000 ** i for i, u in enumerate("BKMGTPEZY")}
_ENTRY = {
    "peak": re.compile(r"^(\S+) peak memory consumed over (\d+) calls from$"),
    "leaked": re.compile(r"^(\S+) leaked over (\d+) calls from$"),
}
_SECTIONS = {"PEAK MEMORY CONSUMERS": "peak", "MEMORY LEAKS": "leaked"}
_SUMMARY = {
    "peak_bytes": re.compile(r"^peak heap memory consumption: (\S+)$"),
    "leaked_bytes": re.compile(r"^total memory leaked: (\S+)$"),
    "allocations": re.compile(r"^calls to allocation functions: (\d+)"),
    "temporary_allocations": re.compile(r"^temporary memory allocations: (\d+)"),
    "peak_rss_bytes": re.compile(r"^peak RSS \(including heaptrack overhead\): (\S+)$"),
    "runtime_s": re.compile(r"^total runtime: ([\d.]+)s\.?$"),
}


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    """Run ``cmd`` under ``heaptrack -o rundir/heaptrack``."""
    s = {**DEFAULTS, **(settings or {})}
    rundir = Path(rundir)
    (rundir / META_NAME).write_text(json.dumps({"settings": s, "command": list(cmd)}, indent=2) + "\n")
    env = dict(env)
    if s["pythonmalloc"]:
        env["PYTHONMALLOC"] = str(s["pythonmalloc"])
    return ["heaptrack", "-o", str(rundir / OUT_STEM), *cmd], env


def collect(rundir: Path, unit_marks: "pd.DataFrame | None" = None) -> dict[str, "pd.DataFrame"]:
    """``leaked`` and ``peak`` sites, a one-row ``summary``, and the massif-format timeline."""
    import pandas as pd

    from leaklab.profilers.massif import massif_timeline, parse_massif
    from leaklab.profilers.stacks import empty_sites, timeline_frame

    rundir = Path(rundir)
    data = find_data_file(rundir)
    check_complete(data)
    limit = int(_settings(rundir)["print_limit"])
    report = run_print(data, rundir, limit)
    (rundir / "heaptrack.txt").write_text(report)
    parsed = parse_report(report, data)

    frames = [sites for sites in (parsed["peak"], parsed["leaked"]) if len(sites)]
    top_sites = pd.concat(frames, ignore_index=True) if frames else empty_sites()
    massif_path = rundir / "heaptrack.massif"
    if massif_path.exists() and massif_path.stat().st_size:
        timeline = massif_timeline(parse_massif(massif_path), source="heaptrack")
    else:
        timeline = timeline_frame([])  # no allocations between timestamps: nothing to plot
    return {"heap_timeline": timeline, "top_sites": top_sites, "summary": parsed["summary"]}


def find_data_file(rundir: Path) -> Path:
    """heaptrack's recording: ``heaptrack.zst``/``.gz`` (newest, if several)."""
    found = [p for p in Path(rundir).iterdir() if _DATA_FILE.match(p.name)] if Path(rundir).is_dir() else []
    if not found:
        raise ParseError(f"{Path(rundir) / (OUT_STEM + '.zst')}: heaptrack data file is missing "
                         "(no heaptrack.*.zst or .gz in the run directory)")
    return max(found, key=lambda p: p.stat().st_mtime)


def check_complete(data: Path) -> None:
    """Fail on a recording cut short (a run killed with its process group).

    heaptrack_print reads a truncated stream without complaint and reports only
    what it got, so the compressed stream is checked end to end first, with the
    same compressor heaptrack wrote it with (``zstd``) or gzip.
    """
    tester = ["zstd", "-t", "-q", str(data)] if data.suffix == ".zst" else ["gzip", "-t", str(data)]
    if shutil.which(tester[0]) is None:
        return  # cannot check; heaptrack_print's summary check still applies
    proc = subprocess.run(tester, capture_output=True, text=True, errors="replace", timeout=PRINT_TIMEOUT_S)
    if proc.returncode != 0:
        why = " | ".join(proc.stderr.strip().splitlines()[-2:])
        raise ParseError(f"{data}: heaptrack recording is truncated or corrupt ({tester[0]} -t: {why})")


def run_print(data: Path, rundir: Path, limit: int) -> str:
    """One heaptrack_print pass: text report (stdout), flame-graph stacks, massif file."""
    if shutil.which("heaptrack_print") is None:
        raise ParseError(f"{data}: heaptrack_print not found on PATH")
    cmd = [
        "heaptrack_print", "-f", str(data),
        "--print-leaks", "1", "--print-peaks", "1", "--print-allocators", "0", "--print-temporary", "0",
        "--merge-backtraces", "0", "--peak-limit", str(limit),
        "--print-flamegraph", str(rundir / "heaptrack.collapsed"), "--flamegraph-cost-type", "leaked",
        "--print-massif", str(rundir / "heaptrack.massif"), "--massif-detailed-freq", "0",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=PRINT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ParseError(f"{data}: heaptrack_print took over {PRINT_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise ParseError(f"{data}: heaptrack_print failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def parse_size(text: str) -> int:
    """``"13.11M"`` -> 13110000: heaptrack's 1000-based sizes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"not a heaptrack size: {text!r}")
    return int(round(float(match.group(1)) * _UNITS[match.group(2)]))


def parse_report(text: str, source: Path | str = "<heaptrack_print output>") -> dict:
    """Sites and summary from ``heaptrack_print --merge-backtraces 0`` output.

    Each entry is ``<size> leaked over <n> calls from`` (or ``peak memory consumed``)
    followed by its backtrace, innermost first: ``  func`` with ``    at file:line``
    and ``    in library`` under it.  A report without the closing summary lines
    means heaptrack_print could not read the whole recording: :class:`ParseError`.
    """
    from leaklab.profilers.stacks import Frame, clean_func, rank_sites

    import pandas as pd

    entries: dict[str, list] = {"peak": [], "leaked": []}
    summary: dict[str, float | int | None] = {}
    section = None
    current: list | None = None
    frame: dict | None = None

    def flush_frame() -> None:
        nonlocal frame
        if frame is not None and current is not None:
            current[0].append(Frame(clean_func(frame["func"]), frame["file"], frame["obj"]))
        frame = None

    for line in text.splitlines():
        stripped = line.strip()
        if not line.startswith(" "):
            flush_frame()
            current = None
            if stripped in _SECTIONS:
                section = _SECTIONS[stripped]
                continue
            if stripped.isupper() and stripped:
                section = None  # a section we did not ask to parse
                continue
            matched = False
            for key, pattern in _SUMMARY.items():
                m = pattern.match(stripped)
                if m:
                    value = m.group(1)
                    summary[key] = float(value) if key == "runtime_s" else (
                        int(value) if value.isdigit() else parse_size(value))
                    matched = True
            if matched or section is None:
                continue
            m = _ENTRY[section].match(stripped)
            if m:
                current = [[], parse_size(m.group(1)), int(m.group(2))]
                entries[section].append(current)
            continue
        if current is None:
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent <= 2:
            flush_frame()
            frame = {"func": stripped, "file": "", "obj": ""}
        elif frame is not None and stripped.startswith("at "):
            frame["file"] = stripped[3:]
        elif frame is not None and stripped.startswith("in "):
            frame["obj"] = stripped[3:]
    flush_frame()

    if "peak_bytes" not in summary or "leaked_bytes" not in summary:
        raise ParseError(f"{source}: heaptrack report lacks its summary (recording truncated or corrupt)")
    columns = ("peak_bytes", "leaked_bytes", "allocations", "temporary_allocations", "peak_rss_bytes", "runtime_s")
    row = {key: summary.get(key) for key in columns}
    summary_frame = pd.DataFrame([row]).astype({
        "peak_bytes": "Int64", "leaked_bytes": "Int64", "allocations": "Int64",
        "temporary_allocations": "Int64", "peak_rss_bytes": "Int64", "runtime_s": "float64",
    })
    return {
        "peak": rank_sites([tuple(e) for e in entries["peak"]], "peak"),
        "leaked": rank_sites([tuple(e) for e in entries["leaked"]], "leaked"),
        "summary": summary_frame,
    }


def _settings(rundir: Path) -> dict:
    return saved_settings(Path(rundir) / META_NAME, DEFAULTS)
