"""Profilers: how to run a command under each one and how to read what it writes.

A profiler module provides ``wrap(cmd, env, rundir, settings) -> (cmd, env)``; the
runner samples whatever process tree the wrapped command starts.  ``plain`` is the
sampler alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PROFILERS = ("plain",)


def load(name: str) -> ModuleType:
    if name not in PROFILERS:
        raise ValueError(f"unknown profiler {name!r}; allowed: {', '.join(PROFILERS)}")
    return importlib.import_module(f"leaklab.profilers.{name}")
