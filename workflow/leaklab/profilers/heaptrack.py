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
``growth_from_unit`` (None: off)
    also read ``growth`` sites from the recording itself: the bytes each stack
    holds live at every unit mark from this unit on, fitted against the unit
    (Theil-Sen), so memory that grows with the units while the process runs and is
    freed before exit (a cache, a queue, anything a ``close()`` releases), which the
    ``leaked`` sites never show, is named with its growth per unit.  Costs one more
    pass over the recording (about 15 s per 40 million events here).

Artifacts: ``heaptrack.zst`` (or ``.gz``; heaptrack appends the compressor's
suffix to ``-o``), ``heaptrack.json`` (settings), and from :func:`collect`
``heaptrack.txt`` (heaptrack_print's report), ``heaptrack.collapsed`` (leaked
bytes per stack, flame-graph input) and ``heaptrack.massif`` (massif-format
timeline, read with :func:`leaklab.profilers.massif.parse_massif`); with
``growth_from_unit``, ``heaptrack.growth.tsv`` (every growing site's bytes per unit,
its fit and its live allocations).

heaptrack_print's own massif output has no usable call trees here (its detailed
snapshots put everything "below threshold"), and its ``-d`` diff compares what is
left at exit, so growth that is freed at exit needs the recording itself: the
decompressed stream is heaptrack_interpret's text format, one event a line
(``a <size> <trace>`` declares an allocation kind, ``+``/``- <kind>`` allocate and
free one, ``c <ms>`` advances the clock, ``t <ip> <parent>`` and ``i <ip> <module>
[<func> <file> <line>]...`` give the stacks, ``s <len> <text>`` the strings).
Its clock starts when heaptrack's library starts in the process, a fraction of a
second after the runner's clock that the unit marks use.

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
DEFAULTS: dict = {"print_limit": 100, "pythonmalloc": None, "growth_from_unit": None}
GROWTH_MAX_POINTS = 400  # unit marks a growth fit uses at most (evenly thinned)
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
    start = _settings(rundir)["growth_from_unit"]
    if start is not None and unit_marks is not None:
        grown = growth_sites(data, unit_marks, int(start), rundir / "heaptrack.growth.tsv")
        if len(grown):
            frames.append(grown)
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


def _decompress(data: Path) -> list[str]:
    return ["zstd", "-dc", str(data)] if data.suffix == ".zst" else ["gzip", "-dc", str(data)]


def live_by_kind(data: Path, times: "list[float]") -> dict:
    """Live allocations of every allocation kind (size and trace) at each of ``times``
    (seconds on heaptrack's clock, ascending), and the stacks to name them.

    Returns ``{"sizes", "traces", "live"}`` (``live`` one row per time, one column
    per kind, a count) and ``frames(trace)`` giving a trace's frames innermost first.
    """
    import numpy as np

    from leaklab.profilers.stacks import Frame, clean_func

    strings: list[str] = [""]
    ips: list[tuple[int, list[tuple[int, int, int]]]] = [(0, [])]
    traces: list[tuple[int, int]] = [(0, 0)]
    sizes: list[int] = []
    kinds: list[int] = []
    live: list[int] = []
    rows: list = []
    pending = list(times)
    try:
        proc = subprocess.Popen(_decompress(data), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, errors="replace")
    except OSError as exc:
        raise ParseError(f"{data}: cannot decompress the heaptrack recording ({exc})") from None
    with proc:
        for line in proc.stdout:
            tag = line[:1]
            if tag == "+":
                live[int(line[2:], 16)] += 1
            elif tag == "-":
                live[int(line[2:], 16)] -= 1
            elif tag == "c":
                now = int(line[2:], 16) / 1000.0
                while pending and now >= pending[0]:
                    rows.append(list(live))
                    pending.pop(0)
            elif tag == "a":
                _, size, trace = line.split()
                sizes.append(int(size, 16))
                kinds.append(int(trace, 16))
                live.append(0)
            elif tag == "t":
                _, ip, parent = line.split()
                traces.append((int(ip, 16), int(parent, 16)))
            elif tag == "i":
                parts = [int(x, 16) for x in line.split()[1:]]
                rest = parts[2:]
                found = []
                if rest:
                    found.append((rest[0], rest[1], rest[2]) if len(rest) >= 3 else (rest[0], 0, 0))
                    found.extend((rest[k], rest[k + 1], rest[k + 2]) for k in range(3, len(rest) - 2, 3))
                ips.append((parts[1], found))
            elif tag == "s":
                strings.append(line.rstrip("\n").split(" ", 2)[2] if line.count(" ") >= 2 else "")
    if proc.returncode:
        raise ParseError(f"{data}: decompressing the heaptrack recording failed (exit {proc.returncode})")
    while pending:  # times past the recording's last clock tick: the end of the recording
        rows.append(list(live))
        pending.pop(0)
    width = len(sizes)
    matrix = np.array([row + [0] * (width - len(row)) for row in rows], dtype=np.int64).reshape(len(rows), width)

    def frames(trace: int) -> list:
        out = []
        seen = 0
        while trace and seen < 10_000:
            ip, trace = traces[trace]
            module, located = ips[ip]
            obj = strings[module] if module < len(strings) else ""
            if not located:
                out.append(Frame("???", "", obj))
            for func, file, line_no in located:
                where = f"{strings[file]}:{line_no}" if file else ""
                out.append(Frame(clean_func(strings[func]) or "???", where, obj))
            seen += 1
        return out

    return {"sizes": np.array(sizes, dtype=np.int64), "traces": np.array(kinds, dtype=np.int64),
            "live": matrix, "frames": frames}


def theil_sen(x, y) -> float:
    """Median of the slopes between all pairs of points with different x."""
    import numpy as np

    i, j = np.triu_indices(len(x), k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    return float(np.median((y[j] - y[i])[keep] / dx[keep])) if keep.any() else float("nan")


def growth_sites(data: Path, unit_marks: "pd.DataFrame", from_unit: int, table: Path | None = None) -> "pd.DataFrame":
    """Sites whose live bytes grow with the units, from the recording itself.

    Live bytes per stack are read at every unit mark from ``from_unit`` on, summed
    per site (the stack's named frame, as ``rank_sites`` merges them), and fitted
    against the unit (Theil-Sen).  ``bytes`` is that slope times the units the
    window spans (the fitted growth over the window); ``count`` the change in live
    allocations from the window's first mark to its last.  Only sites that grow are
    kept.  ``table`` receives every growing site's slope per unit.
    """
    import numpy as np

    from leaklab.profilers.stacks import empty_sites, pick_frame, rank_sites, stack_summary

    marks = unit_marks[(unit_marks["phase"] == "unit") & unit_marks["unit"].notna()].sort_values("t")
    marks = marks[marks["unit"] >= from_unit]
    if marks["unit"].nunique() < 3:
        return empty_sites()
    if len(marks) > GROWTH_MAX_POINTS:
        marks = marks.iloc[np.unique(np.linspace(0, len(marks) - 1, GROWTH_MAX_POINTS).round().astype(int))]
    units = marks["unit"].to_numpy(float)
    rec = live_by_kind(data, [float(t) for t in marks["t"]])
    live_bytes = rec["live"] * rec["sizes"]  # one row per mark, one column per allocation kind
    by_label: dict[str, dict] = {}
    frames_of: dict[int, list] = {}
    for column, trace in enumerate(rec["traces"]):
        if not live_bytes[:, column].any():
            continue
        trace = int(trace)
        if trace not in frames_of:
            frames_of[trace] = rec["frames"](trace)
        frames = frames_of[trace]
        if not frames:
            continue
        label = frames[pick_frame(frames)].label()
        entry = by_label.setdefault(label, {"columns": [], "traces": {}})
        entry["columns"].append(column)
        entry["traces"].setdefault(trace, []).append(column)
    span = float(units[-1] - units[0])
    sites, rows = [], []
    for label, entry in by_label.items():
        series = live_bytes[:, entry["columns"]].sum(axis=1).astype(float)
        slope = theil_sen(units, series)
        if not slope > 0:
            continue
        counts = rec["live"][:, entry["columns"]].sum(axis=1)
        heaviest = max(entry["traces"].items(),
                       key=lambda item: theil_sen(units, live_bytes[:, item[1]].sum(axis=1).astype(float)))[0]
        frames = frames_of[heaviest]
        fitted = np.polyval(np.polyfit(units, series, 1), units)
        spread = series.var()
        r2 = 1 - ((series - fitted) ** 2).mean() / spread if spread else float("nan")
        sites.append((frames, int(round(slope * span)), int(counts[-1] - counts[0]), pick_frame(frames)))
        rows.append((slope, label, r2, int(series[0]), int(series[-1]), int(counts[0]), int(counts[-1]),
                     stack_summary(frames)))
    if table is not None:
        rows.sort(key=lambda r: -r[0])
        lines = ["bytes_per_unit\tsite\tr2\tlive_bytes_first\tlive_bytes_last\tlive_first\tlive_last\tstack"]
        lines += [f"{r[0]:.2f}\t{r[1]}\t{r[2]:.3f}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6]}\t{r[7]}" for r in rows]
        header = (f"# live bytes per site at {len(units)} unit marks, units {units[0]:g} to {units[-1]:g}; "
                  "slope per unit: Theil-Sen\n")
        Path(table).write_text(header + "\n".join(lines) + "\n")
    return rank_sites(sites, "growth") if sites else empty_sites()


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
