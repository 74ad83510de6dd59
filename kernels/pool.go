package kernels

import (
	"runtime"
	"sync"
)

// The pool is a fixed set of goroutines that wait for work. ParallelFor hands
// each of them one contiguous range and runs the first range itself, so no
// goroutine is started per call and nothing is allocated.

var pool struct {
	mu      sync.Mutex // held for the duration of one ParallelFor
	threads int
	wake    []chan struct{}
	done    sync.WaitGroup
	fn      func(lo, hi int)
	bounds  []int // len threads+1
}

func init() { SetThreads(runtime.GOMAXPROCS(0)) }

// SetThreads sets how many goroutines ParallelFor uses (at least 1). It must
// not be called concurrently with ParallelFor.
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for _, c := range pool.wake {
		close(c)
	}
	pool.threads = n
	pool.wake = make([]chan struct{}, n-1)
	pool.bounds = make([]int, n+1)
	for i := range pool.wake {
		c := make(chan struct{})
		pool.wake[i] = c
		go worker(i+1, c)
	}
}

// Threads reports the number of goroutines ParallelFor uses.
func Threads() int {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.threads
}

func worker(id int, wake chan struct{}) {
	for range wake {
		lo, hi := pool.bounds[id], pool.bounds[id+1]
		if lo < hi {
			pool.fn(lo, hi)
		}
		pool.done.Done()
	}
}

// ParallelFor calls fn on contiguous, disjoint ranges that cover [0, n), one
// range per thread, and returns when all calls have returned. Ranges start at
// multiples of align (align ≤ 1 means 1), so callers can keep SIMD tiles
// whole. A nested or concurrent call runs fn(0, n) on the calling goroutine.
func ParallelFor(n, align int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if align < 1 {
		align = 1
	}
	if n <= align || !pool.mu.TryLock() {
		fn(0, n)
		return
	}
	defer pool.mu.Unlock()
	t := pool.threads
	units := (n + align - 1) / align
	if units < t {
		t = units
	}
	if t <= 1 {
		fn(0, n)
		return
	}
	for i := 0; i <= pool.threads; i++ {
		b := (units * min(i, t) / t) * align
		pool.bounds[i] = min(b, n)
	}
	pool.fn = fn
	pool.done.Add(t - 1)
	for i := 0; i < t-1; i++ {
		pool.wake[i] <- struct{}{}
	}
	fn(pool.bounds[0], pool.bounds[1])
	pool.done.Wait()
	pool.fn = nil
}
