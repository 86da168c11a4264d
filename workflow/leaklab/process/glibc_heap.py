"""glibc's heap in use over time for a program leaklab did not write, without changing it.

glibc ships ``libmemusage.so`` (the library behind ``memusage(1)``): preloaded, it wraps
``malloc``/``free``/``mmap`` and, with ``MEMUSAGE_OUTPUT`` set, appends one record per
call to a file: bytes in use on the heap (requested, not yet freed), the stack, a time
stamp.  The records are written in blocks of ``MEMUSAGE_BUFFER_SIZE`` entries; a block of
one (:data:`BUFFER_ENTRIES`) makes the file's last record the heap in use at the unit mark
itself.  Larger blocks are cheaper but stale: a program that allocates once per unit would
show no growth at all until its block fills (measured 2026-12-06: 0.55 us per allocator
call with blocks of one, 0.09 us with blocks of 64).  The runner reads it at each unit
mark as ``malloc_in_use_bytes``.

It cannot reach a statically linked program (nothing to preload into), nor a Go
program's heap (Go maps its own); :func:`applies` says why, and ``meta.json``
``heap_metric`` records what was used.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ENTRY = struct.Struct("<QQII")  # heap bytes, stack bytes, time (low, high): glibc's struct entry
HEADER_ENTRIES = 2  # peak and start time, end time: written first, rewritten at exit
BUFFER_ENTRIES = 1
OUTPUT = "memusage.dat"
KEEP_BYTES = 8 * 2**20
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
GO_BUILDINFO = b"\xff Go buildinf:"


def library() -> str | None:
    """glibc's ``libmemusage.so`` on this machine (package libc6 on Debian)."""
    found = sorted(glob.glob("/usr/lib/*/libmemusage.so") + glob.glob("/lib/*/libmemusage.so"))
    return found[0] if found else None


def _elf_facts(path: Path) -> tuple[bool, bool]:
    """(dynamically linked, Go) for an ELF file: a PT_INTERP program header means the
    dynamic loader runs it (and honours LD_PRELOAD); Go binaries carry a build-info magic."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        raise ValueError("not a 64-bit ELF program")
    endian = "<" if data[5] == 1 else ">"
    phoff, = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    PT_INTERP = 3
    dynamic = any(struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] == PT_INTERP for i in range(phnum))
    return dynamic, GO_BUILDINFO in data


def applies(program: str) -> tuple[bool, str]:
    """Whether libmemusage can measure ``program`` (a path or a name on PATH), and why not."""
    if library() is None:
        return False, "glibc's libmemusage.so is not installed (Debian: libc6)"
    path = shutil.which(program)
    if path is None:
        return False, f"{program!r} is not found (yet): built by the experiment's setup?"
    try:
        dynamic, go = _elf_facts(Path(path))
    except (OSError, ValueError, struct.error) as err:
        return False, f"{program!r} is {err}: a script's interpreter, not the program, would be measured"
    if go:
        return False, (f"{program!r} is a Go program: its heap is Go's own, not glibc's (use its go_heap_* metrics "
                       "or a pprof_url)")
    if not dynamic:
        return False, f"{program!r} is statically linked: LD_PRELOAD cannot reach its malloc"
    return True, ""


def wrap(env: dict[str, str], program: str, outdir: Path) -> dict[str, str]:
    """``env`` with libmemusage preloaded for ``program`` only (not its helpers, which
    would truncate the same file), its records going to ``outdir/memusage.dat``."""
    preload = " ".join(filter(None, [env.get("LD_PRELOAD"), library()]))
    return {**env, "LD_PRELOAD": preload, "MEMUSAGE_OUTPUT": str(Path(outdir) / OUTPUT),
            "MEMUSAGE_BUFFER_SIZE": str(BUFFER_ENTRIES), "MEMUSAGE_PROG_NAME": os.path.basename(program)}


def prepare(spec, cmd: list[str], env: dict[str, str], profiler: str, wrapper: str | None,
            outdir: Path) -> tuple[dict, dict[str, str], Path | None]:
    """For the runner: what gives the run its ``malloc_in_use_bytes`` (``meta.json``
    ``heap_metric``), the environment to start it with, and the record file to read at
    unit marks (None when libmemusage is not used).  libmemusage goes into the plain runs
    of a command experiment declared in the config; a profiler's runs have the
    profiler's own view, a built-in reproduction its own metrics."""
    if spec.module is not None:
        return ({"source": "the experiment's own marks", "why_none": None} if not spec.command else
                {"source": None, "why_none": "a built-in native reproduction: its own unit metrics only"}), env, None
    if profiler != "plain":
        return {"source": None, "why_none": f"a {profiler} run: the profiler's own heap view instead"}, env, None
    usable, why = (False, wrapper) if wrapper else applies(cmd[0])
    if not usable:
        return {"source": None, "why_none": why}, env, None
    return ({"source": f"glibc libmemusage.so preloaded ({library()}), read at unit marks", "why_none": None},
            wrap(env, cmd[0], outdir), Path(outdir) / OUTPUT)


def in_use_bytes(path: Path) -> int | None:
    """The heap in use in the last record written so far; None before the first."""
    path = Path(path)  # never a bare number: open() would take it for a file descriptor
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            last = (size // ENTRY.size - 1) * ENTRY.size
            if last < HEADER_ENTRIES * ENTRY.size:
                return None
            f.seek(last)
            record = f.read(ENTRY.size)
    except OSError:
        return None
    return ENTRY.unpack(record)[0] if len(record) == ENTRY.size else None


def trim(path: Path) -> None:
    """Give back the disk blocks of records already read: every allocator call appends
    24 bytes, so a busy program would fill the disk in an hour.  Past
    :data:`KEEP_BYTES` the file's old records become a hole (its size, and so the
    writer's offset and the last record, stay as they are)."""
    try:
        size = os.path.getsize(path)
        if size <= 2 * KEEP_BYTES:
            return
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return
    try:
        start, end = 4096, (size - KEEP_BYTES) // 4096 * 4096
        _fallocate()(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ctypes.c_long(start), ctypes.c_long(end - start))
    finally:
        os.close(fd)


def _fallocate():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long)
    return libc.fallocate


def into_marks(marks: pd.DataFrame, by_unit: dict[int, int]) -> pd.DataFrame:
    """``marks`` with ``malloc_in_use_bytes`` on the last mark of each unit read."""
    if not by_unit:
        return marks
    marks = marks.copy()
    marks["malloc_in_use_bytes"] = float("nan")
    last_of_unit = marks.dropna(subset=["unit"]).groupby("unit").tail(1)
    for index, unit in last_of_unit["unit"].items():
        if int(unit) in by_unit:
            marks.loc[index, "malloc_in_use_bytes"] = float(by_unit[int(unit)])
    return marks


SUMMARY_START = b"\n\x1b[01;32mMemory usage summary:"  # what libmemusage prints to stderr at exit


def strip_summary(log_path: Path, max_bytes: int = 1 << 16) -> bool:
    """Cut libmemusage's own exit summary (a coloured histogram it always writes to the
    program's stderr) off the end of ``run.log``, so the log holds what the program wrote;
    True when one was cut."""
    try:
        with open(log_path, "r+b") as f:
            start = max(0, f.seek(0, os.SEEK_END) - max_bytes)
            f.seek(start)
            at = f.read().rfind(SUMMARY_START)
            if at < 0:
                return False
            f.truncate(start + at)
            return True
    except OSError:
        return False
