package quant

import "math"

// int4 formats. Each group's scale (and min) is chosen by a small search
// that minimises the group's squared error, as llama.cpp's make_qx_quants
// does: a few candidate scales around the absmax one, each refined by least
// squares for the quants it gives, keeping the best; the winner is rounded
// to the scale type and the group requantized with the rounded values.

// q4Steps are the candidate offsets (in quant steps) of the inverse scale
// around the absmax one.
var q4Steps = [...]float32{-0.8, -0.6, -0.4, -0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3, 0.4, 0.6}

// quantizeQ4Sym quantizes a row symmetrically: w = s·(q−8), q ∈ [0, 15].
func quantizeQ4Sym(q []byte, s, _ []float32, x []float32, round func(float32) float32) {
	G := len(x) / len(s)
	var L [128]int
	for g := range s {
		xs := x[g*G : (g+1)*G]
		// vmax is the element of largest magnitude; scaling it to −8 uses
		// the whole range [−8, 7] (llama.cpp Q4_0).
		var vmax float32
		for _, v := range xs {
			if abs(v) > abs(vmax) {
				vmax = v
			}
		}
		if vmax == 0 {
			s[g] = 0
			for k := range xs {
				setQ4(q, g*G+k, 8)
			}
			continue
		}
		best, bestD := float32(-1), float32(0)
		for _, st := range q4Steps {
			is := -(8 + st) / vmax
			var sxl, sll float32
			for k, v := range xs {
				l := clampRound(v*is, -8, 7)
				L[k] = l
				sxl += v * float32(l)
				sll += float32(l * l)
			}
			// With the least-squares scale d = Σxl/Σl² the error is
			// Σx² − (Σxl)²/Σl², so the best candidate maximises (Σxl)²/Σl².
			if sll > 0 && sxl*sxl/sll > best {
				best, bestD = sxl*sxl/sll, sxl/sll
			}
		}
		d := round(bestD)
		s[g] = d
		for k, v := range xs {
			l := 0
			if d != 0 {
				l = clampRound(v/d, -8, 7)
			}
			setQ4(q, g*G+k, byte(l+8))
		}
	}
}

// quantizeQ4Min quantizes a row with a scale and a min per group:
// w = s·q + m, q ∈ [0, 15].
func quantizeQ4Min(q []byte, s, m []float32, x []float32, round func(float32) float32) {
	G := len(x) / len(s)
	var L [128]float32
	for g := range s {
		xs := x[g*G : (g+1)*G]
		lo, hi := xs[0], xs[0]
		for _, v := range xs {
			lo, hi = min(lo, v), max(hi, v)
		}
		if hi == lo {
			s[g], m[g] = 0, round(lo)
			for k := range xs {
				setQ4(q, g*G+k, 0)
			}
			continue
		}
		bestErr, bestD, bestM := float32(math.Inf(1)), (hi-lo)/15, lo
		for _, st := range q4Steps {
			is := (15 + st) / (hi - lo)
			var sl, sll, sx, sxl float32
			for k, v := range xs {
				l := float32(clampRound((v-lo)*is, 0, 15))
				L[k] = l
				sl += l
				sll += l * l
				sx += v
				sxl += v * l
			}
			// Least squares for x ≈ d·l + m.
			n := float32(G)
			det := n*sll - sl*sl
			if det <= 0 {
				continue
			}
			d := (n*sxl - sl*sx) / det
			mm := (sll*sx - sl*sxl) / det
			var e float32
			for k, v := range xs {
				r := v - d*L[k] - mm
				e += r * r
			}
			if e < bestErr {
				bestErr, bestD, bestM = e, d, mm
			}
		}
		d, mm := round(bestD), round(bestM)
		s[g], m[g] = d, mm
		for k, v := range xs {
			l := 0
			if d != 0 {
				l = clampRound((v-mm)/d, 0, 15)
			}
			setQ4(q, g*G+k, byte(l))
		}
	}
}

// dequantQ4 is the reference of the int4 formats with groups of G: w =
// s·(q−8), or s·q + m when mn is not nil.
func dequantQ4(G int) func(dst []float32, q, sc, mn []byte, st Type) {
	return func(dst []float32, q, sc, mn []byte, st Type) {
		for k := range dst {
			v := float32(getQ4(q, k))
			if mn != nil {
				dst[k] = scaleAt(sc, k/G, st)*v + scaleAt(mn, k/G, st)
			} else {
				dst[k] = scaleAt(sc, k/G, st) * (v - 8)
			}
		}
	}
}

// q4Index returns the byte of element k in a packed int4 row and whether
// the element is its high nibble (package comment: chunks of 64).
func q4Index(k int) (int, bool) {
	c, i := k/64, k%64
	return 32*c + i%32, i >= 32
}

func setQ4(q []byte, k int, v byte) {
	b, hi := q4Index(k)
	if hi {
		q[b] = q[b]&0x0f | v<<4
	} else {
		q[b] = q[b]&0xf0 | v&0x0f
	}
}

func getQ4(q []byte, k int) byte {
	b, hi := q4Index(k)
	if hi {
		return q[b] >> 4
	}
	return q[b] & 0x0f
}

func abs(v float32) float32 { return float32(math.Abs(float64(v))) }
