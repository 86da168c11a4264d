package main

// #cgo LDFLAGS: -lrocksdb
// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"sync"
	"unsafe"
)

// MergeOperator is the Go interface gorocksdb asked users to implement.
type MergeOperator interface {
	FullMerge(key, existing []byte, operands [][]byte) ([]byte, bool)
	Name() string
}

// realOperator concatenates the existing value and every operand (the original's "real").
type realOperator struct{ name string }

func (o realOperator) FullMerge(key, existing []byte, operands [][]byte) ([]byte, bool) {
	result := make([]byte, len(existing))
	copy(result, existing)
	for _, operand := range operands {
		result = append(result, operand...)
	}
	return result, true
}

func (o realOperator) Name() string { return o.name }

// dummyOperator returns an empty value (the original's "dummy").
type dummyOperator struct{ name string }

func (o dummyOperator) FullMerge(key, existing []byte, operands [][]byte) ([]byte, bool) {
	return []byte{}, true
}

func (o dummyOperator) Name() string { return o.name }

// Operators are registered by index, as gorocksdb did: C holds the index, not a Go pointer.
var (
	registry   = map[uintptr]MergeOperator{}
	names      = map[uintptr]*C.char{}
	registryMu sync.Mutex
	mergedSize uint64 // bytes handed to RocksDB as merged values (malloc'd in C)
)

func register(op MergeOperator) uintptr {
	registryMu.Lock()
	defer registryMu.Unlock()
	handle := uintptr(len(registry) + 1)
	registry[handle] = op
	names[handle] = C.CString(op.Name()) // lives as long as the process, like the operator
	return handle
}

func lookup(handle uintptr) MergeOperator {
	registryMu.Lock()
	defer registryMu.Unlock()
	return registry[handle]
}

// charToByte views C memory as a slice without copying (gorocksdb's charToByte).
func charToByte(data *C.char, length C.size_t) []byte {
	if data == nil || length == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(data)), int(length))
}

// cByteSlice copies a Go slice into malloc'd C memory; an empty slice allocates
// nothing (gorocksdb's cByteSlice, which is why the dummy operator did not leak).
func cByteSlice(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(C.CBytes(b))
}

//export leaklabFullMerge
func leaklabFullMerge(handle C.uintptr_t, key *C.char, keyLength C.size_t, existing *C.char, existingLength C.size_t,
	operands **C.char, operandLengths *C.size_t, n C.int, success *C.uchar, newLength *C.size_t) *C.char {
	cOperands := unsafe.Slice(operands, int(n))
	cLengths := unsafe.Slice(operandLengths, int(n))
	goOperands := make([][]byte, int(n))
	for i := range goOperands {
		goOperands[i] = charToByte(cOperands[i], cLengths[i])
	}
	merged, ok := lookup(uintptr(handle)).FullMerge(charToByte(key, keyLength), charToByte(existing, existingLength), goOperands)
	*newLength = C.size_t(len(merged))
	*success = 0
	if ok {
		*success = 1
	}
	mergedSize += uint64(len(merged))
	return cByteSlice(merged)
}

//export leaklabMergeOperatorName
func leaklabMergeOperatorName(handle C.uintptr_t) *C.char {
	registryMu.Lock()
	defer registryMu.Unlock()
	return names[uintptr(handle)]
}

// newMergeOperator hands the operator to RocksDB through the C shim.
func newMergeOperator(op MergeOperator, freeValues bool) *C.rocksdb_mergeoperator_t {
	free := C.int(0)
	if freeValues {
		free = 1
	}
	return C.leaklab_mergeoperator_create(C.uintptr_t(register(op)), free)
}

func mallocInUse() uint64 { return uint64(C.leaklab_malloc_in_use()) }
