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

Artifacts: ``massif.out`` (read by :func:`parse_massif`).

Massif takes snapshots only on allocation events, at intervals that widen as the
run goes on, and none at exit: the ``leaked`` sites come from the last detailed
snapshot, which can precede exit (and interpreter teardown) by one interval, so
they can include memory freed at the very end and miss the last few allocations.

This module also holds the frame helpers (:class:`Frame`, :func:`pick_frame`,
:func:`stack_summary`, :func:`rank_sites`) that ``heaptrack`` and ``jemalloc`` share:
all three report native stacks and need the same rule for the one frame to show.
It must stay importable without pandas (the measured process imports profilers).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

from leaklab.profilers.errors import ParseError

if TYPE_CHECKING:
    import pandas as pd

OUT_NAME = "massif.out"
END_NAME = "massif.end.out"
TOP_N = 20
STACK_FRAMES = 40
SITE_COLUMNS = ("rank", "bytes", "count", "frame", "native_caller", "stack", "kind")
TIMELINE_COLUMNS = ("t", "heap_bytes", "source")

DEFAULTS: dict = {
    "detailed_freq": 1,
    "max_snapshots": 100,
    "depth": 30,
    "threshold": None,
    "pages_as_heap": False,
    "pythonmalloc": "malloc",
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
    return {"heap_timeline": timeline, "top_sites": top_sites}


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


# --------------------------------------------------------------------- frame helpers

class Frame(NamedTuple):
    """A native stack frame as a profiler reports it.

    ``file`` is ``"source.c:line"`` when debug info named one, ``obj`` the binary or
    library path when the tool gave it; either may be empty.
    """

    func: str
    file: str = ""
    obj: str = ""

    def label(self) -> str:
        where = os.path.basename(self.file) or os.path.basename(self.obj)
        return f"{self.func} ({where})" if where else self.func

    def short(self) -> str:
        """The function name, or ``???@lib`` when the symbol is unknown."""
        if self.func in ("???", "") or self.func.startswith("0x"):
            where = os.path.basename(self.obj) or os.path.basename(self.file)
            return f"???@{where}" if where else (self.func or "???")
        return self.func


_ALLOC_RE = re.compile(
    r"^(__libc_|__GI___libc_|__GI_|je_|__je_)?"
    r"(malloc|calloc|realloc|reallocarray|free|memalign|posix_memalign|aligned_alloc|valloc|pvalloc"
    r"|strdup|strndup|__strdup|__strndup)$"
    r"|^operator new"
    r"|(^|::)(__)?new_allocator<.*>::allocate$|^std::allocator_traits<.*>::allocate$"
    r"|^_?Py(Mem|Object)_(Debug)?(Raw)?(Malloc|Calloc|Realloc|Alloc|New|NewVar)\b"
    r"|^_?PyObject_GC_(New|NewVar|Malloc|Calloc|Alloc|Link)$"
    r"|^(pymalloc_\w+|allocate_from_new_pool|new_arena|arena_map_\w+|_PyObject_Arena\w+|gc_alloc"
    r"|PyType_GenericAlloc|_PyType_AllocNoTrack|_PyMem_\w+)$"
    # glibc malloc's own page requests, seen with --pages-as-heap
    r"|^(__)?(mmap|mmap64|mremap|munmap|brk|sbrk|__mmap64|__glibc_morecore|sysmalloc\w*|_int_\w+"
    r"|tcache_init|ptmalloc_init|arena_get2|_int_new_arena|new_heap|alloc_new_heap)$"
)
_GLUE_FUNCS = {"_ctypes_callproc", "_call_function_pointer", "PyCFuncPtr_call", "ffi_call_unix64", "ffi_call_int"}
_GLUE_FILES = {"callproc.c", "_ctypes.c", "ffi64.c", "unix64.S", "ffi.c"}
_ALLOC_FILES = {"obmalloc.c"}
_DECORATION = re.compile(
    r"(<[0-9a-f]{16}>|\[inline\]|@@?[A-Za-z0-9_.]+|\.(localalias|constprop|isra|part|cold|lto_priv)(\.\d+)?)$"
)


def clean_func(name: str) -> str:
    """Drop symbol decorations that split one function into many names.

    jeprof appends ``<offset>``, ``[inline]`` and ``@@VERSION``; gcc adds
    ``.constprop.0``/``.isra.0``/``.localalias`` clones.
    """
    previous = None
    name = name.strip()
    while name != previous:
        previous = name
        name = _DECORATION.sub("", name)
    return name or previous


def _file_base(frame: Frame) -> str:
    return os.path.basename(frame.file.rsplit(":", 1)[0]) if frame.file else ""


def is_allocator(frame: Frame) -> bool:
    """malloc and its wrappers: operator new, PyMem/PyObject allocators, obmalloc."""
    return bool(_ALLOC_RE.search(frame.func)) or _file_base(frame) in _ALLOC_FILES


def is_glue(frame: Frame) -> bool:
    """Foreign-call glue between Python and C: ctypes and libffi frames."""
    obj = os.path.basename(frame.obj)
    return (
        frame.func in _GLUE_FUNCS
        or frame.func.startswith("ffi_")
        or "libffi" in obj
        or obj.startswith("_ctypes")
        or _file_base(frame) in _GLUE_FILES
    )


def is_informative(frame: Frame) -> bool:
    return not (is_allocator(frame) or is_glue(frame))


_INTERPRETER_RE = re.compile(
    r"^(_?Py|builtin_|method_vectorcall|cfunction_|vectorcall|slot_tp_|type_call|object_vectorcall"
    r"|_CallPythonObject|closure_fcn|call_function|run_mod|run_eval_code_obj|pymain_|main$|__libc_start"
    r"|_start$|_dl_|call_init|dl_open|dlopen)"
)


def is_interpreter(frame: Frame) -> bool:
    """CPython's own frames (the eval loop, calls, start-up) and the dynamic loader."""
    return bool(_INTERPRETER_RE.search(frame.func))


def native_caller(frames: Sequence[Frame]) -> str | None:
    """The first named library frame outward from the allocation that is neither
    allocator, glue nor interpreter: for a malloc made by a Python callback that a C
    library called (RocksDB's merge operator through ctypes), the library function
    that called it -- the frame that explains a leak in a binding."""
    for frame in frames:
        if is_informative(frame) and not is_interpreter(frame) and not frame.short().startswith("???"):
            return frame.func.split("(", 1)[0]
    return None


def pick_frame(frames: Sequence[Frame]) -> int:
    """Index of the frame to name a stack by (``frames`` innermost first).

    The first frame that is neither an allocator nor ctypes/libffi glue; failing
    that the first that is not an allocator; failing that the innermost.
    """
    for test in (is_informative, lambda f: not is_allocator(f)):
        for i, frame in enumerate(frames):
            if test(frame):
                return i
    return 0


def stack_summary(frames: Sequence[Frame], limit: int = STACK_FRAMES) -> str:
    """``;``-joined function names, innermost first, at most ``limit`` of them."""
    return ";".join(frame.short() for frame in frames[:limit])


def rank_sites(sites: Iterable[tuple], kind: str, top_n: int = TOP_N) -> "pd.DataFrame":
    """Merge stacks by their picked frame and rank by bytes.

    ``sites`` holds ``(frames, bytes, count)`` or ``(frames, bytes, count, index)``
    tuples, frames innermost first, ``index`` the frame to name it by (default:
    :func:`pick_frame`).  Stacks that share a frame are summed; the heaviest one
    gives the ``stack``.  Only positive totals are kept.
    """
    import pandas as pd

    merged: dict[str, dict] = {}
    for site in sites:
        frames, nbytes, count = site[0], int(site[1]), site[2]
        if not frames:
            continue
        index = site[3] if len(site) > 3 else pick_frame(frames)
        label = frames[index].label()
        entry = merged.setdefault(label, {"bytes": 0, "count": 0, "best": None, "best_bytes": None})
        entry["bytes"] += nbytes
        entry["count"] = None if count is None or entry["count"] is None else entry["count"] + int(count)
        if entry["best_bytes"] is None or nbytes > entry["best_bytes"]:
            entry["best"], entry["best_bytes"] = frames, nbytes
    ranked = sorted(((label, e) for label, e in merged.items() if e["bytes"] > 0),
                    key=lambda item: (-item[1]["bytes"], item[0]))[:top_n]
    if not ranked:
        return empty_sites()
    return pd.DataFrame({
        "rank": pd.Series(range(1, len(ranked) + 1), dtype="int64"),
        "bytes": pd.Series([e["bytes"] for _, e in ranked], dtype="int64"),
        "count": pd.Series([e["count"] for _, e in ranked], dtype="Int64"),
        "frame": pd.Series([label for label, _ in ranked], dtype="object"),
        "native_caller": pd.Series([native_caller(e["best"]) for _, e in ranked], dtype="object"),
        "stack": pd.Series([stack_summary(e["best"]) for _, e in ranked], dtype="object"),
        "kind": pd.Series([kind] * len(ranked), dtype="object"),
    })


def empty_sites() -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame({
        "rank": pd.Series(dtype="int64"), "bytes": pd.Series(dtype="int64"),
        "count": pd.Series(dtype="Int64"), "frame": pd.Series(dtype="object"),
        "native_caller": pd.Series(dtype="object"), "stack": pd.Series(dtype="object"), "kind": pd.Series(dtype="object"),
    })


def timeline_frame(rows: Sequence[tuple[float, int, str]]) -> "pd.DataFrame":
    """``heap_timeline`` with its fixed columns and dtypes, even when empty."""
    import pandas as pd

    return pd.DataFrame({
        "t": pd.Series([r[0] for r in rows], dtype="float64"),
        "heap_bytes": pd.Series([int(r[1]) for r in rows], dtype="int64"),
        "source": pd.Series([r[2] for r in rows], dtype="object"),
    })
