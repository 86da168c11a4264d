// go_map: a Go map never shrinks (100 Go Mistakes #28).
//
// Each cycle fills a map[int][128]byte with N entries and deletes every key again.
// Deleting keeps the buckets (the article: 461 MB after 1M inserts, 293 MB after
// deleting them all and a GC). Variants:
//
//	kept          the same map is emptied by delete and refilled next cycle
//	rebuilt       after deleting, the map is replaced by a new one (buckets become garbage)
//	rebuilt_free  rebuilt, then runtime/debug.FreeOSMemory hands the pages back at once
//
// One unit = one fill/empty cycle; each cycle reports the Go heap right after the fill
// and after the empty and a GC (where the article printed it) and RSS.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"leaklab/unitline"
)

func fill(m map[int][128]byte, entries int) {
	var value [128]byte
	for i := 0; i < entries; i++ {
		value[i%128] = byte(i)
		m[i] = value
	}
}

func heapAlloc() float64 {
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return float64(stats.HeapAlloc)
}

func run(variant string, entries, cycles int) error {
	units, err := unitline.Open()
	if err != nil {
		return err
	}
	m := make(map[int][128]byte)
	if err := units.Unit(0, unitline.GoHeap(map[string]float64{})); err != nil { // before the first fill
		return err
	}
	for cycle := 1; cycle <= cycles; cycle++ {
		fill(m, entries)
		filled := heapAlloc()
		for i := 0; i < entries; i++ {
			delete(m, i)
		}
		if variant != "kept" {
			m = make(map[int][128]byte)
		}
		runtime.GC()
		if variant == "rebuilt_free" {
			debug.FreeOSMemory()
		}
		metrics := unitline.GoHeap(map[string]float64{"filled_heap_alloc_bytes": filled, "map_len": float64(len(m))})
		if err := units.Unit(cycle, metrics); err != nil {
			return err
		}
	}
	unitline.Finish()
	runtime.KeepAlive(m)
	return nil
}

func main() {
	variant := flag.String("variant", "", "kept, rebuilt or rebuilt_free")
	entries := flag.Int("entries", 1_000_000, "map entries per cycle")
	cycles := flag.Int("cycles", 5, "fill/empty cycles (units)")
	flag.Parse()
	if (*variant != "kept" && *variant != "rebuilt" && *variant != "rebuilt_free") || *entries < 1 || *cycles < 1 {
		fmt.Fprintln(os.Stderr, "usage: go_map -variant {kept,rebuilt,rebuilt_free} [-entries N] [-cycles N]")
		os.Exit(2)
	}
	if err := run(*variant, *entries, *cycles); err != nil {
		fmt.Fprintln(os.Stderr, "go_map:", err)
		os.Exit(1)
	}
}
