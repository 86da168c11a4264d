"""``planted``: leaks at known rates, so every pipeline run checks its own detector.

Each step (the unit) allocates and keeps a known number of bytes:

- ``zero``: allocates and frees; must come out ``stable``.
- ``python_small``/``python_large``: small Python objects (pymalloc, the Python heap).
- ``native_tiny``/``native_small``/``native_large``: ``malloc`` through ctypes, touched so
  the pages are resident (the native heap).
- ``fragment``: the first step fills 16 x ``large_bytes`` with small objects and frees
  all but one in 64; nothing grows after, but the half-empty arenas stay: ``retention``.

Behaviours whose truth is known but which are not leaks, or not simple ones (the
labelled accuracy benchmark runs them; the default run need not):

- ``cache``: a cache of ``small_bytes`` entries per step, capped at ``cache_steps``
  entries (the oldest evicted): fills, then flat: ``settling``.
- ``settle``: allocations whose footprint approaches a ceiling of 32 x ``small_bytes``
  exponentially, with a time constant of a third of the steps (each step adds
  1 - exp(-3/steps) of what is left), as an allocator's arenas or a pool warming up
  do: still rising in the late half of the run, but slowing: ``settling``.
- ``sawtooth``: keeps ``small_bytes`` per step, and also holds garbage in native blocks
  that it frees every 5th step, as a collector would: a ``leak`` under a sawtooth.
- ``wave``: keeps ``small_bytes`` per step, and from the start of each step until just
  before its mark holds 4 times what it keeps in scratch pages (an anonymous mapping:
  a copy of its data being rebuilt, as a compaction does): memory that rises and falls
  within every unit, over a ``leak``.  A reading taken a little after the mark sees the
  next step's scratch and places 5 times the leak; the per-unit reading the step waits
  for (``leaklab.process.unit_readings``) does not.

The planted rates are parameters; ``leaklab.model.controls`` checks that each was detected
and estimated within tolerance, and that ``zero`` stayed stable.
"""

from __future__ import annotations

import ctypes
import gc
import math
import mmap
import time
from pathlib import Path

from leaklab.experiments import cli
from leaklab.experiments.marks import mark

VARIANTS = ("zero", "python_small", "python_large", "native_tiny", "native_small", "native_large", "fragment",
            "cache", "settle", "sawtooth", "wave")
BASELINE = "zero"
UNIT = "step"
KEY_METRICS = ("malloc_in_use_bytes",)
RELEASES = True  # `fragment` releases what it allocated: what stays is retention
DEFAULTS = {"steps": 30, "tiny_bytes": 65536, "small_bytes": 262144, "large_bytes": 4194304, "interval_s": 0.02,
            "cache_steps": 8}
LENGTH_PARAM = "steps"
PACED = True  # sleeps between steps: 0.1-0.5 s of CPU in a run of 30 steps 20 ms apart
PARAM_MAXIMA = {"steps": 1_000_000, "tiny_bytes": 2**30, "small_bytes": 2**30, "large_bytes": 2**30, "interval_s": 60}
SAWTOOTH_PERIOD = 5
SETTLE_TIME_CONSTANTS = 3  # `settle` spans this many time constants over its steps
WAVE_SCRATCH = 4  # `wave` holds this many times what it keeps in scratch pages within each step
PY_OBJECT_BYTES = 88  # a 47-byte bytes object takes an 80-byte pymalloc block, plus its list slot

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]


def planted_rate(variant: str, params: dict) -> int:
    """Bytes per step the variant keeps for good (0 for those that do not leak)."""
    p = {**DEFAULTS, **params}
    if variant in ("zero", "fragment", "cache", "settle"):
        return 0
    if variant in ("sawtooth", "wave"):
        return int(p["small_bytes"])
    return int(p[f"{variant.split('_')[1]}_bytes"])


def _python_objects(nbytes: int) -> list[bytes]:
    return [bytes(47) for _ in range(nbytes // PY_OBJECT_BYTES)]


def _native_block(nbytes: int) -> int:
    block = _libc.malloc(nbytes)
    ctypes.memset(block, 1, nbytes)
    return block


def _scratch(nbytes: int) -> mmap.mmap:
    """Anonymous pages, every one touched: resident until closed (unmapped), whatever
    malloc's thresholds are."""
    pages = mmap.mmap(-1, nbytes)
    for offset in range(0, nbytes, mmap.PAGESIZE):
        pages[offset] = 1
    return pages


def run(variant: str, params: dict, workdir: Path) -> list:
    """Keep ``planted_rate`` bytes per step for ``steps`` steps (until exit)."""
    p = {**DEFAULTS, **params}
    rate = planted_rate(variant, p)
    kept: list = []
    garbage: list[int] = []
    ceiling, settled = 32 * int(p["small_bytes"]), 0
    mark(0, "start", planted_bytes=0)
    for step in range(1, int(p["steps"]) + 1):
        if variant == "cache":
            kept.append(_native_block(int(p["small_bytes"])))
            while len(kept) > int(p["cache_steps"]):
                _libc.free(kept.pop(0))
        elif variant == "settle":
            more = int((ceiling - settled) * -math.expm1(-SETTLE_TIME_CONSTANTS / int(p["steps"])))
            if more >= 4096:
                kept.append(_native_block(more))
                settled += more
        elif variant == "sawtooth":
            kept.append(_native_block(rate))
            garbage.append(_native_block(4 * rate))
            if step % SAWTOOTH_PERIOD == 0:
                for block in garbage:
                    _libc.free(block)
                garbage.clear()
        elif variant.startswith("python"):
            kept.append(_python_objects(rate))
        elif variant.startswith("native"):
            kept.append(_native_block(rate))
        elif variant == "zero":
            _libc.free(_native_block(int(p["small_bytes"])))
            del _python_objects(int(p["small_bytes"]))[:]
        elif variant == "fragment" and step == 1:
            filled = _python_objects(16 * int(p["large_bytes"]))
            kept.append(filled[::64])
            del filled
            gc.collect()
        elif variant == "wave":  # the pause is the step's work, done with its scratch held
            scratch = _scratch(WAVE_SCRATCH * rate * step)
            kept.append(_native_block(rate))
            time.sleep(float(p["interval_s"]))
            scratch.close()
        mark(step, "unit", planted_bytes=rate * step)
        if variant != "wave":
            time.sleep(float(p["interval_s"]))
    return kept


main = cli(run, VARIANTS)

if __name__ == "__main__":
    main()
