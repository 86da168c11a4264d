// go_merge: RocksDB's C API through cgo, the way tecbot/gorocksdb used it before PR #152.
//
// After vitalyisaev2/gorocksdb_merge_operator_issue: a Go merge operator exported to C,
// a C shim whose full_merge returns a malloc'd copy of the merged value, and a
// delete_value callback that does nothing, so RocksDB never frees a merged value.
// Variants: leaky-real, leaky-dummy, fixed-real, fixed-dummy (fixed: delete_value
// frees). One unit = one full pass over a merge-only database (leaklab's rocksdb_merge
// fixture), reading every key and value without filling the block cache.
package main

// #include <stdlib.h>
// #include "rocksdb/c.h"
import "C"

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"leaklab/unitline"
)

var variants = []string{"leaky-dummy", "leaky-real", "fixed-dummy", "fixed-real"}

func rocksError(err *C.char) error {
	if err == nil {
		return nil
	}
	defer C.rocksdb_free(unsafe.Pointer(err))
	return errors.New(C.GoString(err))
}

// scan reads the whole database once; returns keys and value bytes read.
func scan(db *C.rocksdb_t) (int, int, error) {
	read := C.rocksdb_readoptions_create()
	defer C.rocksdb_readoptions_destroy(read)
	C.rocksdb_readoptions_set_fill_cache(read, 0)
	it := C.rocksdb_create_iterator(db, read)
	defer C.rocksdb_iter_destroy(it)
	keys, total := 0, 0
	var length C.size_t
	for C.rocksdb_iter_seek_to_first(it); C.rocksdb_iter_valid(it) != 0; C.rocksdb_iter_next(it) {
		C.rocksdb_iter_key(it, &length)
		value := C.rocksdb_iter_value(it, &length)
		_ = C.GoBytes(unsafe.Pointer(value), C.int(length)) // the service used each value
		keys++
		total += int(length)
	}
	var err *C.char
	C.rocksdb_iter_get_error(it, &err)
	return keys, total, rocksError(err)
}

func run(variant, path, name string, passes int) error {
	fix, kind, _ := strings.Cut(variant, "-")
	var op MergeOperator = realOperator{name}
	if kind == "dummy" {
		op = dummyOperator{name}
	}
	options := C.rocksdb_options_create()
	defer C.rocksdb_options_destroy(options)
	C.rocksdb_options_set_disable_auto_compactions(options, 1)
	C.rocksdb_options_set_compression(options, 0)
	C.rocksdb_options_set_merge_operator(options, newMergeOperator(op, fix == "fixed"))
	cPath := C.CString(path)
	defer C.free(unsafe.Pointer(cPath))
	var err *C.char
	db := C.rocksdb_open_for_read_only(options, cPath, 0, &err)
	if e := rocksError(err); e != nil {
		return fmt.Errorf("open %s: %w", path, e)
	}
	defer C.rocksdb_close(db)
	units, e := unitline.Open()
	if e != nil {
		return e
	}
	// unit 0: the database open, before the first pass
	if e := units.Unit(0, unitline.GoHeap(map[string]float64{"malloc_in_use_bytes": float64(mallocInUse())})); e != nil {
		return e
	}
	for pass := 1; pass <= passes; pass++ {
		before := mergedSize
		keys, total, e := scan(db)
		if e != nil {
			return e
		}
		metrics := unitline.GoHeap(map[string]float64{
			"keys_read":           float64(keys),
			"value_bytes_read":    float64(total),
			"merged_bytes":        float64(mergedSize - before),
			"malloc_in_use_bytes": float64(mallocInUse()),
		})
		if e := units.Unit(pass, metrics); e != nil {
			return e
		}
	}
	unitline.Finish() // the database (and what leaked) is still alive here
	return nil
}

func main() {
	variant := flag.String("variant", "", "one of "+strings.Join(variants, ", "))
	db := flag.String("db", "", "a merge-only RocksDB database (leaklab's rocksdb_merge fixture)")
	name := flag.String("name", "leaklab.concat", "merge operator name the database was written with")
	passes := flag.Int("passes", 10, "full passes over the database (units)")
	flag.Parse()
	known := false
	for _, v := range variants {
		known = known || v == *variant
	}
	if !known || *db == "" || *passes < 1 {
		fmt.Fprintf(os.Stderr, "usage: go_merge -variant {%s} -db DIR [-passes N]\n", strings.Join(variants, ","))
		os.Exit(2)
	}
	if err := run(*variant, *db, *name, *passes); err != nil {
		fmt.Fprintln(os.Stderr, "go_merge:", err)
		os.Exit(1)
	}
	// Go's own exit skips C's atexit handlers; a preloaded jemalloc writes its
	// final profile (what is still allocated) from one.
	C.exit(0)
}
