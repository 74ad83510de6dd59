package kernels

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// withThreads runs the test with n pool threads and restores the count.
func withThreads(t *testing.T, n int) {
	t.Helper()
	old := Threads()
	SetThreads(n)
	t.Cleanup(func() { SetThreads(old) })
}

// parallelPanic runs ParallelFor and returns what it panicked with (nil if
// it returned normally).
func parallelPanic(n int, fn func(lo, hi int)) (r any) {
	defer func() { r = recover() }()
	ParallelFor(n, 1, fn)
	return nil
}

// checkCovers checks that a ParallelFor over n still visits every index
// exactly once.
func checkCovers(t *testing.T, n int) {
	t.Helper()
	seen := make([]int32, n)
	ParallelFor(n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			atomic.AddInt32(&seen[i], 1)
		}
	})
	if i := slices.IndexFunc(seen, func(c int32) bool { return c != 1 }); i >= 0 {
		t.Fatalf("after the panic, index %d was visited %d times", i, seen[i])
	}
}

// TestParallelForWorkerPanic checks that a panic inside a worker's range
// comes back on the calling goroutine (where a recover can catch it) instead
// of ending the process, and that the pool keeps working afterwards.
func TestParallelForWorkerPanic(t *testing.T) {
	withThreads(t, 4)
	const n = 100
	r := parallelPanic(n, func(lo, hi int) {
		if lo > 0 && lo <= n/2 && n/2 < hi { // one worker's range, not the caller's
			panic("worker range failed")
		}
	})
	if r != "worker range failed" {
		t.Fatalf("ParallelFor panicked with %v, want the worker's value", r)
	}
	checkCovers(t, n)
}

// TestParallelForCallerPanic checks that when the caller's own range
// panics, ParallelFor waits for the workers to finish before re-raising, so
// no worker is still running the old job when the pool is reused.
func TestParallelForCallerPanic(t *testing.T) {
	withThreads(t, 4)
	const n = 100
	var done atomic.Int32
	r := parallelPanic(n, func(lo, hi int) {
		if lo == 0 {
			panic("caller range failed")
		}
		time.Sleep(20 * time.Millisecond)
		done.Add(1)
	})
	if r != "caller range failed" {
		t.Fatalf("ParallelFor panicked with %v, want the caller's value", r)
	}
	if got := done.Load(); got != 3 {
		t.Fatalf("ParallelFor re-raised while workers were running: %d of 3 done", got)
	}
	checkCovers(t, n)
}
