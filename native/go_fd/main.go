// go_fd: Dolt's leaked handles to deleted LOCK files (dolthub/dolt PR #9557).
//
// Each rotation creates a storage directory with a LOCK file held by a file lock
// (flock on a raw descriptor, as a file-lock library does: no *os.File, so no
// finalizer closes it behind the program's back) and a data file, then deletes the
// previous storage directory. `leak` deletes it without closing the LOCK file, as
// Dolt's stats storage did before the fix: the descriptor stays open on an unlinked
// file and the kernel keeps its inode and dentry. `close` closes it first (the fix).
//
// One unit = one rotation; each reports the descriptors that point at deleted files
// and the next free descriptor number (Dolt's regression test TestGCDoesNotLeakFd).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"leaklab/unitline"
)

type storage struct {
	dir  string
	lock int
}

func open(root string, rotation, payloadBytes int) (*storage, error) {
	dir := filepath.Join(root, fmt.Sprintf("stats_%06d", rotation))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), make([]byte, payloadBytes), 0o644); err != nil {
		return nil, err
	}
	lock, err := syscall.Open(filepath.Join(dir, "LOCK"), syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(lock, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil, err
	}
	return &storage{dir: dir, lock: lock}, nil
}

// census adds the open descriptors, those whose target reads "(deleted)", the next
// free descriptor number, the Go heap and RSS to metrics.
func census(metrics map[string]float64) map[string]float64 {
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		deleted := 0
		for _, entry := range entries {
			target, err := os.Readlink(filepath.Join("/proc/self/fd", entry.Name()))
			if err == nil && strings.HasSuffix(target, " (deleted)") {
				deleted++
			}
		}
		metrics["fds"], metrics["deleted_fds"] = float64(len(entries)), float64(deleted)
	}
	metrics["next_fd"] = float64(nextFd())
	return unitline.GoHeap(metrics)
}

// nextFd is the number the next open gets (Dolt's test opens /dev/null to learn it).
func nextFd() int {
	fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	syscall.Close(fd)
	return fd
}

func run(variant, root string, rotations, payloadBytes int, interval time.Duration) error {
	units, err := unitline.Open()
	if err != nil {
		return err
	}
	current, err := open(root, 0, payloadBytes)
	if err != nil {
		return err
	}
	if err := units.Unit(0, census(map[string]float64{})); err != nil { // the first storage open
		return err
	}
	for rotation := 1; rotation <= rotations; rotation++ {
		next, err := open(root, rotation, payloadBytes)
		if err != nil {
			return err
		}
		if variant == "close" {
			syscall.Close(current.lock)
		}
		if err := os.RemoveAll(current.dir); err != nil {
			return err
		}
		current = next
		time.Sleep(interval)
		if err := units.Unit(rotation, census(map[string]float64{})); err != nil {
			return err
		}
	}
	unitline.Finish()
	return nil
}

func main() {
	variant := flag.String("variant", "", "leak or close")
	dir := flag.String("dir", ".", "where the storage directories rotate")
	rotations := flag.Int("rotations", 300, "storage rotations (units)")
	payload := flag.Int("payload-bytes", 4096, "bytes written to each storage's data file")
	interval := flag.Duration("interval", 50*time.Millisecond, "pause after each rotation")
	flag.Parse()
	if (*variant != "leak" && *variant != "close") || *rotations < 1 || *payload < 0 {
		fmt.Fprintln(os.Stderr, "usage: go_fd -variant {leak,close} [-dir D] [-rotations N] [-payload-bytes B] [-interval 50ms]")
		os.Exit(2)
	}
	if err := run(*variant, *dir, *rotations, *payload, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "go_fd:", err)
		os.Exit(1)
	}
}
