package quant

import "math"

// int4 formats. Each group's scale (and min) is chosen by a small search
// that minimises the group's squared error, as llama.cpp's make_qx_quants
// does: a few candidate scales around the absmax one, each refined by least
// squares for the quants it gives, keeping the best; the winner is rounded
// to the scale type and the group requantized with the rounded values.

// q4Steps are the candidate offsets (in quant steps) of the inverse scale
// around the absmax one. On Gaussian rows these five reach the error of
// llama.cpp's nineteen (−0.9…0.9) within 1% (NMSE 0.00813 vs 0.00810 for
// q4g64), 7% below plain absmax; positive offsets clip the extremes.
var q4Steps = [...]float32{-0.3, 0, 0.3, 0.6, 0.9}

// quantizeQ4Sym quantizes a row symmetrically: w = s·(q−8), q ∈ [0, 15].
func quantizeQ4Sym(q []byte, s, _ []float32, x []float32, round func(float32) float32) {
	G := len(x) / len(s)
	for g := range s {
		xs := x[g*G : (g+1)*G]
		// vmax is the element of largest magnitude; scaling it to −8 uses
		// the whole range [−8, 7] (llama.cpp Q4_0).
		var vmax float32
		var vbits uint32
		for _, v := range xs {
			if b := math.Float32bits(v) &^ (1 << 31); b > vbits {
				vmax, vbits = v, b
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
			for _, v := range xs {
				l := roundClamp(v*is, -8, 7)
				sxl += v * l
				sll += l * l
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
			var l float32
			if d != 0 {
				l = roundClamp(v/d, -8, 7)
			}
			setQ4(q, g*G+k, byte(int(l)+8))
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
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
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
				l := roundClamp((v-lo)*is, 0, 15)
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
			var l float32
			if d != 0 {
				l = roundClamp((v-mm)/d, 0, 15)
			}
			setQ4(q, g*G+k, byte(int(l)))
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
