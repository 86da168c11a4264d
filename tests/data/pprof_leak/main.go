// pprof_leak: a Go service that keeps what each step allocates, with net/http/pprof
// on the loopback, for tests/test_pprof.py.
//
//	pprof_leak -addr 127.0.0.1:PORT -steps N -bytes B [-rate R]
//
// Each step adds B bytes (in 4 KiB records) to a global cache, a map that is never
// trimmed, and prints "step N"; the pprof endpoint stays up until the last step is
// done.  The map's buckets are allocated by the runtime's map code, whose frames
// net/http/pprof hides; -rate sets runtime.MemProfileRate (bytes between samples).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"time"
)

var cache = map[int][]byte{}

//go:noinline
func remember(n int) {
	for i := 0; i < n/4096; i++ {
		record := make([]byte, 4096)
		record[0] = byte(i)
		cache[len(cache)] = record
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6060", "pprof address (loopback)")
	steps := flag.Int("steps", 20, "steps")
	bytes := flag.Int("bytes", 1<<20, "bytes kept per step")
	rate := flag.Int("rate", runtime.MemProfileRate, "runtime.MemProfileRate")
	flag.Parse()
	runtime.MemProfileRate = *rate
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(listener, nil)
	for step := 1; step <= *steps; step++ {
		remember(*bytes)
		fmt.Printf("step %d\n", step)
		time.Sleep(150 * time.Millisecond)
	}
}
