"""``massif``: valgrind's heap profiler -- how to run it and how to read ``massif.out``.

Massif replaces the allocator, so it sees every byte a process asks ``malloc`` and
``operator new`` for, with the full native call tree, at the cost of running the
process on valgrind's CPU (20-100x slower).  Python's small-object allocator would
hide Python objects from it, so the process gets ``PYTHONMALLOC=malloc``.

Settings (all optional):

``detailed_freq`` (1)
    every Nth snapshot carries a call tree; 1 makes the last snapshot (taken at exit)
    detailed, which is what the ``leaked`` sites are read from.
``max_snapshots`` (100)
    massif thins the snapshots to stay under this count.
``depth`` (30)
    frames kept per call tree branch; Python stacks are deep.
``threshold`` (massif's own, 1.0)
    percent of the heap under which tree branches are lumped together.
``pages_as_heap`` (False)
    measure mapped pages (mmap/brk) instead of malloc'd bytes; catches allocators
    that bypass malloc, but attributes to mmap callers.
``pythonmalloc`` ("malloc")
    value for ``PYTHONMALLOC``; ``None`` leaves the environment as it is.
``gomaxprocs`` (1)
    value for ``GOMAXPROCS``; ``None`` leaves the environment as it is.  Valgrind runs
    one thread at a time, and Go's scheduler with several processors spins waiting for
    threads valgrind has not scheduled: go_map under massif took 3 to 196 s of CPU
    from one run to the next, 1.1 s with one (2026-12-06).  Other programs ignore it.

Artifacts: ``massif.out`` (read by :func:`parse_massif`).

Massif takes snapshots only on allocation events, at intervals that widen as the
run goes on, and none at exit: the ``leaked`` sites come from the last detailed
snapshot, which can precede exit (and interpreter teardown) by one interval, so
they can include memory freed at the very end and miss the last few allocations.

The stack and site helpers all native profilers share live in ``profilers.stacks``.
This module must stay importable without pandas (the measured process imports profilers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from leaklab.profilers.errors import ParseError
from leaklab.profilers.stacks import (STACK_FRAMES, TOP_N, Frame, clean_func, empty_sites, is_informative,
                                      pick_frame, rank_sites, timeline_frame)

if TYPE_CHECKING:
    import pandas as pd

OUT_NAME = "massif.out"
END_NAME = "massif.end.out"

DEFAULTS: dict = {
    "detailed_freq": 1,
    "max_snapshots": 100,
    "depth": 30,
    "threshold": None,
    "pages_as_heap": False,
    "pythonmalloc": "malloc",
    "gomaxprocs": 1,
}


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    """Run ``cmd`` under ``valgrind --tool=massif`` writing ``rundir/massif.out``.

    Time is measured in milliseconds (not instructions) so the timeline can be set
    against the sampler's and the marks' clocks.
    """
    s = {**DEFAULTS, **(settings or {})}
    wrapped = [
        "valgrind", "--tool=massif", "--time-unit=ms",
        f"--detailed-freq={int(s['detailed_freq'])}",
        f"--max-snapshots={int(s['max_snapshots'])}",
        f"--depth={int(s['depth'])}",
        f"--massif-out-file={Path(rundir) / OUT_NAME}",
    ]
    if s["threshold"] is not None:
        wrapped.append(f"--threshold={float(s['threshold'])}")
    if s["pages_as_heap"]:
        wrapped.append("--pages-as-heap=yes")
    env = dict(env)
    if s["pythonmalloc"]:
        env["PYTHONMALLOC"] = str(s["pythonmalloc"])
    if s["gomaxprocs"]:
        env["GOMAXPROCS"] = str(int(s["gomaxprocs"]))
    return wrapped + list(cmd), env


def collect(rundir: Path, unit_marks: "pd.DataFrame | None" = None) -> dict[str, "pd.DataFrame"]:
    """Heap timeline of every snapshot; top sites at the peak (the largest snapshot
    with a tree) and at the end of the work (``massif.end.out``, taken through vgdb
    when the process finished its work; failing that, the last snapshot with a tree,
    which may come from interpreter teardown)."""
    import pandas as pd

    parsed = parse_massif(Path(rundir) / OUT_NAME)
    timeline = massif_timeline(parsed, source="massif", extra_source="massif-extra")
    trees = [snap for snap in parsed["snapshots"] if snap["tree"] is not None]
    frames = []
    if trees:
        # massif refreshes its peak snapshot only when the heap shrinks, so after a
        # monotonic leak a later detailed snapshot can be larger: take the largest.
        peak = max(trees, key=lambda snap: (snap["mem_heap_B"], snap["heap_tree"] == "peak"))
        frames.append(tree_sites(peak["tree"], "peak"))
        end_file = Path(rundir) / END_NAME
        end_trees = [s["tree"] for s in parse_massif(end_file)["snapshots"] if s["tree"]] if end_file.exists() else []
        frames.append(tree_sites((end_trees or [trees[-1]["tree"]])[-1], "leaked"))
    top_sites = pd.concat(frames, ignore_index=True) if frames else empty_sites()
    return {"heap_timeline": timeline, "top_sites": top_sites, "site_timeline": site_timeline(parsed, "massif")}


def at_end_of_work(pid: int, rundir: Path) -> None:
    """Ask the running massif, through vgdb, for a detailed snapshot now: the process
    has finished its work and waits for the runner, so this is the heap before
    interpreter teardown frees what was still held (massif takes none at exit)."""
    import subprocess

    try:
        subprocess.run(["vgdb", f"--pid={pid}", "detailed_snapshot", str(Path(rundir) / END_NAME)],
                       capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass  # no end snapshot: collect falls back to the last detailed one


# --------------------------------------------------------------------------- parsing

@dataclass
class Node:
    """One line of a massif call tree: ``bytes`` allocated through ``frame``.

    Children are the callers of ``frame`` (the tree grows outward from the
    allocation function); the root is massif's "(heap allocation functions)".
    """

    bytes: int
    frame: "Frame | None"  # None for the root and for below-threshold lumps
    text: str
    declared_children: int
    children: list["Node"] = field(default_factory=list)

    @property
    def below_threshold(self) -> bool:
        return self.frame is None and "below massif's threshold" in self.text


_TREE_LINE = re.compile(r"^( *)n(\d+): (-?\d+) (.*)$")
_ADDR_FRAME = re.compile(r"^0x[0-9A-Fa-f]+: (.*)$")
_SEPARATOR = "#-----------"
_SNAPSHOT_FIELDS = ("time", "mem_heap_B", "mem_heap_extra_B", "mem_stacks_B", "heap_tree")
_FIELD_KEYS = ("snapshot", *_SNAPSHOT_FIELDS)
_HEADER_KEYS = ("desc", "cmd", "time_unit")


def parse_massif(path: Path | str) -> dict:
    """Read a massif output file (valgrind's, or heaptrack_print ``-M``'s).

    Returns ``{"path", "desc", "cmd", "time_unit", "snapshots", "peak"}`` where each
    snapshot is ``{"index", "time", "mem_heap_B", "mem_heap_extra_B", "mem_stacks_B",
    "heap_tree", "tree"}`` (``tree`` a :class:`Node` or None) and ``peak`` is the index
    of the ``heap_tree=peak`` snapshot (or None).  Times are in ``time_unit``.

    The format is undocumented, so this is strict: anything unexpected, a snapshot
    missing a field, or a tree with fewer children than its nodes announce raises
    :class:`ParseError` naming the file (a truncated file fails the same way).
    """
    path = Path(path)
    try:
        text = path.read_text(errors="strict")
    except FileNotFoundError:
        raise ParseError(f"{path}: massif output is missing (did the profiled run start?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"{path}: massif output is unreadable: {exc}") from None

    header: dict[str, str] = {}
    snapshots: list[dict] = []
    current: dict | None = None
    stack: list[tuple[int, Node]] = []  # (depth, node) of the open tree path

    def fail(lineno: int, why: str) -> ParseError:
        return ParseError(f"{path}:{lineno}: {why} (massif output truncated or corrupt)")

    def close_snapshot(lineno: int) -> None:
        if current is None:
            return
        missing = [name for name in _SNAPSHOT_FIELDS if name not in current]
        if missing:
            raise fail(lineno, f"snapshot {current['index']} lacks {', '.join(missing)}")
        if current["heap_tree"] in ("detailed", "peak") and current["tree"] is None:
            raise fail(lineno, f"snapshot {current['index']} announces a tree but has none")
        _check_complete(current["tree"], lambda why: fail(lineno, f"snapshot {current['index']}: {why}"))

    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line == _SEPARATOR:
            continue
        tree_match = _TREE_LINE.match(line)
        if tree_match:
            if current is None or current.get("heap_tree") not in ("detailed", "peak"):
                raise fail(lineno, "tree line outside a detailed snapshot")
            depth = len(tree_match.group(1))
            node = _node(int(tree_match.group(3)), tree_match.group(4), int(tree_match.group(2)))
            if depth == 0:
                if current["tree"] is not None:
                    raise fail(lineno, "second tree root in one snapshot")
                current["tree"] = node
                stack = [(0, node)]
                continue
            while stack and stack[-1][0] >= depth:
                stack.pop()
            if not stack or stack[-1][0] != depth - 1:
                raise fail(lineno, "tree line indented deeper than its parent")
            parent = stack[-1][1]
            if len(parent.children) >= parent.declared_children:
                raise fail(lineno, "tree node has more children than announced")
            parent.children.append(node)
            stack.append((depth, node))
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in _FIELD_KEYS:
            key, sep, value = line.partition(":")
            if sep and key in _HEADER_KEYS:
                header[key] = value.strip()
                continue
            raise fail(lineno, f"unexpected line {line[:60]!r}")
        try:
            if key == "snapshot":
                close_snapshot(lineno)
                index = int(value)
                if index != len(snapshots):
                    raise fail(lineno, f"snapshot {index} out of sequence")
                current = {"index": index, "tree": None}
                snapshots.append(current)
                stack = []
            elif current is None:
                raise fail(lineno, f"{key}= before the first snapshot")
            elif key == "time":
                current["time"] = float(value)
            elif key == "heap_tree":
                if value not in ("empty", "detailed", "peak"):
                    raise fail(lineno, f"unknown heap_tree={value!r}")
                current["heap_tree"] = value
            else:
                current[key] = int(value)
        except ValueError:
            raise fail(lineno, f"bad value in {line[:60]!r}") from None
    close_snapshot(len(lines))
    if not snapshots:
        raise ParseError(f"{path}: no massif snapshots (not a massif file, or empty)")
    if "time_unit" not in header:
        raise ParseError(f"{path}: no time_unit header (not a massif file, or truncated)")
    peaks = [snap["index"] for snap in snapshots if snap["heap_tree"] == "peak"]
    return {
        "path": str(path),
        "desc": header.get("desc", ""),
        "cmd": header.get("cmd", ""),
        "time_unit": header["time_unit"],
        "snapshots": snapshots,
        "peak": peaks[-1] if peaks else None,
    }


def _node(nbytes: int, text: str, declared: int) -> Node:
    match = _ADDR_FRAME.match(text)
    frame = None
    if match:
        func, loc = split_location(match.group(1))
        if loc.startswith("in "):
            frame = Frame(clean_func(func), "", loc[3:])
        else:
            frame = Frame(clean_func(func), loc, "")
    return Node(nbytes, frame, text, declared)


def _check_complete(node: Node | None, fail) -> None:
    """Every node must have as many children as its ``n<k>:`` announced."""
    todo = [node] if node is not None else []
    while todo:
        item = todo.pop()
        if len(item.children) != item.declared_children:
            raise fail(f"tree node {item.text[:50]!r} has {len(item.children)} of "
                       f"{item.declared_children} children")
        todo.extend(item.children)


def split_location(text: str) -> tuple[str, str]:
    """Split ``"func(args) (file.c:12)"`` into the function and its trailing location.

    Function names may contain parentheses (C++ signatures, "(below main)"), so the
    location is the last balanced parenthesised group, and only if it ends the text.
    """
    text = text.rstrip()
    if not text.endswith(")"):
        return text, ""
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            depth -= 1
            if depth == 0:
                if i == 0 or text[i - 1] != " ":
                    return text, ""  # "(below main)" alone, or "f(int)" with no location
                return text[: i - 1], text[i + 1 : -1]
    return text, ""


def massif_timeline(parsed: dict, source: str, extra_source: str | None = None) -> "pd.DataFrame":
    """One row per snapshot: time in seconds and ``mem_heap_B`` (plus heap+extra).

    Page-level profiles (``--pages-as-heap``) are labelled ``<source>-pages``: those
    bytes are mapped pages, not malloc'd bytes.
    """
    scale = {"ms": 1e-3, "s": 1.0}.get(parsed["time_unit"])
    if scale is None:
        raise ParseError(f"{parsed['path']}: time_unit {parsed['time_unit']!r} cannot be converted "
                         "to seconds (run massif with --time-unit=ms)")
    pages = any(snap["tree"] is not None and snap["tree"].text.startswith("(page allocation")
                for snap in parsed["snapshots"])
    if pages:
        source, extra_source = f"{source}-pages", None
    rows = []
    for snap in parsed["snapshots"]:
        t = snap["time"] * scale
        rows.append((t, snap["mem_heap_B"], source))
        if extra_source:
            rows.append((t, snap["mem_heap_B"] + snap["mem_heap_extra_B"], extra_source))
    return timeline_frame(rows)


def site_timeline(parsed: dict, source: str, top_n: int = TOP_N) -> "pd.DataFrame":
    """Bytes of the largest sites at every detailed snapshot (``t`` in seconds): how each
    site grows over the run, as massif-visualizer stacks them.  Sites are named as in
    ``top_sites``; the rest of a snapshot's heap is not a site."""
    import pandas as pd

    scale = {"ms": 1e-3, "s": 1.0}.get(parsed["time_unit"], 1.0)
    frames = [tree_sites(snap["tree"], "snapshot", top_n).assign(t=snap["time"] * scale, heap_bytes=snap["mem_heap_B"])
              for snap in parsed["snapshots"] if snap["tree"] is not None]
    columns = ["t", "site", "bytes", "heap_bytes", "source"]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object" if c in ("site", "source") else "float64") for c in columns})
    return pd.concat(frames, ignore_index=True).rename(columns={"frame": "site"}).assign(source=source)[columns]


def tree_sites(root: Node, kind: str, top_n: int = TOP_N) -> "pd.DataFrame":
    """Rank the allocation sites of one massif call tree.

    A site is the first informative node on each branch, walking outward from the
    allocation function (see :func:`pick_frame`); its bytes are that node's bytes.
    Branches that only pass through glue (malloc wrappers, ctypes/libffi) are
    followed until a caller worth naming appears.  Lumps below massif's threshold
    are not sites.
    """
    sites: list[tuple[list[Frame], int, int | None, int]] = []
    todo: list[tuple[Node, list[Frame]]] = [(child, []) for child in root.children]
    while todo:
        node, path = todo.pop()
        if node.frame is None:
            continue  # below-threshold lump
        path = path + [node.frame]
        named_children = [c for c in node.children if c.frame is not None]
        if is_informative(node.frame) or not named_children:
            chain = []
            below = node
            while len(path) + len(chain) < STACK_FRAMES:
                named = [c for c in below.children if c.frame is not None]
                if not named:
                    break
                below = max(named, key=lambda c: c.bytes)
                chain.append(below.frame)
            index = len(path) - 1 if is_informative(node.frame) else pick_frame(path)
            sites.append((path + chain, node.bytes, None, index))
            continue
        todo.extend((child, path) for child in named_children)
    return rank_sites(sites, kind, top_n)
