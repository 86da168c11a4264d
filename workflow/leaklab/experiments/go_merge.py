"""``go_merge``: the gorocksdb merge operator leak in Go, through cgo (``native/go_merge``).

The original program's shape: a merge operator written in Go, exported to C, handed to
RocksDB's C API by a C shim whose ``full_merge`` returns a malloc'd copy of the merged
value (``C.CBytes``) and whose ``delete_value`` does nothing, so RocksDB never frees
it (``leaky-*``); ``fixed-*`` frees it (gorocksdb PR #152).  ``*-real`` concatenates
the existing value and every operand, ``*-dummy`` returns an empty slice, which the
shim never mallocs.  One unit = one full pass over ``rocksdb_merge``'s fixture
database.  Expected: ``leaky-real`` grows by keys x merged size per pass, in glibc's
heap and RSS, not in Go's own heap (``go_heap_*``, from ``runtime.MemStats``).
"""

VARIANTS = ("fixed-real", "fixed-dummy", "leaky-dummy", "leaky-real")
BASELINE = "fixed-real"
UNIT = "pass"
KEY_METRICS = ("malloc_in_use_bytes", "go_heap_alloc_bytes")
SCALED_PARAMS = ("keys",)
DEFAULTS = {"keys": 50_000, "passes": 10}
LENGTH_PARAM = "passes"
READS_ROCKSDB_FIXTURE = True
COMMAND = "{binary} -variant {variant} -db {fixture} -passes {passes}"
RUNTIME_HEAP = "Go"
