"""jemalloc's heap in use over time for a program linked with libjemalloc, unchanged.

A program that links jemalloc (``DT_NEEDED libjemalloc.so.2``) never calls glibc's
malloc, so glibc's heap metric (``leaklab.process.glibc_heap``) says nothing about it.
jemalloc has its own mechanism, switched on by ``MALLOC_CONF`` alone: its heap profiler
(``prof:true``) samples allocations (one every ``2**lg_prof_sample`` bytes on average)
and, with ``lg_prof_interval``, dumps a heap profile each time the program has allocated
about ``2**lg_prof_interval`` more bytes (frees do not count), into
``<prof_prefix>.<pid>.<seq>.i<n>.heap``.
At each unit mark the runner reads the newest complete dump of every live process and
scales its samples back as ``jeprof`` does: ``malloc_in_use_bytes``.

Why dumps and not jemalloc's statistics printer (``stats_print``, ``stats_interval``):
those write through ``malloc_message`` to the program's stderr, where they would mix
with the lines the runner reads its units from; a dump goes to a file of its own and
leaves the program's output alone.  What it costs: a backtrace per sampled allocation
and a file per dump (measured in docs/profilers.md).  What it cannot do: dump on a
clock or when memory is freed, so a reading is the heap as it was at most
``2**lg_prof_interval`` allocated bytes before the mark, and a program that frees
without allocating keeps showing its last dump.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
from pathlib import Path

DIR = "jemalloc_heap"
PREFIX = "jeheap"
LG_PROF_SAMPLE = 16  # one sample every 64 KiB allocated on average
LG_PROF_INTERVAL = 21  # a dump every 2 MiB allocated
MAX_DUMP_BYTES = 64 * 2**20
_DUMP = re.compile(rf"^{PREFIX}\.(\d+)\.(\d+)\.i(\d+)\.heap$")
_HEADER = re.compile(r"^heap_v2/(\d+)$")
_COUNTS = re.compile(r"^\s*t\*: (\d+): (\d+) \[\d+: \d+\]\s*$")
_END = "\nMAPPED_LIBRARIES:\n"
SONAME = re.compile(rb"^libjemalloc\.so(\.\d+)*$")


def needed_libraries(path: Path) -> list[str]:
    """The ``DT_NEEDED`` names of a 64-bit ELF program (what the dynamic loader links
    in), empty for a static one; ValueError for a file that is not such a program."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ValueError("not a 64-bit ELF program")
    endian = "<" if data[5] == 1 else ">"
    phoff, = struct.unpack_from(endian + "Q", data, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    PT_LOAD, PT_DYNAMIC, DT_NULL, DT_NEEDED, DT_STRTAB = 1, 2, 0, 1, 5
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(endian + "IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    needed, strtab = [], None
    for at in range(dynamic[0], dynamic[0] + dynamic[1] - 15, 16):
        tag, value = struct.unpack_from(endian + "qQ", data, at)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed.append(value)
        elif tag == DT_STRTAB:
            strtab = next((value - vaddr + offset for vaddr, offset, size in loads if vaddr <= value < vaddr + size),
                          None)
    if strtab is None:
        return []
    return [data[strtab + n:data.index(b"\0", strtab + n)].decode(errors="replace") for n in needed]


def linked(program: str) -> bool:
    """Whether ``program`` (a path or a name on PATH) loads libjemalloc itself."""
    path = shutil.which(program)
    if path is None:
        return False
    try:
        return any(SONAME.match(name.encode()) for name in needed_libraries(Path(path)))
    except (OSError, ValueError, struct.error):
        return False


def source(program: str) -> str:
    """What ``meta.json`` ``heap_metric.source`` says when this is used."""
    return (f"jemalloc's own heap profile dumps ({program!r} links libjemalloc; MALLOC_CONF=prof:true,"
            f"lg_prof_sample:{LG_PROF_SAMPLE},lg_prof_interval:{LG_PROF_INTERVAL}), the newest at each unit mark")


def wrap(env: dict[str, str], outdir: Path) -> tuple[dict[str, str], Path]:
    """``env`` with jemalloc's profiler and interval dumps switched on (after any
    ``MALLOC_CONF`` of the caller's, so ours win), and the dump directory."""
    dumps = Path(outdir) / DIR
    dumps.mkdir(parents=True, exist_ok=True)
    ours = (f"prof:true,prof_active:true,prof_accum:false,lg_prof_sample:{LG_PROF_SAMPLE},"
            f"lg_prof_interval:{LG_PROF_INTERVAL},prof_prefix:{dumps / PREFIX}")
    return {**env, "MALLOC_CONF": ",".join(filter(None, [env.get("MALLOC_CONF"), ours]))}, dumps


def in_use_bytes(text: str) -> int | None:
    """A complete ``heap_v2`` dump's in-use bytes, each stack's samples scaled back to
    all allocations (jeprof's ``AdjustSamples``); None for an incomplete or foreign file."""
    if _END not in text:
        return None
    lines = text[:text.index(_END)].splitlines()
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        return None
    period = int(header.group(1))
    total, in_stack = 0.0, False
    for line in lines[1:]:
        if line.startswith("@"):
            in_stack = True
            continue
        counts = _COUNTS.match(line)
        if counts and in_stack:  # the first t* after "@" is the stack's; the one before any "@" the total
            objects, nbytes = int(counts.group(1)), int(counts.group(2))
            if objects and nbytes:
                total += nbytes / (1 - math.exp(-(nbytes / objects) / period)) if period > 1 else nbytes
            in_stack = False
    return int(total)


def read(dumps: Path) -> int | None:
    """The heap in use now: the newest complete dump of each live process, summed (a
    process that has exited holds nothing); older dumps are deleted, so the directory
    keeps one per process.  None before the first dump."""
    newest: dict[int, list[tuple[tuple[int, int], Path]]] = {}
    try:
        names = os.listdir(dumps)
    except OSError:
        return None
    for name in names:
        match = _DUMP.match(name)
        if match:
            pid, seq, _ = (int(g) for g in match.groups())
            newest.setdefault(pid, []).append(((seq, int(match.group(3))), Path(dumps) / name))
    total, found = 0, False
    for pid, files in newest.items():
        files.sort(reverse=True)
        alive = os.path.exists(f"/proc/{pid}")
        for index, (_, path) in enumerate(files):
            value = _read_dump(path) if alive else None
            if value is not None:
                total, found = total + value, True
                for _, older in files[index + 1:]:
                    older.unlink(missing_ok=True)
                break
    return total if found else None


def _read_dump(path: Path) -> int | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DUMP_BYTES + 1)
    except OSError:
        return None
    return in_use_bytes(data.decode(errors="replace")) if len(data) <= MAX_DUMP_BYTES else None
