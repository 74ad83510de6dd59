package minimax01

import (
	"runtime"
	"testing"

	"github.com/lightninglm/lightning/kernels"
)

// TestScratchBytesMatchesAllocations checks ScratchBytes against what
// newScratch actually allocates (runtime.MemStats.TotalAlloc), for shapes
// where the flash-attention buffers are a large share (a short step) and a
// small one. The allocator rounds every buffer up to its size class (at
// most 12.5% for the small classes, whole 8 KiB pages above 32 KiB), and the
// channels and structs add a few hundred bytes, so the measured figure may
// exceed ScratchBytes by up to 12.5% + 8 KiB per buffer, never fall short.
func TestScratchBytesMatchesAllocations(t *testing.T) {
	for _, tc := range []struct {
		preset string
		maxT   int
	}{{"tiny", 8}, {"tiny", 512}, {"m300", 16}, {"long", 64}} {
		c, err := PresetConfig(tc.preset)
		if err != nil {
			t.Fatal(err)
		}
		m := &Model{Config: c, maxT: tc.maxT}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m.s = newScratch(m)
		runtime.ReadMemStats(&after)
		got := int64(after.TotalAlloc - before.TotalAlloc)
		want := m.ScratchBytes()
		const buffers = 16 // scratch fields, plus per-thread lightning and flash buffers (below)
		slack := want/8 + int64(buffers+10*kernels.Threads())*8<<10
		t.Logf("%s, %d tokens: ScratchBytes %d, allocated %d", tc.preset, tc.maxT, want, got)
		if got < want || got > want+slack {
			t.Errorf("%s, %d tokens: ScratchBytes %d, allocated %d (allowed %d … %d)", tc.preset, tc.maxT, want, got, want, want+slack)
		}
	}
}
