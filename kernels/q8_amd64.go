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
		p, j.unit = q8PathAVX512VNNI, 64
	case useQ8AVXVNNI && j.in%32 == 0:
		p, j.unit = q8PathAVXVNNI, 32
	case useQ8AVX2 && j.in%32 == 0:
		p, j.unit = q8PathAVX2, 32
	default:
		return
	}
	key := q8Key{kind: j.kind, mins: j.mn != nil, bf16: j.bf16}
	if j.kind != q8Row {
		key.group = j.group
	}
	j.fast = q8Fast[p][key]
	j.act = 1 + int(min(p, q8PathAVXVNNI)) // AVX-512 or AVX2 activation quantizer
	if p == q8PathAVX512VNNI && j.kind == q4Grp {
		j.unit, j.perm, j.act = 128, true, 3
	}
	switch {
	case j.kind == q4Grp && j.mn != nil:
		j.off = 0
	case j.kind == q4Grp:
		j.off = 8
	case p == q8PathAVX2:
		j.off = 0
	default:
		j.off = 128
	}
}

// q8ActArch quantizes the whole units of x with the assembly quantizer sel
// (1: AVX-512, units of 64; 2: AVX2, units of 32; 3: AVX-512, 128-input
// units in int4 order; 0: none) and returns the inputs done; the twin
// finishes the rest.
func q8ActArch(sel int, rec []byte, x []float32, U int, o int32) int {
	units := len(x) / U
	if sel == 0 || units == 0 {
		return 0
	}
	switch sel {
	case 1:
		q8ActAVX512(&rec[0], &x[0], units, -o)
	case 2:
		q8ActAVX2(&rec[0], &x[0], units, -o)
	default:
		q8ActAVX512Q4(&rec[0], &x[0], units, -o)
	}
	return units * U
}
