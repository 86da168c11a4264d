"""``plain``: no profiler, only the outside sampler and the in-process marks."""

from __future__ import annotations

from pathlib import Path


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    return cmd, env
