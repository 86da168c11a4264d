"""Profilers: how to run a command under each one and how to read what it writes.

A profiler module provides ``wrap(cmd, env, rundir, settings) -> (cmd, env)`` and,
except ``plain``, ``collect(rundir, unit_marks) -> {table: DataFrame}`` that reads its
native artifacts into the shared tables (``heap_timeline``, ``top_sites``, ...).  The
runner samples whatever process tree the wrapped command starts.  ``plain`` is the
sampler alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PROFILERS = ("plain", "massif", "jemalloc", "heaptrack", "tracemalloc", "pprof")
# What each profiler can see: the layer its numbers describe.
LAYERS = {
    "plain": "process (RSS, fds) from /proc",
    "massif": "malloc/new heap (or mapped pages with pages_as_heap)",
    "jemalloc": "malloc heap through the preloaded jemalloc (sampled)",
    "heaptrack": "malloc/new heap",
    "tracemalloc": "Python heap",
    "pprof": "Go heap (runtime/pprof, sampled; live as of the last GC)",
}


def load(name: str) -> ModuleType:
    if name not in PROFILERS:
        raise ValueError(f"unknown profiler {name!r}; allowed: {', '.join(PROFILERS)}")
    return importlib.import_module(f"leaklab.profilers.{name}")
