"""Which allocator's own mechanism gives a command experiment its ``malloc_in_use_bytes``.

A program that links jemalloc allocates through jemalloc, never glibc's malloc: it is
read through jemalloc's heap profile dumps (``leaklab.process.jemalloc_heap``); any other
dynamically linked program through glibc's libmemusage (``leaklab.process.glibc_heap``).
A static program, a script or a Go program has none, and says why.
"""

from __future__ import annotations

from pathlib import Path

from leaklab.process import glibc_heap, jemalloc_heap


def applies(program: str) -> tuple[bool, str]:
    """Whether some heap metric can measure ``program``, and why not."""
    if jemalloc_heap.linked(program):
        return True, ""
    return glibc_heap.applies(program)


def prepare(spec, cmd: list[str], env: dict[str, str], profiler: str, wrapper: str | None,
            outdir: Path) -> tuple[dict, dict[str, str], Path | None]:
    """For the runner: what gives the run its ``malloc_in_use_bytes`` (``meta.json``
    ``heap_metric``), the environment to start it with, and what :func:`read` reads at
    each unit mark (None when nothing is read)."""
    if spec.module is None and profiler == "plain" and not wrapper and jemalloc_heap.linked(cmd[0]):
        env, dumps = jemalloc_heap.wrap(env, outdir)
        return {"source": jemalloc_heap.source(cmd[0]), "why_none": None}, env, dumps
    return glibc_heap.prepare(spec, cmd, env, profiler, wrapper, outdir)


def read(source: Path) -> int | None:
    """The heap in use now, from what :func:`prepare` set up."""
    if Path(source).name == jemalloc_heap.DIR:
        return jemalloc_heap.read(source)
    in_use = glibc_heap.in_use_bytes(source)
    glibc_heap.trim(source)
    return in_use
