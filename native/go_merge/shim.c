#include <malloc.h>
#include <stdlib.h>

#include "_cgo_export.h"
#include "shim.h"

/* gorocksdb before its fix: the callback exists, so RocksDB's db/c.cc does not free()
 * the merged value itself, and the callback does nothing: every merged value leaks. */
static void delete_value_empty(void *state, const char *value, size_t length) {}

/* gorocksdb PR #152: the callback frees what full_merge malloc'd. */
static void delete_value_free(void *state, const char *value, size_t length) { free((char *)value); }

static void destructor(void *state) {}

static char *full_merge(void *state, const char *key, size_t key_length, const char *existing,
                        size_t existing_length, const char *const *operands, const size_t *operand_lengths,
                        int n_operands, unsigned char *success, size_t *new_length) {
    return leaklabFullMerge((uintptr_t)state, (char *)key, key_length, (char *)existing, existing_length,
                            (char **)operands, (size_t *)operand_lengths, n_operands, success, new_length);
}

static char *partial_merge(void *state, const char *key, size_t key_length, const char *const *operands,
                           const size_t *operand_lengths, int n_operands, unsigned char *success,
                           size_t *new_length) {
    *success = 0; /* keep operands apart: every read does the full merge */
    *new_length = 0;
    return NULL;
}

static const char *name(void *state) { return leaklabMergeOperatorName((uintptr_t)state); }

rocksdb_mergeoperator_t *leaklab_mergeoperator_create(uintptr_t handle, int free_values) {
    return rocksdb_mergeoperator_create((void *)handle, destructor, full_merge, partial_merge,
                                        free_values ? delete_value_free : delete_value_empty, name);
}

/* glibc's heap in use, as leaklab's Python marks read it (uordblks + hblkhd). */
size_t leaklab_malloc_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
