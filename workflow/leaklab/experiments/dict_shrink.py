"""``dict_shrink``: a dict keeps its table after its keys are deleted.

After "100 Go Mistakes" #28 (a Go map never shrinks).  CPython's dict behaves the same:
``Objects/dictobject.c`` resizes only on insert, so deleting every key leaves the
table (about 42 MB for 1M keys on 3.11).  ``rebuilt`` copies the dict after emptying
it, which allocates a table sized for what is left and frees the old one.

One unit = one fill/empty cycle.  Expected: ``dict`` retains its table but does not
grow cycle over cycle (retention, not an unbounded leak); ``rebuilt`` returns it.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from leaklab.experiments import cli
from leaklab.experiments.marks import mark

VARIANTS = ("dict", "rebuilt")
BASELINE = "rebuilt"
UNIT = "cycle"
KEY_METRICS = ("dict_size_bytes",)
RELEASES = True  # every unit ends with the memory handed back: retention is measurable
SCALED_PARAMS = ("entries",)
DEFAULTS = {"entries": 1_000_000, "value_bytes": 128, "cycles": 5}
LENGTH_PARAM = "cycles"
PARAM_MAXIMA = {"entries": 100_000_000, "value_bytes": 2**20, "cycles": 100_000}  # a typo is an error, not a job


def footprint(params: dict) -> int:
    """Bytes the dict's table takes at once: it must fit in this machine's memory."""
    return int(params["entries"]) * (int(params["value_bytes"]) + 100)


def run(variant: str, params: dict, workdir: Path) -> dict[int, bytes]:
    """Fill a dict, delete every key one by one, collect; repeat for each cycle.
    Returns the (empty) dict, which the process keeps alive until it exits."""
    p = {**DEFAULTS, **params}
    entries, width = int(p["entries"]), int(p["value_bytes"])
    table: dict[int, bytes] = {}
    mark(0, "start", dict_size_bytes=sys.getsizeof(table), dict_len=0)
    for cycle in range(1, int(p["cycles"]) + 1):
        for key in range(entries):
            table[key] = key.to_bytes(8, "little") * (width // 8)
        mark(cycle, "filled", dict_size_bytes=sys.getsizeof(table), dict_len=len(table))
        for key in range(entries):
            del table[key]
        gc.collect()
        mark(cycle, "emptied", dict_size_bytes=sys.getsizeof(table), dict_len=len(table))
        if variant == "rebuilt":
            table = dict(table)
            gc.collect()
        mark(cycle, "unit", dict_size_bytes=sys.getsizeof(table), dict_len=len(table))
    return table


main = cli(run, VARIANTS)

if __name__ == "__main__":
    main()
