"""A night's key: what was measured (the run set), on which code, where and when.

A night is identified by what it measured: the SHA-256 of its runs' ``meta.json``
files (``runs_sha256``).  Running the history step twice on the same runs gives the
same key, so the store records one night (see ``store.append_night``); re-measuring
gives new ``meta.json`` files (times, samples) and so a new night.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

KEY_VERSIONS = ("python", "duckdb", "faust-streaming-rocksdb", "librocksdb")
HOST_FIELDS = ("hostname", "kernel", "cpus", "mem_total_bytes")


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def git_state(project_dir: str | Path) -> tuple[str, bool | None, str | None]:
    """(commit, dirty, diff_sha256) of the project, ``("unknown", None, None)`` outside git.

    ``dirty`` looks at tracked files only: ``results/``, the venv and the history store
    itself are untracked (or ignored) and change every night without changing the code.
    A dirty tree also gets the SHA-256 of ``git diff HEAD``, so two nights on the same
    uncommitted edit still count as the same code and two different edits do not.
    """
    head = _git(Path(project_dir), "rev-parse", "HEAD")
    if head is None or not head.strip():
        return "unknown", None, None
    status = _git(Path(project_dir), "status", "--porcelain", "--untracked-files=no")
    if status is None:
        return head.strip(), None, None
    dirty = bool(status.strip())
    diff_sha = None
    if dirty:
        diff = _git(Path(project_dir), "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
        diff_sha = hashlib.sha256((diff or "").encode()).hexdigest()[:16]
    return head.strip(), dirty, diff_sha


def run_set_sha256(meta_paths: Iterable[str | Path]) -> str:
    """SHA-256 of a night's runs: each run's place (experiment/variant/profiler/rep) and
    its ``meta.json`` bytes, in a stable order.  Any re-measured run changes it."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in meta_paths):
        digest.update("/".join(path.parts[-5:-1]).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def read_meta(meta_paths: Iterable[str | Path]) -> dict:
    """The first readable ``meta.json`` among ``meta_paths`` that has versions or host (or ``{}``).

    The night needs versions and host once; every run records them, so the first one
    that parses (and has them) is as good as any.
    """
    for path in sorted(Path(p) for p in meta_paths):
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and (meta.get("versions") or meta.get("host")):
            return meta
    return {}


def _version_column(name: str) -> str:
    return "version_" + re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def night_key(project_dir: str | Path, meta: dict, runs_sha256: str, date: str | None = None, *,
              config_sha256: str | None = None) -> dict:
    """Who, what and where of tonight's run: the row this night gets in ``nights``.

    ``meta`` is any run's ``meta.json`` (every run of a pipeline records the same
    ``versions`` and ``host``; see :func:`read_meta`); ``runs_sha256`` is the night's
    identity (:func:`run_set_sha256`).  ``date`` defaults to today's local date, the
    night the run belongs to; pass it explicitly when a run crosses midnight or when
    backfilling.  ``night_id`` reads well in a CSV (date and short commit first) and
    ends with the run set's hash.  The library versions are kept whole as canonical
    JSON (``versions_json``, what ``regressions`` compares for "same code") and the key
    ones as ``version_<name>`` columns to filter on.  ``config_sha256`` (the
    configuration's hash) makes a change of nightly settings visible next to a change
    of growth.
    """
    recorded_at = dt.datetime.now(dt.timezone.utc)
    day = dt.date.fromisoformat(date) if date else dt.datetime.now().astimezone().date()
    commit, dirty, diff_sha = git_state(project_dir)
    versions = dict(meta.get("versions") or {})
    host = dict(meta.get("host") or {})
    key = {
        "night_id": f"{day.isoformat()}_{commit[:10]}_{runs_sha256[:12]}",
        "runs_sha256": runs_sha256,
        "date": day.isoformat(),
        "recorded_at": recorded_at.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "commit": commit,
        "dirty": dirty,
        "diff_sha256": diff_sha,
        "versions_json": json.dumps(versions, sort_keys=True),
    }
    for name in (*KEY_VERSIONS, *sorted(set(versions) - set(KEY_VERSIONS))):
        key[_version_column(name)] = None if versions.get(name) is None else str(versions[name])
    for field in HOST_FIELDS:
        key[field] = host.get(field)
    key["config_sha256"] = config_sha256
    return key
