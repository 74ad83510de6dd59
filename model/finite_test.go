package model

import (
	"math"
	"testing"
)

func TestAllFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		v    []float32
		want bool
	}{
		{nil, true},
		{[]float32{0, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}, true},
		{[]float32{1, nan, 2}, false},
		{[]float32{1, 2, inf}, false},
		{[]float32{-inf, 1}, false},
		{[]float32{math.MaxFloat32, math.MaxFloat32}, true}, // a sum of the values would overflow
	} {
		if got := AllFinite(c.v); got != c.want {
			t.Errorf("AllFinite(%v) = %v, want %v", c.v, got, c.want)
		}
	}
}
