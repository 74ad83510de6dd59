package trace

import (
	"testing"
	"time"
)

// TestProfileLaps checks the bookkeeping: laps add up to the step's wall
// time exactly, pool waits move from the op to OpPoolWait, LapSplit divides
// a lap by the CPU-time shares, pool dispatches are charged to the op that
// made them, laps outside a step are ignored, and a nil Profile is a no-op.
func TestProfileLaps(t *testing.T) {
	var waited time.Duration
	dispatched := uint64(40) // the pool's count before the step
	p := &Profile{Waited: func() time.Duration { return waited }, Dispatched: func() uint64 { return dispatched },
		Layers: [NumKinds]int{0, 7, 1}}
	p.Begin(Prefill)
	p.Kind(KindLightning)
	time.Sleep(2 * time.Millisecond)
	waited += time.Millisecond // the pool's caller waited 1 ms of the lap
	dispatched += 3
	p.Lap(OpQKV, 100, 10)
	p.AddSplit(0, time.Second)
	p.AddSplit(1, 3*time.Second)
	time.Sleep(2 * time.Millisecond)
	p.LapSplit([2]Op{OpLinInter, OpLinIntra}, [2]float64{1, 2}, [2]float64{3, 4})
	time.Sleep(2 * time.Millisecond)
	p.LapShared([]Op{OpQ, OpK, OpV}, []float64{5, 6, 7}, []float64{200, 100, 100})
	p.End(7)

	st := &p.Phases[Prefill]
	if st.Steps != 1 || st.Tokens != 7 {
		t.Fatalf("steps %d tokens %d", st.Steps, st.Tokens)
	}
	var sum time.Duration
	for k := range st.Cells {
		for _, c := range st.Cells[k] {
			sum += c.Time
		}
	}
	if sum != st.Wall {
		t.Errorf("parts %v, wall %v", sum, st.Wall)
	}
	row := st.Cells[KindLightning]
	if row[OpPoolWait].Time != time.Millisecond || row[OpQKV].Wait != time.Millisecond || row[OpQKV].Time < time.Millisecond {
		t.Errorf("pool wait %v, qkv wait %v, qkv time %v", row[OpPoolWait].Time, row[OpQKV].Wait, row[OpQKV].Time)
	}
	if row[OpQKV].Flops != 100 || row[OpQKV].Bytes != 10 {
		t.Errorf("qkv work %v flops %v bytes", row[OpQKV].Flops, row[OpQKV].Bytes)
	}
	if row[OpQKV].Dispatches != 3 || row[OpLinInter].Dispatches != 0 || st.Layers != p.Layers {
		t.Errorf("dispatches: qkv %d, inter %d; layers %v", row[OpQKV].Dispatches, row[OpLinInter].Dispatches, st.Layers)
	}
	inter, intra := row[OpLinInter], row[OpLinIntra]
	// The split lap is divided 1:3; the rounding of one division can move a nanosecond.
	if d := intra.Time - 3*inter.Time; d < -3 || d > 3 || inter.Flops != 1 || intra.Flops != 2 || inter.Bytes != 3 || intra.Bytes != 4 {
		t.Errorf("split: inter %+v, intra %+v", inter, intra)
	}
	// The shared lap is divided 2:1:1 by bytes; the work goes to each op.
	q, k, v := row[OpQ], row[OpK], row[OpV]
	if d := q.Time - 2*k.Time; d < -3 || d > 3 || k.Time != v.Time || k.Time <= 0 || q.Flops != 5 || k.Flops != 6 || v.Bytes != 100 {
		t.Errorf("shared: q %+v, k %+v, v %+v", q, k, v)
	}
	// Outside a step (after End): ignored, and the split CPU times dropped.
	before := p.Phases
	p.Lap(OpQ, 1, 1)
	p.AddSplit(0, time.Second)
	p.LapSplit([2]Op{OpLinInter, OpLinIntra}, [2]float64{1, 1}, [2]float64{1, 1})
	p.End(1)
	if p.Phases != before || p.split[0].Load() != 0 {
		t.Error("laps outside a step changed the profile")
	}
	p.Reset()
	if p.Phases[Prefill].Steps != 0 {
		t.Error("Reset left steps")
	}
	var off *Profile
	off.Begin(Decode)
	off.Kind(KindSoftmax)
	off.Lap(OpQ, 1, 1)
	off.AddSplit(0, time.Second)
	off.LapSplit([2]Op{OpLinInter, OpLinIntra}, [2]float64{}, [2]float64{})
	off.End(1)
	off.Reset()
}
