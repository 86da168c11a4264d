"""Native stacks and allocation sites, as every profiler reports them.

massif, heaptrack and jemalloc each report native call stacks; tracemalloc reports
Python ones.  They all need the same rules: which frame names a stack (the first that
is neither an allocator nor ctypes/libffi glue), which library function called into
a Python callback, how sites merge and rank, and the fixed columns of ``top_sites``
and ``heap_timeline``.  Importable without pandas (the measured process imports
profilers): pandas is imported inside the functions that build frames.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Iterable, NamedTuple, Sequence

if TYPE_CHECKING:
    import pandas as pd

TOP_N = 20
STACK_FRAMES = 40
SITE_COLUMNS = ("rank", "bytes", "count", "frame", "native_caller", "stack", "kind")
TIMELINE_COLUMNS = ("t", "heap_bytes", "source")


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
