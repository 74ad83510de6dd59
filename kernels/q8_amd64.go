//go:build !purego

package kernels

import (
	"fmt"
	"strings"

	"github.com/lightninglm/lightning/internal/cpu"
)

// q8Path is one instruction-set path of the quantized kernels.
type q8Path uint8

const (
	q8PathAVX512VNNI q8Path = iota // 512-bit VPDPBUSD
	q8PathAVXVNNI                  // 256-bit VEX VPDPBUSD (AVX-VNNI)
	q8PathAVX2                     // 256-bit VPMADDUBSW + VPMADDWD
)

var useQ8AVX512VNNI, useQ8AVXVNNI, useQ8AVX2 bool

func init() {
	x := cpu.X86
	avx512 := x.AVX512F && x.AVX512BW && x.AVX512VL && x.AVX512DQ
	cpu.Register("matmul.q8", "avx512vnni", &useQ8AVX512VNNI, avx512 && x.AVX512VNNI)
	cpu.Register("matmul.q8", "avxvnni", &useQ8AVXVNNI, x.AVXVNNI && x.AVX2 && x.FMA && x.F16C)
	cpu.Register("matmul.q8", "avx2", &useQ8AVX2, x.AVX2 && x.FMA && x.F16C)
}

// q8Key identifies a layout: kind, group, mins, bfloat16 scales.
type q8Key struct {
	kind       q8Kind
	group      int
	mins, bf16 bool
}

// q8Fast holds q8Kernels by path and q8Key (built once, so choosing a
// kernel allocates nothing).
var q8Fast [3]map[q8Key]q8Kernel

func init() {
	for p, ks := range q8Kernels {
		q8Fast[p] = map[q8Key]q8Kernel{}
		for name, k := range ks {
			var key q8Key
			switch {
			case name == "Row":
				key = q8Key{kind: q8Row}
			case name == "Blk" || name == "BlkB":
				key = q8Key{kind: q8Blk, group: 32, bf16: name == "BlkB"}
			default:
				var g int
				var flags string
				fmt.Sscanf(name, "G%d%s", &g, &flags)
				key = q8Key{kind: q4Grp, group: g, mins: strings.Contains(flags, "M"), bf16: strings.Contains(flags, "B")}
			}
			q8Fast[p][key] = k
		}
	}
}

// q8Choose picks the fastest enabled path that takes j and sets the record
// layout it reads: units of 64 inputs for AVX-512 (128 in int4 order for
// int4, which needs in%128 == 0), 32 for the 256-bit paths (in%32 == 0),
// and the offset its L lanes remove (128 for int8 weights fed as unsigned
// bytes, 8 for symmetric int4, 0 with mins or AVX2's sign trick).
func q8Choose(j *q8Job) {
	var p q8Path
	switch {
	case useQ8AVX512VNNI && (j.kind != q4Grp || j.in%128 == 0):
		p, j.lay.U = q8PathAVX512VNNI, 64
	case useQ8AVXVNNI && j.in%32 == 0:
		p, j.lay.U = q8PathAVXVNNI, 32
	case useQ8AVX2 && j.in%32 == 0:
		p, j.lay.U = q8PathAVX2, 32
	default:
		return
	}
	key := q8Key{kind: j.kind, mins: j.mn != nil, bf16: j.bf16}
	if j.kind != q8Row {
		key.group = j.group
	}
	j.fast = q8Fast[p][key]
	switch {
	case p == q8PathAVX512VNNI && j.kind == q4Grp:
		j.lay.U, j.lay.perm, j.act = 128, true, actAVX512Q4
		if j.lay.pair {
			j.act = actAVX512Q4P
		}
	case p == q8PathAVX512VNNI:
		j.act = actAVX512
	case j.lay.pair:
		j.act = actAVX2P
	default:
		j.act = actAVX2
	}
	switch {
	case j.kind == q4Grp && j.mn != nil:
		j.lay.o = 0
	case j.kind == q4Grp:
		j.lay.o = 8
	case p == q8PathAVX2:
		j.lay.o = 0
	default:
		j.lay.o = 128
	}
}

// The assembly activation quantizers (q8ActArch's sel).
const (
	actGo        = iota // none: the twin
	actAVX512           // units of 64
	actAVX512Q4         // 128-input perm units
	actAVX512Q4P        // and blocks of 64 with combined sums
	actAVX2             // units of 32
	actAVX2P            // and blocks of 64
)

// q8ActArch quantizes the leading whole loop steps of x (64 or 128
// inputs, or 32 for actAVX2) into rec with the assembly quantizer sel and
// weight offset o, and returns the inputs done; the twin finishes the rest.
func q8ActArch(sel int, rec []byte, x []float32, o int32) int {
	step := [...]int{actAVX512: 64, actAVX512Q4: 128, actAVX512Q4P: 128, actAVX2: 32, actAVX2P: 64}
	if sel == actGo || len(x) < step[sel] {
		return 0
	}
	n := len(x) / step[sel]
	r, xp := &rec[0], &x[0]
	switch sel {
	case actAVX512:
		q8ActAVX512(r, xp, n, -o)
	case actAVX512Q4:
		q8ActAVX512Q4(r, xp, n, -o)
	case actAVX512Q4P:
		q8ActAVX512Q4P(r, xp, n, -o)
	case actAVX2:
		q8ActAVX2(r, xp, n, -o)
	case actAVX2P:
		q8ActAVX2P(r, xp, n, -o)
	}
	return n * step[sel]
}
