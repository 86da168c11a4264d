// Package unitline speaks leaklab's unit-line protocol for the Go reproductions.
//
// The runner gives the program a file path in LEAKLAB_UNITS; after each unit of
// work the program appends "<unit> name=value ..." and flushes. LEAKLAB_SYNC_FDS
// ("<ready>,<release>") lets the program ask for one last sample (and a profiler's
// end-of-work snapshot) before it exits, while everything it holds is still alive,
// and, at the pace LEAKLAB_UNIT_READINGS gives ("<min gap s>,<cost factor>"), wait at
// a unit mark until the runner has read its mappings, so that reading sees the memory
// the unit line's RSS saw.
package unitline

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readingWait is how long a unit mark waits for the runner's reading; finalWait how long
// Finish waits for the last sample.
const (
	readingWait = 2 * time.Second
	finalWait   = time.Minute
)

var (
	syncOnce               sync.Once
	syncReady, syncRelease *os.File // the sync pipe's ends; nil when the runner handed none over
	syncReleaseFd          int      // the release end's descriptor (non-blocking), for draining
)

// syncPipe opens the sync pipe once (a second os.NewFile of the same descriptor would
// close it when collected).
func syncPipe() (*os.File, *os.File) {
	syncOnce.Do(func() {
		fds := strings.Split(os.Getenv("LEAKLAB_SYNC_FDS"), ",")
		if len(fds) != 2 {
			return
		}
		ready, errReady := strconv.Atoi(fds[0])
		release, errRelease := strconv.Atoi(fds[1])
		if errReady != nil || errRelease != nil {
			return
		}
		_ = syscall.SetNonblock(release, true) // lets the reads below time out
		syncReady = os.NewFile(uintptr(ready), "leaklab-ready")
		syncRelease = os.NewFile(uintptr(release), "leaklab-release")
		syncReleaseFd = release
	})
	return syncReady, syncRelease
}

// askAndWait writes request into the sync pipe and waits at most wait for the runner's
// answer, the byte answer (an answer left over from a wait that timed out is dropped
// first, and an answer to another request does not end this wait); the time waited.
func askAndWait(request string, answer byte, wait time.Duration) time.Duration {
	ready, release := syncPipe()
	if ready == nil {
		return 0
	}
	start := time.Now()
	buf := make([]byte, 64)
	for { // a read past its deadline reads nothing: drain the descriptor itself
		if n, err := syscall.Read(syncReleaseFd, buf); err != nil || n <= 0 {
			break
		}
	}
	if _, err := ready.Write([]byte(request)); err != nil {
		return wait
	}
	_ = release.SetReadDeadline(start.Add(wait))
	for {
		n, err := release.Read(buf)
		if err != nil || n <= 0 || bytes.IndexByte(buf[:n], answer) >= 0 {
			return time.Since(start)
		}
	}
}

// Writer appends unit lines to the file named by LEAKLAB_UNITS (nowhere when unset).
type Writer struct {
	file        *os.File
	gap, factor float64   // LEAKLAB_UNIT_READINGS; factor 0: no waiting at unit marks
	nextReading time.Time // a unit mark before this does not wait for a reading
}

// Open opens the unit file; a program run by hand writes no unit lines.
func Open() (*Writer, error) {
	path := os.Getenv("LEAKLAB_UNITS")
	if path == "" {
		return &Writer{}, nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("LEAKLAB_UNITS: %w", err)
	}
	w := &Writer{file: f}
	if pace := strings.Split(os.Getenv("LEAKLAB_UNIT_READINGS"), ","); len(pace) == 2 {
		gap, errGap := strconv.ParseFloat(pace[0], 64)
		factor, errFactor := strconv.ParseFloat(pace[1], 64)
		if errGap == nil && errFactor == nil && gap >= 0 && factor > 0 {
			w.gap, w.factor = gap, factor
		}
	}
	return w, nil
}

// Unit writes one line: the unit number and its metrics, sorted by name.  With
// LEAKLAB_PPROF_DIR set it first writes a heap profile (runtime/pprof, the live heap
// as of the last GC) to heap.<unit>.pb.gz there, so the profile is in place when the
// unit is.
func (w *Writer) Unit(unit int, metrics map[string]float64) error {
	if err := HeapProfile(unit); err != nil {
		return err
	}
	names := make([]string, 0, len(metrics))
	for name := range metrics {
		names = append(names, name)
	}
	sort.Strings(names)
	var line strings.Builder
	line.WriteString(strconv.Itoa(unit))
	for _, name := range names {
		line.WriteString(" " + name + "=" + strconv.FormatFloat(metrics[name], 'f', -1, 64))
	}
	line.WriteString("\n")
	if w.file == nil {
		_, err := os.Stdout.WriteString(line.String())
		return err
	}
	if _, err := w.file.WriteString(line.String()); err != nil { // one write(2) per line: never half a line
		return err
	}
	w.waitForReading(unit)
	return nil
}

// waitForReading lets the runner read the process at this unit mark when one is due.
func (w *Writer) waitForReading(unit int) {
	if w.factor == 0 || time.Now().Before(w.nextReading) {
		return
	}
	waited := askAndWait("u"+strconv.Itoa(unit)+"\n", 'u', readingWait).Seconds()
	pause := w.gap
	if w.factor*waited > pause {
		pause = w.factor * waited
	}
	w.nextReading = time.Now().Add(time.Duration(pause * float64(time.Second)))
}

// HeapProfile writes heap.<unit>.pb.gz and heap.<unit>.txt into LEAKLAB_PPROF_DIR
// (nothing when unset): the first is runtime/pprof's own (what go tool pprof reads),
// the second the same records with every frame of their stacks (AllFramesHeapText).
func HeapProfile(unit int) error {
	dir := os.Getenv("LEAKLAB_PPROF_DIR")
	if dir == "" {
		return nil
	}
	for _, form := range []struct {
		suffix string
		write  func(*os.File) error
	}{
		{"pb.gz", func(f *os.File) error { return pprof.WriteHeapProfile(f) }},
		{"txt", AllFramesHeapText},
	} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap.%d.%s", unit, form.suffix)))
		if err != nil {
			return fmt.Errorf("LEAKLAB_PPROF_DIR: %w", err)
		}
		if err := form.write(f); err != nil {
			f.Close()
			return fmt.Errorf("heap profile: %w", err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// AllFramesHeapText writes the heap profile in runtime/pprof's text form (debug=1:
// unscaled counts, "@ heap/<2*MemProfileRate>") but with every frame of each stack.
// runtime/pprof hides the runtime's frames at the top of a stack (mallocgc, and for a
// map mapassign, hashGrow, makeBucketArray), which are what name a map's buckets.
func AllFramesHeapText(f *os.File) error {
	var records []runtime.MemProfileRecord
	n, ok := runtime.MemProfile(nil, true)
	for {
		records = make([]runtime.MemProfileRecord, n+50)
		if n, ok = runtime.MemProfile(records, true); ok {
			records = records[:n]
			break
		}
	}
	var total runtime.MemProfileRecord
	for i := range records {
		total.AllocBytes += records[i].AllocBytes
		total.AllocObjects += records[i].AllocObjects
		total.FreeBytes += records[i].FreeBytes
		total.FreeObjects += records[i].FreeObjects
	}
	out := bufio.NewWriter(f)
	fmt.Fprintf(out, "heap profile: %d: %d [%d: %d] @ heap/%d\n", total.InUseObjects(), total.InUseBytes(),
		total.AllocObjects, total.AllocBytes, 2*runtime.MemProfileRate)
	for i := range records {
		r := &records[i]
		fmt.Fprintf(out, "%d: %d [%d: %d] @", r.InUseObjects(), r.InUseBytes(), r.AllocObjects, r.AllocBytes)
		for _, pc := range r.Stack() {
			fmt.Fprintf(out, " %#x", pc)
		}
		fmt.Fprintln(out)
		frames := runtime.CallersFrames(r.Stack())
		for {
			frame, more := frames.Next()
			if frame.Function != "" && frame.Function != "runtime.goexit" {
				fmt.Fprintf(out, "#\t%#x\t%s+%#x\t%s:%d\n", frame.PC, frame.Function, frame.PC-frame.Entry,
					frame.File, frame.Line)
			}
			if !more {
				break
			}
		}
		fmt.Fprintln(out)
	}
	return out.Flush()
}

// GoHeap adds the Go runtime's own view of its heap (it does not use malloc, so
// malloc-hooking profilers never see it) and RSS read by the process itself.
func GoHeap(metrics map[string]float64) map[string]float64 {
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	metrics["go_heap_alloc_bytes"] = float64(stats.HeapAlloc)
	metrics["go_heap_sys_bytes"] = float64(stats.HeapSys)
	metrics["go_heap_released_bytes"] = float64(stats.HeapReleased)
	metrics["go_heap_inuse_bytes"] = float64(stats.HeapInuse)
	if rss, err := RSS(); err == nil {
		metrics["rss_bytes"] = float64(rss)
	}
	return metrics
}

// RSS is the resident set size from /proc/self/statm.
func RSS() (int64, error) {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/self/statm: %q", raw)
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize()), err
}

// Finish asks the runner for its last sample and waits (at most a minute) until it
// has been taken; whatever the caller still holds stays alive meanwhile.
func Finish() {
	askAndWait("x", 'x', finalWait)
}
