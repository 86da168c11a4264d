"""What ``meta.json`` records of the machine a run ran on and of the libraries it
measured: a result is read against the versions and the host that produced it."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys

MEASURED_DISTRIBUTIONS = ("duckdb", "faust-streaming-rocksdb", "snakemake")
_VERSIONS_SNIPPET = """import importlib.metadata as m, json, platform, sys
out = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))"""


def library_versions(python: str | None = None) -> dict[str, str | None]:
    """Versions of what the experiments measure, for ``meta.json`` and the tables,
    asked of the interpreter that ran the experiment (a sweep's venv, say)."""
    import ctypes.util

    asked = subprocess.run([python or sys.executable, "-c", _VERSIONS_SNIPPET, *MEASURED_DISTRIBUTIONS],
                           capture_output=True, text=True)
    out: dict[str, str | None] = json.loads(asked.stdout) if asked.returncode == 0 else {}
    out["librocksdb"] = ctypes.util.find_library("rocksdb")
    return out


def host_facts() -> dict:
    with open("/proc/meminfo") as f:
        mem_total = int(f.readline().split()[1]) * 1024
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "mem_total_bytes": mem_total,
    }
