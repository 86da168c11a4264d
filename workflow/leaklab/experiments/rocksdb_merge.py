"""``rocksdb_merge``: merged values leaked through a C binding's empty ``delete_value``.

After vitalyisaev2/gorocksdb_merge_operator_issue: a Go service iterated its whole
RocksDB database with a merge operator written in Go; RSS grew by every merged value.
Variants are ``<binding>-<operator>``:

- ``binding-*``: the operator written in Python through the python-rocksdb API
  (faust-streaming-rocksdb; its C++ wrapper copies the result into a std::string).
- ``capi-*``: RocksDB's C API through a ctypes shim shaped like gorocksdb before its fix
  (``delete_value`` does nothing, so RocksDB never frees the merged value).
- ``capi_fixed-*``: the same shim after the fix (``delete_value`` frees).
- ``*-real`` concatenates the existing value and every operand; ``*-dummy`` returns an
  empty value and allocates nothing.

One unit = one full pass over the database.  Expected: ``capi-real`` grows by about
keys x merged value size per pass; no other variant grows after the first pass.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

from leaklab.experiments import cli
from leaklab.experiments.marks import mark

VARIANTS = ("binding-dummy", "binding-real", "capi-dummy", "capi-real", "capi_fixed-real")
BASELINE = "binding-dummy"
UNIT = "pass"
KEY_METRICS = ("malloc_in_use_bytes",)
SCALED_PARAMS = ("keys",)  # heavy profilers run on a smaller database
DEFAULTS = {"keys": 50_000, "operands": 10, "operand_bytes": 64, "passes": 10, "seed": 42, "fixture": None}
LENGTH_PARAM = "passes"
READS_ROCKSDB_FIXTURE = True  # the merge-only database built once by the workflow (rule rocksdb_fixture)
# Documented maxima: far above every default and every published reproduction, low
# enough that a typo (``keys: 1000000000000``) is an error, not a job that fills the disk.
PARAM_MAXIMA = {"keys": 10_000_000, "operands": 1_000, "operand_bytes": 2**20, "passes": 100_000, "seed": 2**32 - 1}


def footprint(params: dict) -> int:
    """Bytes the fixture database takes at once: it must fit in this machine's memory."""
    return int(params["keys"]) * int(params["operands"]) * int(params["operand_bytes"])
OPERATOR_NAME = b"leaklab.concat"


def native_libraries() -> list[str]:
    """The two RocksDB builds the variants use: Debian's librocksdb and the wheel's."""
    import ctypes.util
    import glob
    import os

    import rocksdb

    found = glob.glob(os.path.join(os.path.dirname(rocksdb.__file__), "*.so"))
    system = ctypes.util.find_library("rocksdb")
    return found + ([f"/usr/lib/x86_64-linux-gnu/{system}"] if system else [])


def fixture_key(seed: int, index: int) -> bytes:
    """A 32-byte key, spread over the key space as real ids would be."""
    return hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=16).hexdigest().encode()


def build_fixture(path: Path, keys: int, operands: int, operand_bytes: int, seed: int) -> dict:
    """Write every key only with Merge, one flush per operand round, no compaction.

    With auto-compaction off and partial merge refused, each key keeps ``operands``
    unmerged operands spread over as many SST files, so every read of the finished
    database calls FullMerge; that is what made the original leak visible (its author
    noted that DBs produced by its own generator, once compacted, did not reproduce).
    """
    from leaklab.experiments import rocksdb_capi

    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    lib = rocksdb_capi.load()
    operator = rocksdb_capi.MergeOperator(lib, "dummy", free_values=True, name=OPERATOR_NAME)
    db = rocksdb_capi.Database(str(path), operator, lib, read_only=False, create=True)
    rng = random.Random(seed)
    key_list = [fixture_key(seed, i) for i in range(keys)]
    try:
        for _ in range(operands):
            db.merge_batch((key, rng.randbytes(operand_bytes)) for key in key_list)
            db.flush()
    finally:
        db.close()
    if operator.merged:
        raise RuntimeError(f"building {path} merged {operator.merged} values; operands must stay unmerged")
    return {"keys": keys, "operands": operands, "operand_bytes": operand_bytes, "seed": seed}


def fixture_command(path: Path, keys: int, operands: int, operand_bytes: int, seed: int) -> list[str]:
    """:func:`build_fixture` as its own process, so it runs under the measurements' limits."""
    import sys

    code = ("import sys; from leaklab.experiments.rocksdb_merge import build_fixture; "
            "print(build_fixture(sys.argv[1], *map(int, sys.argv[2:])))")
    return [sys.executable, "-c", code, str(path), str(keys), str(operands), str(operand_bytes), str(seed)]


def _binding_scanner(path: str, operator_kind: str):
    import rocksdb

    class Concat(rocksdb.interfaces.MergeOperator):
        def full_merge(self, key, existing_value, operand_list):
            if operator_kind == "dummy":
                return True, b""
            return True, (existing_value or b"") + b"".join(operand_list)

        def partial_merge(self, key, left, right):
            return False, None

        def name(self):
            return OPERATOR_NAME

    options = rocksdb.Options(merge_operator=Concat(), disable_auto_compactions=True)
    db = rocksdb.DB(path, options, read_only=True)

    def scan() -> tuple[int, int]:
        it = db.iteritems(fill_cache=False)
        it.seek_to_first()
        keys = total = 0
        for _key, value in it:
            keys += 1
            total += len(value)
        return keys, total

    return scan, lambda: None


def _capi_scanner(path: str, binding: str, operator_kind: str):
    from leaklab.experiments import rocksdb_capi

    lib = rocksdb_capi.load()
    operator = rocksdb_capi.MergeOperator(lib, operator_kind, free_values=binding == "capi_fixed", name=OPERATOR_NAME)
    db = rocksdb_capi.Database(path, operator, lib, read_only=True)
    return db.scan, db.close


def run(variant: str, params: dict, workdir: Path) -> None:
    """Iterate the whole fixture database ``passes`` times with the variant's operator."""
    p = {**DEFAULTS, **params}
    fixture = p["fixture"]
    if not fixture:
        fixture = workdir / "fixture"
        build_fixture(fixture, int(p["keys"]), int(p["operands"]), int(p["operand_bytes"]), int(p["seed"]))
    binding, operator_kind = variant.split("-")
    if binding == "binding":
        scan, close = _binding_scanner(str(fixture), operator_kind)
    else:
        scan, close = _capi_scanner(str(fixture), binding, operator_kind)
    mark(0, "start")
    for unit in range(1, int(p["passes"]) + 1):
        keys, value_bytes = scan()
        mark(unit, "unit", keys_read=keys, value_bytes_read=value_bytes)
    close()


main = cli(run, VARIANTS)

if __name__ == "__main__":
    main()
