/* The C side of the merge operator, as tecbot/gorocksdb's gorocksdb.c had it before
 * PR #152: RocksDB calls these, they call the Go functions exported in merge.go. */
#include <stdint.h>
#include "rocksdb/c.h"

rocksdb_mergeoperator_t *leaklab_mergeoperator_create(uintptr_t handle, int free_values);
size_t leaklab_malloc_in_use(void);
