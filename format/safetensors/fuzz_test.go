package safetensors

import (
	"encoding/binary"
	"math/bits"
	"testing"
)

// headerSeeds are valid and invalid headers for the fuzz corpus.
var headerSeeds = []string{
	`{}`,
	`{"__metadata__":{"format":"pt"}}`,
	`{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}}`,
	`{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"U8","shape":[0],"data_offsets":[8,8]}}   `,
	`{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`,
	`{"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`,
	`{"a":{"dtype":"F32","shape":[1]},"a":{}}`,
	`{"__metadata__":{"k":1}}`,
	`[1]`,
	`{"a":`,
}

// FuzzParseHeader checks that the header parser never panics and that any
// header it accepts is consistent with the file: known dtypes, sizes that
// match shapes, offsets inside the data section, no overlaps, sorted unique
// names. With raw set the input is the whole file, length prefix included.
func FuzzParseHeader(f *testing.F) {
	for i, s := range headerSeeds {
		f.Add([]byte(s), uint16(32), false)
		if i < 3 {
			b := binary.LittleEndian.AppendUint64(nil, uint64(len(s)))
			f.Add(append(b, s...), uint16(0), true)
		}
	}
	f.Add([]byte("\x05\x00\x00\x00\x00\x00\x00\x00{}"), uint16(0), true)
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff{}"), uint16(0), true)
	f.Fuzz(func(t *testing.T, in []byte, dataLen uint16, raw bool) {
		buf := in
		if !raw {
			buf = binary.LittleEndian.AppendUint64(nil, uint64(len(in)))
			buf = append(buf, in...)
			buf = append(buf, make([]byte, dataLen)...)
		}
		h, err := parseFile("fuzz", buf)
		if err != nil {
			return
		}
		if h.dataStart < 8 || h.dataStart > len(buf) || (!raw && h.dataStart != 8+len(in)) {
			t.Fatalf("data section starts at %d in a %d-byte file", h.dataStart, len(buf))
		}
		data := buf[h.dataStart:]
		for i, e := range h.entries {
			if i > 0 && h.entries[i-1].name >= e.name {
				t.Fatalf("names not sorted and unique: %q then %q", h.entries[i-1].name, e.name)
			}
			if e.name == metadataKey {
				t.Fatalf("%s parsed as a tensor", metadataKey)
			}
			n := uint64(e.dtype.Size())
			if n == 0 {
				t.Fatalf("%q: unknown dtype %q accepted", e.name, e.dtype)
			}
			for _, d := range e.shape {
				var hi uint64
				if d < 0 {
					t.Fatalf("%q: negative dimension in %v", e.name, e.shape)
				}
				if hi, n = bits.Mul64(n, uint64(d)); hi != 0 {
					t.Fatalf("%q: size of %v overflows", e.name, e.shape)
				}
			}
			if e.begin < 0 || e.end < e.begin || e.end > len(data) || uint64(e.end-e.begin) != n {
				t.Fatalf("%q: offsets [%d, %d] for %d bytes in a %d-byte data section", e.name, e.begin, e.end, n, len(data))
			}
			_ = data[e.begin:e.end]
			for _, o := range h.entries[:i] {
				if e.begin < e.end && o.begin < o.end && e.begin < o.end && o.begin < e.end {
					t.Fatalf("%q [%d, %d] overlaps %q [%d, %d]", e.name, e.begin, e.end, o.name, o.begin, o.end)
				}
			}
		}
	})
}

// FuzzParseIndex checks that the index parser never panics and that an
// accepted index has at least one tensor, only plain shard file names and a
// valid total size.
func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{
		`{"metadata":{"total_size":16},"weight_map":{"a":"model-00000-of-00413.safetensors","b":"model-00001-of-00413.safetensors"}}`,
		`{"weight_map":{"a":"m.safetensors"}}`,
		`{"metadata":{"total_size":1.2e10},"weight_map":{"a":"m"}}`,
		`{"weight_map":{"a":"../x.safetensors"}}`,
		`{"weight_map":{"a":"x","a":"y"}}`,
		`{"weight_map":{}}`,
		`{"metadata":{"total_size":-1},"weight_map":{"a":"m"}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		wm, total, err := parseIndex("fuzz", in)
		if err != nil {
			return
		}
		if len(wm) == 0 || total < -1 {
			t.Fatalf("accepted index with %d tensors and total size %d", len(wm), total)
		}
		for name, shard := range wm {
			if err := checkShardName(shard); err != nil {
				t.Fatalf("tensor %q: accepted %v", name, err)
			}
		}
	})
}
