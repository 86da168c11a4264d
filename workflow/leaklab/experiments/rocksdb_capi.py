"""A ctypes shim over RocksDB's C API, shaped like tecbot/gorocksdb's cgo wrapper.

gorocksdb handed RocksDB a ``full_merge`` callback that returned a malloc'd copy of the
merged value, and a ``delete_value`` callback that did nothing.  RocksDB's ``db/c.cc``
calls ``delete_value`` when one is set and only calls ``free()`` itself when it is
NULL, so the empty callback suppressed the free and every merged value leaked
(fixed by gorocksdb PR #152, which made the callback free the value).

The operator here is built the same way: ``real`` returns a malloc'd concatenation of
the existing value and all operands, ``dummy`` returns NULL with length 0 (nothing
allocated, as gorocksdb's empty slice); ``free_values`` chooses between the buggy
empty ``delete_value`` and the fixed one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator

LIBRARY = ctypes.util.find_library("rocksdb") or "librocksdb.so"
_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]

FULL_MERGE = ctypes.CFUNCTYPE(
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
    ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t),
    ctypes.c_int, ctypes.POINTER(ctypes.c_ubyte), ctypes.POINTER(ctypes.c_size_t),
)
PARTIAL_MERGE = ctypes.CFUNCTYPE(
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t), ctypes.c_int,
    ctypes.POINTER(ctypes.c_ubyte), ctypes.POINTER(ctypes.c_size_t),
)
DELETE_VALUE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
NAME = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class RocksDBError(RuntimeError):
    pass


def load() -> ctypes.CDLL:
    lib = ctypes.CDLL(LIBRARY)
    p, sz, err = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p)
    signatures = {
        "rocksdb_options_create": ([], p),
        "rocksdb_options_destroy": ([p], None),
        "rocksdb_options_set_create_if_missing": ([p, ctypes.c_ubyte], None),
        "rocksdb_options_set_disable_auto_compactions": ([p, ctypes.c_int], None),
        "rocksdb_options_set_merge_operator": ([p, p], None),
        "rocksdb_options_set_compression": ([p, ctypes.c_int], None),
        "rocksdb_options_set_block_based_table_factory": ([p, p], None),
        "rocksdb_block_based_options_create": ([], p),
        "rocksdb_block_based_options_set_checksum": ([p, ctypes.c_char], None),
        "rocksdb_block_based_options_set_format_version": ([p, ctypes.c_int], None),
        "rocksdb_mergeoperator_create": ([p, DESTRUCTOR, FULL_MERGE, PARTIAL_MERGE, DELETE_VALUE, NAME], p),
        "rocksdb_open": ([p, ctypes.c_char_p, err], p),
        "rocksdb_open_for_read_only": ([p, ctypes.c_char_p, ctypes.c_ubyte, err], p),
        "rocksdb_close": ([p], None),
        "rocksdb_writeoptions_create": ([], p),
        "rocksdb_writeoptions_destroy": ([p], None),
        "rocksdb_merge": ([p, p, ctypes.c_char_p, sz, ctypes.c_char_p, sz, err], None),
        "rocksdb_flushoptions_create": ([], p),
        "rocksdb_flushoptions_destroy": ([p], None),
        "rocksdb_flush": ([p, p, err], None),
        "rocksdb_readoptions_create": ([], p),
        "rocksdb_readoptions_destroy": ([p], None),
        "rocksdb_readoptions_set_fill_cache": ([p, ctypes.c_ubyte], None),
        "rocksdb_create_iterator": ([p, p], p),
        "rocksdb_iter_destroy": ([p], None),
        "rocksdb_iter_seek_to_first": ([p], None),
        "rocksdb_iter_valid": ([p], ctypes.c_ubyte),
        "rocksdb_iter_next": ([p], None),
        "rocksdb_iter_key": ([p, ctypes.POINTER(sz)], p),
        "rocksdb_iter_value": ([p, ctypes.POINTER(sz)], p),
        "rocksdb_iter_get_error": ([p, err], None),
        "rocksdb_free": ([p], None),
    }
    for name, (argtypes, restype) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    return lib


def _check(error: ctypes.c_char_p) -> None:
    if error.value:
        raise RocksDBError(error.value.decode(errors="replace"))


class MergeOperator:
    """The C callbacks, kept alive as long as the operator (ctypes frees unreferenced ones)."""

    def __init__(self, lib: ctypes.CDLL, kind: str, free_values: bool, name: bytes = b"leaklab.concat"):
        if kind not in ("real", "dummy"):
            raise ValueError(f"merge operator kind must be real or dummy, not {kind!r}")
        self._name = ctypes.create_string_buffer(name)
        self.merged = 0
        self._callbacks = (
            DESTRUCTOR(lambda state: None),
            FULL_MERGE(self._full_merge_real if kind == "real" else self._full_merge_dummy),
            PARTIAL_MERGE(self._partial_merge),
            DELETE_VALUE(self._free_value if free_values else self._keep_value),
            NAME(lambda state: ctypes.addressof(self._name)),
        )
        self.handle = lib.rocksdb_mergeoperator_create(None, *self._callbacks)

    def _full_merge_real(self, state, key, key_len, existing, existing_len, operands, operand_lens, n, success, new_len):
        parts = [ctypes.string_at(existing, existing_len)] if existing else []
        parts += [ctypes.string_at(operands[i], operand_lens[i]) for i in range(n)]
        merged = b"".join(parts)
        buffer = _libc.malloc(max(len(merged), 1))
        ctypes.memmove(buffer, merged, len(merged))
        new_len[0] = len(merged)
        success[0] = 1
        self.merged += 1
        return buffer

    def _full_merge_dummy(self, state, key, key_len, existing, existing_len, operands, operand_lens, n, success, new_len):
        new_len[0] = 0
        success[0] = 1
        self.merged += 1
        return None

    @staticmethod
    def _partial_merge(state, key, key_len, operands, operand_lens, n, success, new_len):
        success[0] = 0  # keep operands apart: every read must do the full merge
        new_len[0] = 0
        return None

    @staticmethod
    def _keep_value(state, value, value_len):
        """gorocksdb before PR #152: the callback exists, so RocksDB does not free()."""

    @staticmethod
    def _free_value(state, value, value_len):
        _libc.free(value)


class Database:
    """A RocksDB database opened through the C API with the given merge operator."""

    def __init__(self, path: str, operator: MergeOperator, lib: ctypes.CDLL, read_only: bool, create: bool = False):
        self.lib, self.operator = lib, operator
        self.options = lib.rocksdb_options_create()
        lib.rocksdb_options_set_create_if_missing(self.options, int(create))
        lib.rocksdb_options_set_disable_auto_compactions(self.options, 1)
        lib.rocksdb_options_set_compression(self.options, 0)
        lib.rocksdb_options_set_merge_operator(self.options, operator.handle)
        # crc32c and format 4: RocksDB 7's defaults (XXH3, format 5) are unreadable by
        # the RocksDB 6.14 inside the python-rocksdb wheel, which reads the same fixture.
        table = lib.rocksdb_block_based_options_create()
        lib.rocksdb_block_based_options_set_checksum(table, b"\x01")
        lib.rocksdb_block_based_options_set_format_version(table, 4)
        lib.rocksdb_options_set_block_based_table_factory(self.options, table)
        error = ctypes.c_char_p()
        if read_only:
            self.db = lib.rocksdb_open_for_read_only(self.options, path.encode(), 0, ctypes.byref(error))
        else:
            self.db = lib.rocksdb_open(self.options, path.encode(), ctypes.byref(error))
        _check(error)

    def merge_batch(self, items: Iterator[tuple[bytes, bytes]]) -> None:
        write = self.lib.rocksdb_writeoptions_create()
        error = ctypes.c_char_p()
        try:
            for key, value in items:
                self.lib.rocksdb_merge(self.db, write, key, len(key), value, len(value), ctypes.byref(error))
                _check(error)
        finally:
            self.lib.rocksdb_writeoptions_destroy(write)

    def flush(self) -> None:
        flush = self.lib.rocksdb_flushoptions_create()
        error = ctypes.c_char_p()
        self.lib.rocksdb_flush(self.db, flush, ctypes.byref(error))
        self.lib.rocksdb_flushoptions_destroy(flush)
        _check(error)

    def scan(self) -> tuple[int, int]:
        """Iterate the whole database, reading every key and value, without filling the
        block cache (as the original did); returns (keys, value bytes)."""
        read = self.lib.rocksdb_readoptions_create()
        self.lib.rocksdb_readoptions_set_fill_cache(read, 0)
        it = self.lib.rocksdb_create_iterator(self.db, read)
        keys = total = 0
        size = ctypes.c_size_t()
        try:
            self.lib.rocksdb_iter_seek_to_first(it)
            while self.lib.rocksdb_iter_valid(it):
                ctypes.string_at(self.lib.rocksdb_iter_key(it, ctypes.byref(size)), size.value)
                value = ctypes.string_at(self.lib.rocksdb_iter_value(it, ctypes.byref(size)), size.value)
                keys += 1
                total += len(value)
                self.lib.rocksdb_iter_next(it)
            error = ctypes.c_char_p()
            self.lib.rocksdb_iter_get_error(it, ctypes.byref(error))
            _check(error)
        finally:
            self.lib.rocksdb_iter_destroy(it)
            self.lib.rocksdb_readoptions_destroy(read)
        return keys, total

    def close(self) -> None:
        self.lib.rocksdb_close(self.db)
        self.lib.rocksdb_options_destroy(self.options)
