package kernels

import (
	"sync/atomic"
	"time"
)

// poolWait times how long ParallelFor's caller waits for the workers after
// finishing its own range, for profiles (trace.Profile.Waited). Off, it
// costs one atomic load per ParallelFor.
var poolWait struct {
	on    atomic.Bool
	total atomic.Int64 // nanoseconds
}

// TimePoolWaits turns the timing of pool waits on or off.
func TimePoolWaits(on bool) { poolWait.on.Store(on) }

// PoolWaited is the cumulative time ParallelFor callers have waited for
// their workers while TimePoolWaits was on.
func PoolWaited() time.Duration { return time.Duration(poolWait.total.Load()) }

// waitWorkersTimed is waitWorkers, timed when TimePoolWaits is on.
func waitWorkersTimed() {
	if !poolWait.on.Load() {
		waitWorkers()
		return
	}
	t0 := time.Now()
	waitWorkers()
	poolWait.total.Add(int64(time.Since(t0)))
}
