"""Wheels for library versions PyPI has no wheel of for this Python, built once and kept.

DuckDB 0.3.2, the version of duckdb#3291, has only a source distribution; building it
takes 25-40 minutes on two cores.  ``ensure`` returns a wheel from the cache
(``LEAKLAB_CACHE``, else ``$XDG_CACHE_HOME/leaklab``, else ``~/.cache/leaklab``:
outside ``results/``, so ``make clean`` keeps it), building it first when it is not
there: a message with the time to expect before it starts, a log per version, and the
wheel moved into place only when complete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD_REQUIREMENTS = ("setuptools", "wheel", "pybind11", "numpy")
# GCC 12 no longer includes these through other headers; older C++ sources assumed it
DEFAULT_CFLAGS = "-include cstdint -include limits"
# minutes on this project's 2-core machine, for the message before a long build
EXPECTED_MINUTES = {"duckdb": "25-40"}


def cache_dir() -> Path:
    base = os.environ.get("LEAKLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "leaklab")
    return Path(base)


def _build_python(cache: Path, python: str, requirements: tuple[str, ...]) -> str:
    """A venv holding only the build requirements (builds run without isolation)."""
    venv = cache / "build-venv"
    ready = venv / ".ready"
    if not ready.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *requirements], check=True)
        ready.touch()
    return str(venv / "bin" / "python")


def find(package: str, version: str, cache: Path | None = None) -> Path | None:
    """The cached wheel of ``package==version``, if one was built."""
    folder = (cache or cache_dir()) / "wheels" / f"{package}-{version}"
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def ensure(package: str, source: str, version: str, *, cache: Path | None = None, cflags: str = DEFAULT_CFLAGS,
           python: str = sys.executable, requirements: tuple[str, ...] = BUILD_REQUIREMENTS, log=sys.stderr) -> Path:
    """The wheel of ``package==version`` built from ``source`` (a requirement such as
    ``duckdb==0.3.2``, or a path to a source distribution), from the cache when built before."""
    cache = cache or cache_dir()
    wheel = find(package, version, cache)
    if wheel:
        print(f"{package}=={version}: cached wheel {wheel}", file=log)
        return wheel
    folder = cache / "wheels" / f"{package}-{version}"
    build_log = cache / "logs" / f"{package}-{version}.log"
    build_log.parent.mkdir(parents=True, exist_ok=True)
    expected = EXPECTED_MINUTES.get(package, "a few")
    print(f"{package}=={version}: no wheel for Python {sys.version_info.major}.{sys.version_info.minor} on PyPI; "
          f"building it from its source distribution once (expect {expected} minutes); log: {build_log}",
          file=log, flush=True)
    builder = _build_python(cache, python, requirements)
    env = {**os.environ, "CFLAGS": cflags, "CXXFLAGS": cflags}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache) as partial, open(build_log, "w") as out:
        done = subprocess.run([builder, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", partial,
                               source], stdout=out, stderr=subprocess.STDOUT, env=env)
        built = sorted(Path(partial).glob("*.whl"))
        if done.returncode != 0 or not built:
            raise RuntimeError(f"{package}=={version}: the build failed (exit {done.returncode}); see {build_log}")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(built[0]), folder / built[0].name)
    print(f"{package}=={version}: built in {(time.monotonic() - started) / 60:.1f} min", file=log)
    return folder / built[0].name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the path of a wheel for PACKAGE==VERSION, building it "
                                                 "from its source distribution into the cache when needed.")
    parser.add_argument("package")
    parser.add_argument("version")
    parser.add_argument("--source", help="what pip builds (default PACKAGE==VERSION from PyPI; or an sdist path)")
    parser.add_argument("--cflags", default=DEFAULT_CFLAGS)
    args = parser.parse_args(argv)
    wheel = ensure(args.package, args.source or f"{args.package}=={args.version}", args.version, cflags=args.cflags)
    print(wheel)


if __name__ == "__main__":
    main()
