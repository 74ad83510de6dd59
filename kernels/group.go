package kernels

import (
	"sync"
	"sync/atomic"
	"time"
)

// Group runs several independent matrix products with one pool dispatch
// instead of one each (issue 17: a decode step of a MoE layer used to wake
// the pool and wait at a barrier about ten times). Adding a product to a
// group chooses its path and packs or quantizes its activations at once;
// Run then computes the output rows of every product in one ParallelFor,
// cut into shares of about equal work that the threads take in turn, or
// on the calling goroutine when the whole group moves fewer bytes than a
// dispatch is worth (SerialBytes). The products must not depend on one
// another, and their destinations are written only by Run.
//
// Each output row gets the same result whether it runs alone, in a group,
// or in any share of it: pieces start at multiples of the product's own
// alignment, as ParallelFor's ranges do, and no kernel's result for a row
// depends on the rows computed beside it, so the results are bitwise
// those of the package-level functions.
//
// A nil *Group is valid: its methods run each product at once (as a group
// of one), exactly as the package-level functions do, and Run does
// nothing. A Group is not safe for concurrent use; its zero value is empty
// and ready.
type Group struct {
	items    []groupItem
	cuts     []groupCut       // [shares+1] share boundaries of the current Run
	next     atomic.Int32     // the next share a thread takes
	sharesFn func(lo, hi int) // g.takeShares, bound once so Run does not allocate
}

// groupItem is the output stage of one queued product.
type groupItem struct {
	n, align int              // output rows, split at multiples of align
	rowWork  int              // multiply-adds per output row (balances the shares)
	rowBytes int              // weight bytes per output row (the serial threshold)
	run      func(lo, hi int) // computes rows [lo, hi)
	job      groupJob         // returned to its pool after Run (nil: nothing to return)
}

// groupJob is a pooled product job whose output stage a Group ran.
type groupJob interface{ release() }

// groupCut is a share boundary: row row of item item.
type groupCut struct{ item, row int }

// Rows queues fn, the output stage of a product over rows [0, n) in pieces
// aligned to align, each row costing rowWork multiply-adds over rowBytes
// bytes of weights. On a nil Group it runs now: on the calling goroutine
// below serialWork multiply-adds, else over the pool. It is how products
// outside this package (quant's ggml formats) join a group.
func (g *Group) Rows(n, align, rowWork, rowBytes int, fn func(lo, hi int)) {
	g.add(groupItem{n: n, align: max(align, 1), rowWork: rowWork, rowBytes: rowBytes, run: fn})
}

// add runs (nil g) or queues it; it reports whether it was queued, in
// which case Run releases it.job.
func (g *Group) add(it groupItem) (queued bool) {
	if it.n <= 0 {
		return false
	}
	if g == nil {
		if it.n*it.rowWork < serialWork {
			it.run(0, it.n)
			return false
		}
		// One product alone runs as a group of one, so that it too is
		// cut into shares the threads take in turn.
		solo := getSolo()
		solo.items = append(solo.items, it)
		solo.run(true)
		putSolo(solo)
		return true
	}
	g.items = append(g.items, it)
	return true
}

// soloGroups holds the groups of one that products added to a nil Group
// run in, for reuse: a decode step must not allocate (a sync.Pool is
// emptied by every garbage collection).
var soloGroups struct {
	mu   sync.Mutex
	free []*Group
}

func getSolo() *Group {
	soloGroups.mu.Lock()
	defer soloGroups.mu.Unlock()
	if n := len(soloGroups.free); n > 0 {
		g := soloGroups.free[n-1]
		soloGroups.free = soloGroups.free[:n-1]
		return g
	}
	return new(Group)
}

func putSolo(g *Group) {
	soloGroups.mu.Lock()
	soloGroups.free = append(soloGroups.free, g)
	soloGroups.mu.Unlock()
}

// Len is the number of queued products.
func (g *Group) Len() int {
	if g == nil {
		return 0
	}
	return len(g.items)
}

// Run computes every queued product and empties the group.
func (g *Group) Run() { g.run(false) }

// run is Run; split makes it use the pool even when the group moves fewer
// bytes than a dispatch is worth (a product alone above serialWork).
func (g *Group) run(split bool) {
	if g == nil || len(g.items) == 0 {
		return
	}
	var work, bytes int
	for _, it := range g.items {
		work += it.n * it.rowWork
		bytes += it.n * it.rowBytes
	}
	t := int(pool.nthreads.Load()) // not Threads(): run may be nested in a ParallelFor, which holds pool.mu
	if t <= 1 || (!split && bytes < SerialBytes()) {
		for _, it := range g.items {
			it.run(0, it.n)
		}
	} else {
		perThread := 1
		if work <= shareMaxIntensity*bytes {
			perThread = min(maxSharesPerThread, max(1, bytes/(t*shareBytes)))
		}
		g.cutShares(t*perThread, work)
		g.next.Store(0)
		if g.sharesFn == nil {
			g.sharesFn = g.takeShares
		}
		ParallelFor(t, 1, g.sharesFn)
	}
	for i := range g.items {
		if j := g.items[i].job; j != nil {
			j.release()
		}
		g.items[i] = groupItem{}
	}
	g.items = g.items[:0]
}

// cutShares sets g.cuts to t shares of about work/t multiply-adds each,
// every boundary at a multiple of its item's alignment (or its end).
func (g *Group) cutShares(t, work int) {
	g.cuts = append(g.cuts[:0], groupCut{})
	item, done := 0, 0 // done: work of the items before item
	for k := 1; k < t; k++ {
		target := work * k / t
		for item < len(g.items)-1 && done+g.items[item].n*g.items[item].rowWork <= target {
			done += g.items[item].n * g.items[item].rowWork
			item++
		}
		it := &g.items[item]
		row := 0
		if it.rowWork > 0 {
			row = (target - done + it.rowWork/2) / it.rowWork
		}
		row = min((row+it.align/2)/it.align*it.align, it.n)
		c := groupCut{item, row}
		if prev := g.cuts[len(g.cuts)-1]; c.item < prev.item || (c.item == prev.item && c.row < prev.row) {
			c = prev
		}
		g.cuts = append(g.cuts, c)
	}
	g.cuts = append(g.cuts, groupCut{len(g.items), 0})
}

// Run cuts a group that streams its weights (decode, small batches) into
// several shares per thread, which the threads take in turn, so that a
// thread that starts late or streams more slowly than the others (two
// vCPUs of one core, a noisy neighbour) takes fewer shares instead of
// keeping the others waiting at the barrier. A share streams at least
// shareBytes of weights, so taking one (an atomic add) costs nothing in
// comparison. A group doing more than shareMaxIntensity multiply-adds per
// weight byte (a prefill GEMM) keeps one share per thread: each share
// reads the activations' blocks again (m300 bf16 prefill of 2,048 tokens:
// 0.83 of the FMA peak with one share per thread, 0.81 with up to 64).
const (
	maxSharesPerThread = 64
	shareBytes         = 256 << 10
	shareMaxIntensity  = 32
)

// takeShares is each thread's part of Run: it takes shares until none is
// left. The shares a thread takes do not change any row's result.
func (g *Group) takeShares(_, _ int) {
	n := int32(len(g.cuts) - 1)
	for k := g.next.Add(1) - 1; k < n; k = g.next.Add(1) - 1 {
		g.runShares(int(k), int(k+1))
	}
}

// runShares runs shares [lo, hi) of the current Run.
func (g *Group) runShares(lo, hi int) {
	for k := lo; k < hi; k++ {
		a, b := g.cuts[k], g.cuts[k+1]
		for i := a.item; i <= b.item && i < len(g.items); i++ {
			it := &g.items[i]
			r0, r1 := 0, it.n
			if i == a.item {
				r0 = a.row
			}
			if i == b.item {
				r1 = b.row
			}
			if r0 < r1 {
				it.run(r0, r1)
			}
		}
	}
}

// The serial threshold: a dispatch pays when the work it splits takes the
// calling thread longer than the dispatch costs. With t threads a piece of
// work that streams B bytes at one thread's read rate r takes B/r alone
// and B/(t·r) plus the dispatch cost d split, so splitting pays from
// B = d·r·t/(t−1). Both d and r are measured once per thread count.
var serialCut struct {
	mu      sync.Mutex
	threads int
	bytes   int
	cost    time.Duration
	rate    float64
}

// SerialBytes is the number of bytes of weights (or state) below which a
// piece of decode work runs on the calling goroutine rather than over the
// pool (see serialCut). It is measured the first time it is needed for
// the current thread count, which takes a few milliseconds.
func SerialBytes() int {
	b, _, _ := calibrateSerial()
	return b
}

// DispatchCost returns the measured cost of one pool dispatch (the best of
// many empty ones: workers woken from their spin, the barrier after), the
// one thread's read rate in bytes/s, and SerialBytes derived from them.
func DispatchCost() (cost time.Duration, rate float64, serialBytes int) {
	b, c, r := calibrateSerial()
	return c, r, b
}

func calibrateSerial() (int, time.Duration, float64) {
	t := int(pool.nthreads.Load()) // not Threads(): it may run nested in a ParallelFor
	serialCut.mu.Lock()
	defer serialCut.mu.Unlock()
	if serialCut.threads != t {
		serialCut.threads = t
		serialCut.cost, serialCut.rate = measureDispatch(), measureReadRate()
		serialCut.bytes = 1 << 62 // one thread: never split
		if t > 1 {
			serialCut.bytes = int(serialCut.cost.Seconds() * serialCut.rate * float64(t) / float64(t-1))
		}
	}
	return serialCut.bytes, serialCut.cost, serialCut.rate
}

// measureDispatch returns the least time of an empty ParallelFor over the
// pool's threads, over 2,000 tries after 200 to wake the workers: the
// least is what a dispatch costs when the machine lets it (other load only
// adds to it).
func measureDispatch() time.Duration {
	t := int(pool.nthreads.Load()) // not Threads(): called by calibrateSerial, which may run nested in a ParallelFor
	nop := func(lo, hi int) {}
	best := time.Duration(1 << 62)
	for i := range 2200 {
		t0 := time.Now()
		ParallelFor(t, 1, nop)
		if d := time.Since(t0); i >= 200 {
			best = min(best, d)
		}
	}
	return best
}

// measureReadRate returns one thread's best read rate over 16 MiB, in
// bytes/s (five passes, the best taken).
func measureReadRate() float64 {
	buf := make([]byte, 16<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	var best float64
	var sink uint64
	for range 5 {
		t0 := time.Now()
		sink ^= readSum(buf)
		if r := float64(len(buf)) / time.Since(t0).Seconds(); r > best {
			best = r
		}
	}
	_ = sink
	return best
}
