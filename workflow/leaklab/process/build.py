"""Build the native reproductions (Go with cgo, C++) from ``native/<program>/``.

The stories behind the experiments happened in Go services and were checked against a
C++ program; these builds let the pipeline measure them in their own languages.  Only
Debian's toolchains (golang-go, g++, librocksdb-dev) are used: Go's standard library
and cgo, no module from outside (``GOPROXY=off``; the programs share one local
package, ``native/unitline``, through a ``replace`` directive).  Every build writes
``versions.json`` beside the binary so each run records what compiled it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

# program -> language; the program's experiment module has the same name
PROGRAMS = {"go_merge": "go", "cpp_merge": "cpp", "go_map": "go", "go_fd": "go"}
SHARED_GO_PACKAGE = "unitline"
LINKS_ROCKSDB = ("go_merge", "cpp_merge")
VERSIONS_NAME = "versions.json"
ROCKSDB_VERSION_HEADER = Path("/usr/include/rocksdb/version.h")


def binary_path(program: str) -> str:
    """Where the pipeline builds a program (absolute: runs work in other directories)."""
    return os.path.abspath(f"results/build/{program}/{program}")


def sources(program: str, native_root: Path) -> list[str]:
    """Every file a program's build reads: its folder, and the shared Go package."""
    folders = [program] + ([SHARED_GO_PACKAGE] if PROGRAMS[program] == "go" else [])
    return sorted(str(p) for folder in folders for p in (Path(native_root) / folder).iterdir() if p.is_file())


def _first_line(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[0].strip()


def rocksdb_headers_version() -> str | None:
    """RocksDB's version as the headers the program compiled against say."""
    try:
        text = ROCKSDB_VERSION_HEADER.read_text()
    except OSError:
        return None
    parts = [re.search(rf"#define ROCKSDB_{part} (\d+)", text) for part in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def toolchain_versions(program: str) -> dict[str, str | None]:
    """The compiler (and headers) a build used, for every run's ``meta.json``."""
    language = PROGRAMS[program]
    out: dict[str, str | None] = {"go": _first_line(["go", "version"])} if language == "go" \
        else {"g++": _first_line(["g++", "--version"])}
    if program in LINKS_ROCKSDB:
        out["rocksdb_headers"] = rocksdb_headers_version()
    return out


def go_environment(cache_dir: Path) -> dict[str, str]:
    """Go's settings for an offline build: no proxy, caches inside ``results/build``."""
    cache_dir = Path(cache_dir).resolve()
    return {**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "1",
            "GOCACHE": str(cache_dir / "go-build"), "GOPATH": str(cache_dir / "gopath")}


TIMEOUT_S = 1200  # a compile that takes longer is stuck (the rule's runtime: 20 minutes)


def build(program: str, native_root: Path, binary: Path, log: Path, timeout_s: float = TIMEOUT_S,
          mem_cap_bytes: int | None = None) -> dict[str, str | None]:
    """Compile one program into ``binary`` (with debug symbols, for the profilers'
    stacks), log the compiler's output, write ``versions.json`` beside it.  The compiler
    runs contained (``leaklab.process.contained``: time limit, memory cap, bounded log, nothing
    left running afterwards)."""
    from leaklab.process import contained

    if program not in PROGRAMS:
        raise ValueError(f"unknown native program {program!r}; allowed: {', '.join(PROGRAMS)}")
    binary = Path(binary).resolve()
    binary.parent.mkdir(parents=True, exist_ok=True)
    source = (Path(native_root) / program).resolve()
    if PROGRAMS[program] == "go":
        cmd, env = ["go", "build", "-o", str(binary), "."], go_environment(binary.parents[1] / ".cache")
    else:
        cmd, env = ["g++", "-std=c++17", "-O2", "-g", "-Wall", "-Wextra", "-o", str(binary), "main.cc", "-lrocksdb"], None
    with open(log, "a") as out:
        out.write(" ".join(cmd) + "\n")
    done = contained.run(cmd, Path(log), timeout_s, mem_cap_bytes, cwd=source, env=env)
    if done["status"] != "ok":
        raise RuntimeError(f"building {program} {done['status']} ({done['reason']}); see {log}")
    versions = toolchain_versions(program)
    (binary.parent / VERSIONS_NAME).write_text(json.dumps(versions, indent=2) + "\n")
    return versions


def recorded_versions(params: dict) -> dict[str, str | None]:
    """What a run's program was built with, read from beside its ``binary``."""
    if not params.get("binary"):
        return {}
    try:
        return json.loads((Path(params["binary"]).parent / VERSIONS_NAME).read_text())
    except (OSError, ValueError):
        return {}
