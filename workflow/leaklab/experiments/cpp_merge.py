"""``cpp_merge``: the same merge operator in C++ (``native/cpp_merge``), the original's control.

A ``rocksdb::MergeOperator`` whose ``FullMergeV2`` writes into the ``std::string``
RocksDB owns: nothing for anyone to free.  ``real`` concatenates, ``dummy`` returns an
empty value.  One unit = one full pass over ``rocksdb_merge``'s fixture database.
Expected: flat (the original measured 21.2 MiB peak under massif).
"""

VARIANTS = ("dummy", "real")
BASELINE = "dummy"
UNIT = "pass"
KEY_METRICS = ("malloc_in_use_bytes",)
SCALED_PARAMS = ("keys",)
DEFAULTS = {"keys": 50_000, "passes": 10}
LENGTH_PARAM = "passes"
READS_ROCKSDB_FIXTURE = True
COMMAND = "{binary} {variant} {fixture} {passes}"
