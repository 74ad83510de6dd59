package attention

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The reference twins of the training attention: plain causal softmax
// attention with the full [n, n] score matrix and partial NeoX RoPE,
// written once over float32 and float64. In float64 they are checked by
// finite differences and then serve as the oracle of the fp32 flash path.

// float is the element type of the twins.
type float interface{ ~float32 | ~float64 }

// vec returns vector i of length d in x.
func vec[T float](x []T, i, d int) []T { return x[i*d : (i+1)*d] }

// probsRef fills p ([n, n]) with head h's attention probabilities (zero
// above the diagonal) and lse ([n, heads]) with each row's log-sum-exp of
// the scaled scores. q: [n, heads, d]; k: [n, kvHeads, d].
func probsRef[T float](p, lse, q, k []T, n, heads, kvHeads, d, h int) {
	g := h / (heads / kvHeads)
	scale := T(1 / math.Sqrt(float64(d)))
	for t := 0; t < n; t++ {
		row, qt := p[t*n:(t+1)*n], vec(q, t*heads+h, d)
		clear(row)
		mx := T(math.Inf(-1))
		for s := 0; s <= t; s++ {
			var dot T
			for e, x := range vec(k, s*kvHeads+g, d) {
				dot += qt[e] * x
			}
			row[s] = dot * scale
			mx = max(mx, row[s])
		}
		var z T
		for s := 0; s <= t; s++ {
			row[s] = T(math.Exp(float64(row[s] - mx)))
			z += row[s]
		}
		for s := 0; s <= t; s++ {
			row[s] /= z
		}
		lse[t*heads+h] = mx + T(math.Log(float64(z)))
	}
}

// attendRef is the twin of FlashForward for all heads at once:
// o = softmax(q·kᵀ/sqrt(d), causal)·v per head, KV head h/(heads/kvHeads).
//
//	q, o: [n, heads, d]; k, v: [n, kvHeads, d]; lse: [n, heads]
func attendRef[T float](o, lse, q, k, v []T, n, heads, kvHeads, d int) {
	p := make([]T, n*n)
	for h := 0; h < heads; h++ {
		g := h / (heads / kvHeads)
		probsRef(p, lse, q, k, n, heads, kvHeads, d, h)
		for t := 0; t < n; t++ {
			out := vec(o, t*heads+h, d)
			clear(out)
			for s := 0; s <= t; s++ {
				for e, x := range vec(v, s*kvHeads+g, d) {
					out[e] += p[t*n+s] * x
				}
			}
		}
	}
}

// attendBackRef is the twin of FlashBackward for all heads: the textbook
// softmax backward on the full matrices, dS = P ⊙ (dP − rowsum(P ⊙ dP))
// (not FlashAttention's D = rowsum(dO ⊙ O)), so it checks that identity
// too. dq: [n, heads, d] and dk, dv: [n, kvHeads, d] are overwritten.
func attendBackRef[T float](dq, dk, dv, dOut, q, k, v []T, n, heads, kvHeads, d int) {
	scale := T(1 / math.Sqrt(float64(d)))
	p, dp, lse := make([]T, n*n), make([]T, n*n), make([]T, n*heads)
	clear(dk)
	clear(dv)
	for h := 0; h < heads; h++ {
		g := h / (heads / kvHeads)
		probsRef(p, lse, q, k, n, heads, kvHeads, d, h)
		for t := 0; t < n; t++ {
			qt, dot, dqt := vec(q, t*heads+h, d), vec(dOut, t*heads+h, d), vec(dq, t*heads+h, d)
			var rowDot T
			for s := 0; s <= t; s++ {
				var x T
				for e, y := range vec(v, s*kvHeads+g, d) {
					x += dot[e] * y
				}
				dp[t*n+s] = x
				rowDot += p[t*n+s] * x
			}
			clear(dqt)
			for s := 0; s <= t; s++ {
				ps := p[t*n+s]
				ds := ps * (dp[t*n+s] - rowDot)
				dks, dvs, ks := vec(dk, s*kvHeads+g, d), vec(dv, s*kvHeads+g, d), vec(k, s*kvHeads+g, d)
				for e := range dks {
					dvs[e] += ps * dot[e]
					dks[e] += scale * ds * qt[e]
					dqt[e] += scale * ds * ks[e]
				}
			}
		}
	}
}

// rotateRef is the twin of (*RoPE).Rotate: head h's dims i and i+dim/2
// (i < dim/2) of x[h·stride:] turn by the angle whose cosine and sine are
// cos[i], sin[i].
func rotateRef[T float](x []T, heads, stride, dim int, cos, sin []T) {
	half := dim / 2
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			a, b := x[h*stride+i], x[h*stride+i+half]
			x[h*stride+i] = a*cos[i] - b*sin[i]
			x[h*stride+i+half] = b*cos[i] + a*sin[i]
		}
	}
}

// rotateBackRef is the twin of (*RoPE).RotateBack: rotateRef with the
// transposed rotation matrix.
func rotateBackRef[T float](x []T, heads, stride, dim int, cos, sin []T) {
	half := dim / 2
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			a, b := x[h*stride+i], x[h*stride+i+half]
			x[h*stride+i] = a*cos[i] + b*sin[i]
			x[h*stride+i+half] = b*cos[i] - a*sin[i]
		}
	}
}

// ropeTables64 returns the float64 cos and sin ([n, Dim/2]) of positions
// 0 .. n-1 for r's frequencies.
func ropeTables64(r *RoPE, n int) (cos, sin []float64) {
	half := r.Dim / 2
	cos, sin = make([]float64, n*half), make([]float64, n*half)
	for t := 0; t < n; t++ {
		for i, f := range r.InvFreq {
			cos[t*half+i], sin[t*half+i] = math.Cos(float64(t)*float64(f)), math.Sin(float64(t)*float64(f))
		}
	}
	return cos, sin
}

// ropeAll rotates (back, when back) every token t of x ([n, heads, d]) at
// position t.
func ropeAll(x []float64, r *RoPE, n, heads, d int, cos, sin []float64, back bool) {
	half := r.Dim / 2
	for t := 0; t < n; t++ {
		c, s := cos[t*half:(t+1)*half], sin[t*half:(t+1)*half]
		if back {
			rotateBackRef(x[t*heads*d:], heads, d, r.Dim, c, s)
		} else {
			rotateRef(x[t*heads*d:], heads, d, r.Dim, c, s)
		}
	}
}

func rand64(r *rand.Rand, n int, scale float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = (r.Float64()*2 - 1) * scale
	}
	return x
}

// TestAttentionTwinGradient checks the float64 twins' backward (attention
// and RoPE together: L = Σ w ⊙ attend(rope(q), rope(k), v)) against central
// differences, along random unit directions through all of q, k, v and
// along single coordinates (the last query; the first key and value, which
// every query sees). Tolerance: with step h = 1e-4 the central difference
// is off by the truncation h²/6·|L‴| ≈ 1.7e-9·|L‴|, where |L‴| along a
// unit direction is a few units for these O(1) inputs (allowed: 6, so
// 1e-8), plus the rounding of L, a sum of N = n·heads·d terms |w·o| ≤ 1 each
// good to a few ε64, so at most ε64·N/(2h) ≈ 1.1e-12·N. Measured errors are
// below 4e-10 while the derivatives checked are 1e-3 … 1, so a missing or
// wrong term fails by orders of magnitude.
func TestAttentionTwinGradient(t *testing.T) {
	const d, heads, h = 8, 4, 1e-4
	rp := NewRoPE(4, 1e4) // rotates dims 0..3 of 8: partial RoPE
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 2, 255, 256, 257, 700} {
		for _, kv := range []int{2, 1} {
			cos, sin := ropeTables64(rp, n)
			qr, kr, v := rand64(r, n*heads*d, 1), rand64(r, n*kv*d, 1), rand64(r, n*kv*d, 1)
			w := rand64(r, n*heads*d, 1)
			o, lse := make([]float64, n*heads*d), make([]float64, n*heads)
			loss := func(qr, kr, v []float64) float64 {
				q, k := append([]float64(nil), qr...), append([]float64(nil), kr...)
				ropeAll(q, rp, n, heads, d, cos, sin, false)
				ropeAll(k, rp, n, kv, d, cos, sin, false)
				attendRef(o, lse, q, k, v, n, heads, kv, d)
				var l float64
				for i := range o {
					l += w[i] * o[i]
				}
				return l
			}
			q, k := append([]float64(nil), qr...), append([]float64(nil), kr...)
			ropeAll(q, rp, n, heads, d, cos, sin, false)
			ropeAll(k, rp, n, kv, d, cos, sin, false)
			dq, dk, dv := make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
			attendBackRef(dq, dk, dv, w, q, k, v, n, heads, kv, d)
			ropeAll(dq, rp, n, heads, d, cos, sin, true)
			ropeAll(dk, rp, n, kv, d, cos, sin, true)

			inputs, grads := [][]float64{qr, kr, v}, [][]float64{dq, dk, dv}
			tol := 1e-8 + 1.1e-12*float64(n*heads*d)
			check := func(what string, dir [][]float64) {
				var want float64
				for i, u := range dir {
					for j := range u {
						want += grads[i][j] * u[j]
					}
				}
				step := func(h float64) float64 {
					for i, u := range dir {
						for j := range u {
							inputs[i][j] += h * u[j]
						}
					}
					return loss(inputs[0], inputs[1], inputs[2])
				}
				plus := step(h)
				minus := step(-2 * h)
				step(h)
				if got := (plus - minus) / (2 * h); math.Abs(got-want) > tol {
					t.Errorf("n %d kv %d %s: finite difference %.12g, gradient %.12g (tol %.3g)", n, kv, what, got, want, tol)
				}
			}
			for i := 0; i < 2; i++ {
				dir := [][]float64{rand64(r, len(qr), 1), rand64(r, len(kr), 1), rand64(r, len(v), 1)}
				var norm float64
				for _, u := range dir {
					for _, x := range u {
						norm += x * x
					}
				}
				for _, u := range dir {
					for j := range u {
						u[j] /= math.Sqrt(norm)
					}
				}
				check(fmt.Sprintf("direction %d", i), dir)
			}
			for _, c := range []struct {
				name  string
				input int
				index int
			}{{"q[n-1, 3, 1]", 0, ((n-1)*heads+3)*d + 1}, {"k[0, 0, 2]", 1, 2}, {"v[0, kv-1, 5]", 2, (kv-1)*d + 5}} {
				dir := [][]float64{make([]float64, len(qr)), make([]float64, len(kr)), make([]float64, len(v))}
				dir[c.input][c.index] = 1
				check(c.name, dir)
			}
		}
	}
}

// errorScales returns the quantities the fp32 path's rounding error is
// measured against, from the float64 inputs and output o (layouts as
// attendRef, dOut like o): for each output element the same sum with every term replaced by its
// magnitude, and the largest |score| bound Σ|q||k|/sqrt(d) and the largest
// |score| or |lse| (see TestFlashMatchesTwin).
func errorScales(q, k, v, o, dOut []float64, n, heads, kvHeads, d int) (oMag, dqMag, dkMag, dvMag []float64, sMag, big float64) {
	group := heads / kvHeads
	scale := 1 / math.Sqrt(float64(d))
	p, lse := make([]float64, n*n), make([]float64, n*heads)
	oMag, dqMag = make([]float64, len(q)), make([]float64, len(q))
	dkMag, dvMag = make([]float64, len(k)), make([]float64, len(v))
	for h := 0; h < heads; h++ {
		g := h / group
		probsRef(p, lse, q, k, n, heads, kvHeads, d, h)
		for t := 0; t < n; t++ {
			i := t*heads + h
			qt, dot, ot, oMagT, dqMagT := vec(q, i, d), vec(dOut, i, d), vec(o, i, d), vec(oMag, i, d), vec(dqMag, i, d)
			big = max(big, math.Abs(lse[i]))
			for s := 0; s <= t; s++ {
				for e, x := range vec(v, s*kvHeads+g, d) {
					oMagT[e] += p[t*n+s] * math.Abs(x)
				}
			}
			var dd, ddMag float64 // D = Σ dO·o and its magnitude Σ|dO|(|o| + oMag)
			for e := range dot {
				dd += dot[e] * ot[e]
				ddMag += math.Abs(dot[e]) * (math.Abs(ot[e]) + oMagT[e])
			}
			for s := 0; s <= t; s++ {
				j := s*kvHeads + g
				ks, vs, dkMagS, dvMagS := vec(k, j, d), vec(v, j, d), vec(dkMag, j, d), vec(dvMag, j, d)
				var sm, dp, dpMag float64
				for e := range ks {
					sm += math.Abs(qt[e] * ks[e])
					dp += dot[e] * vs[e]
					dpMag += math.Abs(dot[e] * vs[e])
				}
				sMag = max(sMag, sm*scale)
				big = max(big, sm*scale)
				dsMag := p[t*n+s] * (dpMag + ddMag + math.Abs(dp-dd))
				for e := range ks {
					dvMagS[e] += p[t*n+s] * math.Abs(dot[e])
					dkMagS[e] += scale * dsMag * math.Abs(qt[e])
					dqMagT[e] += scale * dsMag * math.Abs(ks[e])
				}
			}
		}
	}
	return oMag, dqMag, dkMag, dvMag, sMag, big
}

// TestFlashMatchesTwin runs FlashForward and FlashBackward on every KV head
// and checks o, lse, dq, dk, dv against the float64 twins on the same fp32
// inputs. The inputs sit in one fused [n, heads+2·kvHeads, d] buffer with a
// padded stride (as a training step holds them), the gradients in one of
// the same layout, o and lse with their own padded strides; padding is NaN
// and must stay NaN. Lengths cross the forward's query tiles (512/group
// tokens) and key tiles (256) and the backward's (504/group and 128), with
// odd lengths; groups 1, 2, 4 and 8; d 8, 16 and 128 (MiniMax's).
//
// Tolerance, element by element, from the standard first-order rounding
// analysis with ε = 2^-24: a dot product of m terms is off by at most m·ε
// times the sum of its terms' magnitudes. Each score is a d-term product
// (d·ε·sMag, sMag = max Σ|q||k|/sqrt(d)); the log-sum-exp adds its sum of
// ≤ n positive terms (n·ε) and its rounding (ε·|lse|); so every probability
// P = exp(s − lse) is good to a relative 2d·ε·sMag + n·ε + 4ε·big + 4ε
// (big = max |s|, |lse|; exp itself within 2 ulp). Every output is a sum
// over at most n·group such terms, so with
//
//	γ = ε·(2d·sMag + 4·big + n·group + 3d + 16)
//
// each element is within γ times its magnitude sum: o within γ·Σ_s P|v|,
// dv within γ·Σ P|dO|, dq and dk within γ·Σ|dS||k|/sqrt(d) and
// γ·Σ|dS||q|/sqrt(d), where |dS| ≤ P·(Σ|dO||v| + Σ|dO|(|o| + Σ P|v|) +
// |dP − D|) covers the error of dP = dO·v, of D = dO·o (including o's own
// error) and of P. The test allows 2γ (second-order terms). With n = 700
// and group 4 that is ~3e-4 of the magnitudes; one wrongly masked key moves
// an output by ~1/n of them, well above it.
func TestFlashMatchesTwin(t *testing.T) {
	const eps = 1.0 / (1 << 24)
	type tcase struct {
		n, heads, kv, d int
		qScale          float64 // inputs in [-qScale, qScale] for q and k: sets the logit range
	}
	var cases []tcase
	for _, n := range []int{1, 2, 255, 256, 257, 700} {
		cases = append(cases, tcase{n, 4, 2, 8, 2}, tcase{n, 4, 1, 8, 2})
	}
	cases = append(cases, tcase{601, 2, 2, 16, 2}, tcase{129, 8, 1, 16, 6}, tcase{300, 8, 1, 128, 1})
	r := rand.New(rand.NewPCG(31, 32))
	nan := float32(math.NaN())
	for _, c := range cases {
		name := fmt.Sprintf("n=%d/heads=%d/kv=%d/d=%d", c.n, c.heads, c.kv, c.d)
		n, heads, kv, d := c.n, c.heads, c.kv, c.d
		group := heads / kv
		ld := (heads+2*kv)*d + 3 // fused q|k|v rows, padded
		ldo, ldl := heads*d+5, heads+2
		qkv := make([]float32, n*ld)
		for i := range qkv {
			qkv[i] = nan
		}
		q64, k64, v64 := make([]float64, n*heads*d), make([]float64, n*kv*d), make([]float64, n*kv*d)
		for tok := 0; tok < n; tok++ {
			for i := 0; i < (heads+2*kv)*d; i++ {
				s := c.qScale
				if i >= (heads+kv)*d {
					s = 1 // values
				}
				x := float32((r.Float64()*2 - 1) * s)
				qkv[tok*ld+i] = x
				switch {
				case i < heads*d:
					q64[tok*heads*d+i] = float64(x)
				case i < (heads+kv)*d:
					k64[tok*kv*d+i-heads*d] = float64(x)
				default:
					v64[tok*kv*d+i-(heads+kv)*d] = float64(x)
				}
			}
		}
		q, k, v := qkv, qkv[heads*d:], qkv[(heads+kv)*d:]
		dOut, dOut64 := make([]float32, n*ldo), make([]float64, n*heads*d)
		for tok := 0; tok < n; tok++ {
			for i := 0; i < ldo; i++ {
				if i >= heads*d {
					dOut[tok*ldo+i] = nan
					continue
				}
				dOut[tok*ldo+i] = float32(r.Float64()*2 - 1)
				dOut64[tok*heads*d+i] = float64(dOut[tok*ldo+i])
			}
		}
		o, lse, dqkv := make([]float32, n*ldo), make([]float32, n*ldl), make([]float32, n*ld)
		for _, b := range [][]float32{o, lse, dqkv} {
			for i := range b {
				b[i] = nan
			}
		}
		fs, gs := NewFlashScratch(group, d), NewFlashGradScratch(group, d)
		for g := 0; g < kv; g++ {
			FlashForward(o, ldo, lse, ldl, q, ld, k, ld, v, ld, g, group, d, n, fs)
		}
		for g := 0; g < kv; g++ {
			FlashBackward(dqkv, dqkv[heads*d:], dqkv[(heads+kv)*d:], dOut, q, ld, k, ld, v, ld, o, ldo, lse, ldl, g, group, d, n, gs)
		}

		o64, lse64 := make([]float64, n*heads*d), make([]float64, n*heads)
		attendRef(o64, lse64, q64, k64, v64, n, heads, kv, d)
		dq64, dk64, dv64 := make([]float64, n*heads*d), make([]float64, n*kv*d), make([]float64, n*kv*d)
		attendBackRef(dq64, dk64, dv64, dOut64, q64, k64, v64, n, heads, kv, d)
		oMag, dqMag, dkMag, dvMag, sMag, big := errorScales(q64, k64, v64, o64, dOut64, n, heads, kv, d)
		gamma := eps * (2*float64(d)*sMag + 4*big + float64(n*group) + 3*float64(d) + 16)

		worst := map[string]float64{}
		compare := func(what string, got []float32, ld, width int, want, mag []float64, pad bool) {
			for tok := 0; tok < n; tok++ {
				for i := 0; i < ld; i++ {
					x := got[tok*ld+i]
					if i >= width {
						if pad && !math.IsNaN(float64(x)) {
							t.Fatalf("%s: %s row %d: padding column %d written", name, what, tok, i)
						}
						continue
					}
					w, m := want[tok*width+i], mag[tok*width+i]
					err := math.Abs(float64(x) - w)
					if !(err <= 2*gamma*m) {
						t.Fatalf("%s: %s[%d][%d] = %v, want %v ± %.3g", name, what, tok, i, x, w, 2*gamma*m)
					}
					if m > 0 {
						worst[what] = max(worst[what], err/(gamma*m))
					}
				}
			}
		}
		ones := make([]float64, n*heads)
		for i := range ones {
			ones[i] = 1
		}
		compare("o", o, ldo, heads*d, o64, oMag, true)
		compare("lse", lse, ldl, heads, lse64, ones, true)
		// Split the fused gradient rows back into dq, dk, dv.
		gq, gk, gv := make([]float32, n*heads*d), make([]float32, n*kv*d), make([]float32, n*kv*d)
		for tok := 0; tok < n; tok++ {
			row := dqkv[tok*ld : (tok+1)*ld]
			copy(gq[tok*heads*d:], row[:heads*d])
			copy(gk[tok*kv*d:], row[heads*d:(heads+kv)*d])
			copy(gv[tok*kv*d:], row[(heads+kv)*d:(heads+2*kv)*d])
			for i := (heads + 2*kv) * d; i < ld; i++ {
				if !math.IsNaN(float64(row[i])) {
					t.Fatalf("%s: gradient row %d: padding column %d written", name, tok, i)
				}
			}
		}
		compare("dq", gq, heads*d, heads*d, dq64, dqMag, false)
		compare("dk", gk, kv*d, kv*d, dk64, dkMag, false)
		compare("dv", gv, kv*d, kv*d, dv64, dvMag, false)
		t.Logf("%s: γ %.3g; worst error / (γ·magnitude): %v", name, gamma, worst)
	}
}

// TestFlashForwardEqualsInference checks that the training forward gives
// the inference path's output bit for bit: FlashAttend over an fp32 KV
// cache holding the same keys and values (both run the same tile loop), for
// groups 1, 3 and 8 and lengths that cross the tiles.
func TestFlashForwardEqualsInference(t *testing.T) {
	const d = 16
	r := rand.New(rand.NewPCG(41, 42))
	for _, c := range []struct{ n, group, kv int }{{1, 1, 2}, {70, 3, 2}, {300, 8, 1}, {600, 1, 1}} {
		heads := c.group * c.kv
		q, _ := randVec(r, c.n*heads*d, 2)
		k, _ := randVec(r, c.n*c.kv*d, 2)
		v, _ := randVec(r, c.n*c.kv*d, 1)
		cache := NewKVCache(KVFloat32, c.kv, d, 0)
		cache.Append(k, v, c.kv*d, c.n)
		want, got := make([]float32, c.n*heads*d), make([]float32, c.n*heads*d)
		lse := make([]float32, c.n*heads)
		ws := NewFlashScratch(c.group, d)
		scale := float32(1 / math.Sqrt(d))
		for g := 0; g < c.kv; g++ {
			for tile := 0; tile < FlashTiles(c.n, c.group); tile++ {
				FlashAttend(want, heads*d, q, heads*d, &cache, g, c.group, d, 0, c.n, tile, scale, ws)
			}
			FlashForward(got, heads*d, lse, heads, q, heads*d, k, c.kv*d, v, c.kv*d, g, c.group, d, c.n, ws)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v: o[%d] = %v, inference %v", c, i, got[i], want[i])
			}
		}
	}
}

// TestFlashGradNoAllocs checks that the training forward and backward do
// not allocate once their scratch exists (style G7).
func TestFlashGradNoAllocs(t *testing.T) {
	const n, group, d = 300, 4, 16
	r := rand.New(rand.NewPCG(43, 44))
	q, _ := randVec(r, n*group*d, 1)
	k, _ := randVec(r, n*d, 1)
	v, _ := randVec(r, n*d, 1)
	dOut, _ := randVec(r, n*group*d, 1)
	o, lse, dq, dk, dv := make([]float32, len(q)), make([]float32, n*group), make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
	fs, gs := NewFlashScratch(group, d), NewFlashGradScratch(group, d)
	allocs := testing.AllocsPerRun(3, func() {
		FlashForward(o, group*d, lse, group, q, group*d, k, d, v, d, 0, group, d, n, fs)
		FlashBackward(dq, dk, dv, dOut, q, group*d, k, d, v, d, o, group*d, lse, group, 0, group, d, n, gs)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per forward and backward", allocs)
	}
}

// TestRoPERotateBack checks RotateBack against its float64 twin (each
// output is a two-term sum a·cos ± b·sin, rounded twice in fp32: within
// 2ε·(|a·cos| + |b·sin|)), that the twin is the transpose of rotateRef
// (⟨R x, y⟩ = ⟨x, Rᵀ y⟩ to float64 rounding) and that RotateBack undoes
// Rotate, with the unrotated dims and the gaps between heads untouched.
func TestRoPERotateBack(t *testing.T) {
	const R, d, heads, stride = 8, 16, 3, 20
	const eps = 1.0 / (1 << 24)
	rp := NewRoPE(R, 1e7)
	r := rand.New(rand.NewPCG(45, 46))
	for _, p := range []int{0, 1, 999, 1000000} {
		cos, sin := make([]float32, R/2), make([]float32, R/2)
		rp.Angles(cos, sin, p)
		c64, s64 := make([]float64, R/2), make([]float64, R/2)
		for i := range cos {
			c64[i], s64[i] = float64(cos[i]), float64(sin[i])
		}
		x, x64 := randVec(r, heads*stride, 1)
		y := append([]float32(nil), x...)
		rp.RotateBack(y, heads, stride, cos, sin)
		want := append([]float64(nil), x64...)
		rotateBackRef(want, heads, stride, R, c64, s64)
		for h := 0; h < heads; h++ {
			for e := 0; e < stride; e++ {
				i := h*stride + e
				if e >= R {
					if y[i] != x[i] {
						t.Errorf("p %d head %d: unrotated dim %d changed", p, h, e)
					}
					continue
				}
				pair := h*stride + (e+R/2)%R
				tol := 2 * eps * (math.Abs(x64[i]*c64[e%(R/2)]) + math.Abs(x64[pair]*s64[e%(R/2)]))
				if math.Abs(float64(y[i])-want[i]) > tol {
					t.Errorf("p %d head %d dim %d: %v, want %v ± %.3g", p, h, e, y[i], want[i], tol)
				}
			}
		}
		// Transpose: ⟨rotate(a), b⟩ = ⟨a, rotateBack(b)⟩; each side is a sum
		// of 3·20 products of O(1) terms, good to ~60·ε64 ≈ 1.3e-14.
		_, a := randVec(r, heads*stride, 1)
		_, b := randVec(r, heads*stride, 1)
		ra, rb := append([]float64(nil), a...), append([]float64(nil), b...)
		rotateRef(ra, heads, stride, R, c64, s64)
		rotateBackRef(rb, heads, stride, R, c64, s64)
		var lhs, rhs float64
		for i := range a {
			lhs += ra[i] * b[i]
			rhs += a[i] * rb[i]
		}
		if math.Abs(lhs-rhs) > 1e-13 {
			t.Errorf("p %d: ⟨Rx, y⟩ = %v, ⟨x, Rᵀy⟩ = %v", p, lhs, rhs)
		}
		// Round trip: Rotate then RotateBack is the identity up to four
		// roundings of terms ≤ |x|: 8ε·max|x| with |x| ≤ 1.
		z := append([]float32(nil), x...)
		rp.Rotate(z, heads, stride, cos, sin)
		rp.RotateBack(z, heads, stride, cos, sin)
		for i := range z {
			if math.Abs(float64(z[i]-x[i])) > 8*eps {
				t.Errorf("p %d: RotateBack(Rotate(x))[%d] = %v, want %v", p, i, z[i], x[i])
			}
		}
	}
}
