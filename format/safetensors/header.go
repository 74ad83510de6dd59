package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// ErrFormat is wrapped by every error about a malformed file or index: a bad
// header length, invalid JSON, a bad entry, overlapping or out-of-range data.
var ErrFormat = errors.New("safetensors: malformed file")

// maxHeaderSize caps the JSON header length; the reference implementation
// uses the same 100 MB limit. A larger length is taken as a corrupt file.
const maxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// entry is one validated tensor entry of a header.
type entry struct {
	name       string
	dtype      DType
	shape      []int
	begin, end int // byte offsets into the data section, begin <= end
}

// header is a parsed and validated safetensors header.
type header struct {
	entries   []entry           // sorted by name
	metadata  map[string]string // nil when the file has no __metadata__
	dataStart int               // file offset of the data section: 8 + header length
}

// formatErr returns an error wrapping ErrFormat that names the file and, when
// tensor is not empty, the tensor.
func formatErr(file, tensor, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if tensor != "" {
		return fmt.Errorf("%w: %s: tensor %q: %s", ErrFormat, file, tensor, msg)
	}
	return fmt.Errorf("%w: %s: %s", ErrFormat, file, msg)
}

// parseFile parses and validates the header of a whole safetensors file held
// in buf (8-byte little-endian header length N, N bytes of JSON, then the
// data section). file is used in error messages only.
func parseFile(file string, buf []byte) (*header, error) {
	if len(buf) < 8 {
		return nil, formatErr(file, "", "file is %d bytes, shorter than the 8-byte header length", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > maxHeaderSize {
		return nil, formatErr(file, "", "header length %d exceeds the %d-byte limit (corrupt file?)", n, maxHeaderSize)
	}
	if n > uint64(len(buf)-8) {
		return nil, formatErr(file, "", "header length %d runs past the end of the %d-byte file (truncated file?)", n, len(buf))
	}
	h, err := parseHeader(file, buf[8:8+n], len(buf)-8-int(n))
	if err != nil {
		return nil, err
	}
	h.dataStart = 8 + int(n)
	return h, nil
}

// parseHeader parses and validates the JSON header js of a file whose data
// section is dataLen bytes long.
func parseHeader(file string, js []byte, dataLen int) (*header, error) {
	if !utf8.Valid(js) {
		return nil, formatErr(file, "", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	syntaxErr := func(err error) error {
		return formatErr(file, "", "header is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
	}
	if tok, err := dec.Token(); err != nil {
		return nil, syntaxErr(err)
	} else if tok != json.Delim('{') {
		return nil, formatErr(file, "", "header is not a JSON object")
	}
	h := &header{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxErr(err)
		}
		name := tok.(string) // the decoder only yields strings as object keys
		if seen[name] {
			return nil, formatErr(file, name, "duplicate name in header")
		}
		seen[name] = true
		if name == metadataKey {
			// null is accepted as "no metadata", as the reference does.
			if err := dec.Decode(&h.metadata); err != nil {
				return nil, formatErr(file, "", "%s is not a map of strings to strings: %v", metadataKey, err)
			}
			continue
		}
		e, err := parseEntry(dec, file, name, dataLen)
		if err != nil {
			return nil, err
		}
		h.entries = append(h.entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxErr(err)
	}
	if rest := bytes.TrimLeft(js[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, formatErr(file, "", "unexpected data after the header object at byte %d", len(js)-len(rest))
	}
	if err := checkOverlaps(file, h.entries); err != nil {
		return nil, err
	}
	slices.SortFunc(h.entries, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	return h, nil
}

// parseEntry reads the object of one tensor entry from dec and validates it
// against a data section of dataLen bytes.
func parseEntry(dec *json.Decoder, file, name string, dataLen int) (entry, error) {
	fail := func(format string, args ...any) (entry, error) {
		return entry{}, formatErr(file, name, format, args...)
	}
	if tok, err := dec.Token(); err != nil {
		return fail("header is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
	} else if tok != json.Delim('{') {
		return fail("entry is not a JSON object")
	}
	var (
		dtype         *string
		shape, offset []int64
		seen          = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("header is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
		}
		key := tok.(string)
		if seen[key] {
			return fail("duplicate field %q", key)
		}
		seen[key] = true
		switch key {
		case "dtype":
			err = dec.Decode(&dtype)
		case "shape":
			err = dec.Decode(&shape)
		case "data_offsets":
			err = dec.Decode(&offset)
		default:
			return fail("unknown field %q (want dtype, shape, data_offsets)", key)
		}
		if err != nil {
			return fail("field %q: %v", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fail("header is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
	}
	switch {
	case dtype == nil:
		return fail("missing dtype")
	case shape == nil:
		return fail("missing shape")
	case offset == nil:
		return fail("missing data_offsets")
	}

	e := entry{name: name, dtype: DType(*dtype), shape: make([]int, len(shape))}
	size := e.dtype.Size()
	if size == 0 {
		return fail("unknown dtype %q", *dtype)
	}
	numel := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return fail("negative dimension %d in shape %v", d, shape)
		}
		hi, lo := bits.Mul64(numel, uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return fail("element count of shape %v overflows", shape)
		}
		numel = lo
		e.shape[i] = int(d)
	}
	hi, nbytes := bits.Mul64(numel, uint64(size))
	if hi != 0 || nbytes > math.MaxInt {
		return fail("byte size of shape %v of %s overflows", shape, e.dtype)
	}
	if len(offset) != 2 {
		return fail("data_offsets %v is not [begin, end]", offset)
	}
	begin, end := offset[0], offset[1]
	if begin < 0 || end < begin {
		return fail("data_offsets [%d, %d] is not [begin, end] with 0 <= begin <= end", begin, end)
	}
	if end > int64(dataLen) {
		return fail("data_offsets [%d, %d] end beyond the %d-byte data section (truncated file?)", begin, end, dataLen)
	}
	if uint64(end-begin) != nbytes {
		return fail("data_offsets [%d, %d] hold %d bytes, but shape %v of %s needs %d", begin, end, end-begin, shape, e.dtype, nbytes)
	}
	e.begin, e.end = int(begin), int(end)
	return e, nil
}

// checkOverlaps reports two tensors whose bytes overlap. Holes between
// tensors are allowed; empty tensors overlap nothing.
func checkOverlaps(file string, entries []entry) error {
	byOffset := make([]*entry, 0, len(entries))
	for i := range entries {
		if entries[i].end > entries[i].begin {
			byOffset = append(byOffset, &entries[i])
		}
	}
	slices.SortFunc(byOffset, func(a, b *entry) int { return cmp.Compare(a.begin, b.begin) })
	for i := 1; i < len(byOffset); i++ {
		prev, cur := byOffset[i-1], byOffset[i]
		if cur.begin < prev.end {
			return formatErr(file, cur.name, "data_offsets [%d, %d] overlap tensor %q at [%d, %d]",
				cur.begin, cur.end, prev.name, prev.begin, prev.end)
		}
	}
	return nil
}
