package tensor

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/quant"
)

func f32Mat(t *testing.T, rows, cols int, seed uint64) Mat {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, 4*rows*cols)
	for i := 0; i < rows*cols; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(r.NormFloat64())*0.05))
	}
	m, err := NewMat(rows, cols, quant.F32, b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func scaleType(t quant.Type) quant.Type {
	if t == quant.Q8 {
		return quant.F32
	}
	return quant.F16
}

// TestQuantizeMatchesRows checks that the parallel Quantize gives exactly the
// bytes of QuantizeRow on each row, for every thread count.
func TestQuantizeMatchesRows(t *testing.T) {
	const rows, cols = 37, 256
	m := f32Mat(t, rows, cols, 1)
	defer kernels.SetThreads(kernels.Threads())
	for _, name := range quant.QuantizedNames() {
		typ, _ := quant.ByName(name)
		st := scaleType(typ)
		rb, _ := typ.RowBytes(cols)
		sb := typ.ScalesPerRow(cols) * st.Info().BlockBytes
		var ref []Mat
		for _, th := range []int{1, 2, 3} {
			kernels.SetThreads(th)
			q, err := Quantize(m, typ, st)
			if err != nil {
				t.Fatal(err)
			}
			ref = append(ref, q)
		}
		for r := range rows {
			q, sc := make([]byte, rb), make([]byte, sb)
			var mn []byte
			if typ.Info().Mins {
				mn = make([]byte, sb)
			}
			if err := typ.QuantizeRow(q, sc, mn, st, m.F32()[r*cols:(r+1)*cols]); err != nil {
				t.Fatal(err)
			}
			for i, got := range ref {
				if !bytes.Equal(got.Data[r*rb:(r+1)*rb], q) || !bytes.Equal(got.Scales[r*sb:(r+1)*sb], sc) ||
					(mn != nil && !bytes.Equal(got.Mins[r*sb:(r+1)*sb], mn)) {
					t.Fatalf("%s: row %d differs from QuantizeRow (run %d)", typ, r, i)
				}
			}
		}
		// The result is a valid matrix for NewQMat, and Row dequantizes it.
		q := ref[0]
		if _, err := NewQMat(rows, cols, typ, q.Data, q.Scales, q.Mins, st); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		row, want := make([]float32, cols), make([]float32, cols)
		Row(row, q, 5)
		typ.DequantRow(want, q.Data[5*rb:6*rb], q.Scales[5*sb:6*sb], sliceOrNil(q.Mins, 5*sb, 6*sb), st)
		for i := range row {
			if row[i] != want[i] {
				t.Fatalf("%s: Row differs from DequantRow at %d", typ, i)
			}
		}
		if n := testing.AllocsPerRun(10, func() { Row(row, q, 3) }); n != 0 {
			t.Errorf("%s: Row allocates %v times", typ, n)
		}
	}
}

func sliceOrNil(b []byte, lo, hi int) []byte {
	if b == nil {
		return nil
	}
	return b[lo:hi]
}

// TestMatMulDispatch checks that MatMul on a quantized Mat is the format's
// product, equal to the float product of the dequantized weights within the
// int8 activation error (bound as in quant's TestMatMulMatchesDequant).
func TestMatMulDispatch(t *testing.T) {
	const T, rows, cols = 2, 8, 128
	m := f32Mat(t, rows, cols, 2)
	x := f32Mat(t, T, cols, 3).F32()
	for _, name := range quant.QuantizedNames() {
		typ, _ := quant.ByName(name)
		q, err := Quantize(m, typ, scaleType(typ))
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, T*rows)
		MatMul(dst, x, T, q)
		w := make([]float32, cols)
		for r := range rows {
			Row(w, q, r)
			for tt := range T {
				var want, bound float64
				for k := range cols {
					var amax float32
					for _, v := range x[tt*cols+k/32*32 : tt*cols+k/32*32+32] {
						amax = max(amax, float32(math.Abs(float64(v))))
					}
					want += float64(w[k]) * float64(x[tt*cols+k])
					bound += math.Abs(float64(w[k])) * (float64(amax)/254 + 1e-6*math.Abs(float64(x[tt*cols+k])))
				}
				if got := float64(dst[tt*rows+r]); math.Abs(got-want) > bound {
					t.Errorf("%s: dst[%d,%d] = %g, want %g ± %g", typ, tt, r, got, want, bound)
				}
			}
		}
	}
}

// TestNewQMatErrors checks that malformed quantized tensors are rejected
// with a message naming the problem.
func TestNewQMatErrors(t *testing.T) {
	q := make([]byte, 4*128)
	big := make([]byte, 32)
	sc := big[:16]
	cases := []struct {
		name            string
		rows, cols      int
		typ             quant.Type
		q, scales, mins []byte
		st              quant.Type
		want            string
	}{
		{"ok", 4, 128, quant.Q4G64, q[:4*64], sc, nil, quant.F16, ""},
		{"scale count", 4, 128, quant.Q4G64, q[:4*64], sc[:12], nil, quant.F16, "needs 8 scales (2 per row), have 6"},
		{"quant bytes", 4, 128, quant.Q4G64, q[:4*63], sc, nil, quant.F16, "needs 256 bytes of quants, have 252"},
		{"missing mins", 4, 128, quant.Q4G64M, q[:4*64], sc, nil, quant.F16, "needs mins"},
		{"extra mins", 4, 128, quant.Q4G64, q[:4*64], sc, sc, quant.F16, "has no mins"},
		{"min count", 4, 128, quant.Q4G64M, q[:4*64], sc, sc[:8], quant.F16, "needs 8 mins, have 4"},
		{"scale type", 4, 128, quant.Q8, q[:4*128], sc, nil, quant.F16, "scales cannot be F16"},
		{"row align", 4, 96, quant.Q4G32, q[:4*48], big[:4*3*2], nil, quant.F16, "multiple of 64"},
		{"float type", 4, 128, quant.BF16, q, nil, nil, quant.F16, "not a quantized type"},
	}
	for _, c := range cases {
		_, err := NewQMat(c.rows, c.cols, c.typ, c.q, c.scales, c.mins, c.st)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := NewMat(4, 128, quant.Q8, q); err == nil {
		t.Error("NewMat accepted a quantized type")
	}
}
