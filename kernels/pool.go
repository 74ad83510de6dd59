package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The pool is a fixed set of goroutines that wait for work. ParallelFor hands
// each of them one contiguous range and runs the first range itself, so no
// goroutine is started per call and nothing is allocated.
//
// A decode step is a chain of small matrix products (a 1024×1024 bf16
// matrix streams in ~40 µs), so waking a parked thread through the kernel
// (tens of µs) would cost as much as the work. Idle workers therefore spin
// on a job counter for a short while before they park, and the caller spins
// while it waits for them; a parked worker is woken through its channel.

// spinLimit is how many polls an idle worker (or a waiting caller) makes
// before it parks (or yields): about 50–100 µs.
const spinLimit = 1 << 15

type poolWorker struct {
	wake   chan struct{} // capacity 1: a token wakes a parked worker
	parked atomic.Bool
	_      [48]byte // keep workers' flags on separate cache lines
}

var pool struct {
	mu       sync.Mutex // held for the duration of one ParallelFor
	threads  int
	nthreads atomic.Int32 // threads, readable without mu (by a call nested in a ParallelFor)
	workers  []*poolWorker
	gen      atomic.Uint64 // job counter; a change means new work (or exit)
	pending  atomic.Int32  // workers that have not finished the current job
	stop     atomic.Bool   // the current workers must exit (SetThreads)
	fn       func(lo, hi int)
	bounds   []int               // len threads+1
	failure  atomic.Pointer[any] // the first panic of the current job, re-raised by ParallelFor

	dispatches atomic.Uint64 // jobs handed to the workers since start (PoolDispatches)
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
	if len(pool.workers) > 0 { // retire the old workers
		pool.stop.Store(true)
		pool.pending.Store(int32(len(pool.workers)))
		pool.gen.Add(1)
		wakeAll()
		waitWorkers()
		pool.stop.Store(false)
	}
	pool.threads = n
	pool.nthreads.Store(int32(n))
	pool.bounds = make([]int, n+1)
	pool.workers = make([]*poolWorker, n-1)
	for i := range pool.workers {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		pool.workers[i] = w
		go worker(i+1, w, pool.gen.Load())
	}
}

// Threads reports the number of goroutines ParallelFor uses.
func Threads() int {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	return pool.threads
}

func worker(id int, w *poolWorker, last uint64) {
	for {
		// Wait for the job counter to move: spin first, then park.
		for spins := 0; pool.gen.Load() == last; spins++ {
			if spins < spinLimit {
				continue
			}
			w.parked.Store(true)
			if pool.gen.Load() != last {
				if !w.parked.CompareAndSwap(true, false) {
					<-w.wake // a waker claimed us: take its token
				}
				break
			}
			<-w.wake
			spins = 0
		}
		last = pool.gen.Load()
		if pool.stop.Load() {
			pool.pending.Add(-1)
			return
		}
		if lo, hi := pool.bounds[id], pool.bounds[id+1]; lo < hi {
			runRange(lo, hi)
		}
		pool.pending.Add(-1)
	}
}

// runRange calls pool.fn on [lo, hi) and records a panic in pool.failure
// instead of letting it end the process: ParallelFor re-raises it on the
// calling goroutine, where the caller's recover (engine.safeStep) sees it.
func runRange(lo, hi int) {
	defer func() {
		if r := recover(); r != nil {
			failure := r // moved to the heap only on this path, so a normal call does not allocate
			pool.failure.CompareAndSwap(nil, &failure)
		}
	}()
	pool.fn(lo, hi)
}

// wakeAll sends a token to every parked worker.
func wakeAll() {
	for _, w := range pool.workers {
		if w.parked.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
}

// waitWorkers spins, then yields, until every worker has finished the job.
func waitWorkers() {
	for spins := 0; pool.pending.Load() > 0; spins++ {
		if spins >= spinLimit {
			runtime.Gosched()
		}
	}
}

// PoolDispatches is the number of jobs ParallelFor has handed to the pool's
// workers since the process started: each one wakes the workers and ends in
// a barrier. Calls that ran on the calling goroutine alone (one thread, one
// unit of work, a nested call) are not counted.
func PoolDispatches() uint64 { return pool.dispatches.Load() }

// ParallelFor calls fn on contiguous, disjoint ranges that cover [0, n), one
// range per thread, and returns when all calls have returned. Ranges start at
// multiples of align (align ≤ 1 means 1), so callers can keep SIMD tiles
// whole. A nested or concurrent call runs fn(0, n) on the calling goroutine.
// If any call of fn panics, ParallelFor waits for the others and then
// panics on the calling goroutine with the first value.
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
	pool.dispatches.Add(1)
	pool.pending.Store(int32(len(pool.workers)))
	pool.gen.Add(1) // publishes fn and bounds to the workers
	wakeAll()
	runRange(pool.bounds[0], pool.bounds[1])
	waitWorkersTimed()
	pool.fn = nil
	if r := pool.failure.Swap(nil); r != nil {
		panic(*r)
	}
}
