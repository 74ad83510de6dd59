package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// This file reads the character vectors of an installed R package's lazy-load
// data (data/Rdata.rdx and data/Rdata.rdb) without R. The .rdx is a gzipped R
// serialization of list(variables=, references=, compressed=), where each
// variable maps to an integer pair (offset, length) into the .rdb; each .rdb
// entry is a 4-byte big-endian uncompressed length followed by a zlib stream
// holding the variable's serialization. Only what such data sets use is
// decoded: the XDR ("X\n") format, versions 2 and 3, with NULL, symbols,
// pairlists, character/logical/integer/double vectors and lists, their
// attributes, and references to earlier symbols.

// rValue is a decoded R object: a character vector, a list, a numeric vector
// (as float64), or nil for NULL. Attributes other than names are dropped.
type rValue struct {
	Strings []string
	List    []rValue
	Numbers []float64
	Names   []string
}

// readRData returns the named character vectors of a lazy-load database
// (path without extension, e.g. …/data/Rdata).
func readRData(base string) (map[string][]string, error) {
	f, err := os.Open(base + ".rdx")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s.rdx: %w", base, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("%s.rdx: %w", base, err)
	}
	index, err := unserializeR(raw)
	if err != nil {
		return nil, fmt.Errorf("%s.rdx: %w", base, err)
	}
	vars, ok := index.field("variables")
	if !ok {
		return nil, fmt.Errorf("%s.rdx: no variables", base)
	}
	if c, ok := index.field("compressed"); ok && len(c.Numbers) == 1 && c.Numbers[0] != 1 {
		return nil, fmt.Errorf("%s.rdx: compression type %v; only zlib (1) is read", base, c.Numbers[0])
	}
	db, err := os.ReadFile(base + ".rdb")
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for i, name := range vars.Names {
		loc := vars.List[i].Numbers
		if len(loc) != 2 || loc[0] < 0 || loc[1] < 4 || loc[0]+loc[1] > float64(len(db)) {
			return nil, fmt.Errorf("%s.rdb: bad location %v for %s", base, loc, name)
		}
		entry := db[int(loc[0]):int(loc[0]+loc[1])]
		zr, err := zlib.NewReader(bytes.NewReader(entry[4:]))
		if err != nil {
			return nil, fmt.Errorf("%s.rdb %s: %w", base, name, err)
		}
		ser, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("%s.rdb %s: %w", base, name, err)
		}
		if n := binary.BigEndian.Uint32(entry); int(n) != len(ser) {
			return nil, fmt.Errorf("%s.rdb %s: %d bytes, header says %d", base, name, len(ser), n)
		}
		v, err := unserializeR(ser)
		if err != nil {
			return nil, fmt.Errorf("%s.rdb %s: %w", base, name, err)
		}
		if v.Strings != nil {
			out[name] = v.Strings
		}
	}
	return out, nil
}

func (v rValue) field(name string) (rValue, bool) {
	for i, n := range v.Names {
		if n == name && i < len(v.List) {
			return v.List[i], true
		}
	}
	return rValue{}, false
}

// R's SEXP type codes and the serialization's special codes.
const (
	rNILSXP    = 0
	rSYMSXP    = 1
	rLISTSXP   = 2
	rCHARSXP   = 9
	rLGLSXP    = 10
	rINTSXP    = 13
	rREALSXP   = 14
	rSTRSXP    = 16
	rVECSXP    = 19
	rREFSXP    = 255
	rNILVALUE  = 254
	rNAInteger = math.MinInt32
)

type rReader struct {
	buf  []byte
	refs []rValue // the reference table: symbols, in order of appearance
}

var errRShort = errors.New("R serialization: unexpected end of data")

func (r *rReader) int() (int32, error) {
	if len(r.buf) < 4 {
		return 0, errRShort
	}
	v := int32(binary.BigEndian.Uint32(r.buf))
	r.buf = r.buf[4:]
	return v, nil
}

func (r *rReader) bytes(n int) ([]byte, error) {
	if n < 0 || len(r.buf) < n {
		return nil, errRShort
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b, nil
}

// unserializeR decodes one XDR R serialization.
func unserializeR(data []byte) (rValue, error) {
	if len(data) < 2 || string(data[:2]) != "X\n" {
		return rValue{}, errors.New("R serialization: not the XDR format")
	}
	r := &rReader{buf: data[2:]}
	version, err := r.int()
	if err != nil {
		return rValue{}, err
	}
	if _, err := r.bytes(8); err != nil { // writer's R version, minimal R version
		return rValue{}, err
	}
	switch version {
	case 2:
	case 3:
		n, err := r.int() // native encoding name
		if err != nil {
			return rValue{}, err
		}
		if _, err := r.bytes(int(n)); err != nil {
			return rValue{}, err
		}
	default:
		return rValue{}, fmt.Errorf("R serialization: version %d", version)
	}
	return r.item()
}

func (r *rReader) item() (rValue, error) {
	flags, err := r.int()
	if err != nil {
		return rValue{}, err
	}
	typ := flags & 0xff
	hasAttr := flags&(1<<9) != 0
	hasTag := flags&(1<<10) != 0
	switch typ {
	case rNILVALUE:
		return rValue{}, nil
	case rREFSXP:
		i := int(flags >> 8)
		if i == 0 {
			n, err := r.int()
			if err != nil {
				return rValue{}, err
			}
			i = int(n)
		}
		if i < 1 || i > len(r.refs) {
			return rValue{}, fmt.Errorf("R serialization: reference %d of %d", i, len(r.refs))
		}
		return r.refs[i-1], nil
	case rSYMSXP:
		name, err := r.item() // a CHARSXP
		if err != nil {
			return rValue{}, err
		}
		r.refs = append(r.refs, name)
		return name, nil
	case rCHARSXP:
		n, err := r.int()
		if err != nil {
			return rValue{}, err
		}
		if n == -1 {
			return rValue{Strings: []string{""}}, nil // NA_character_
		}
		b, err := r.bytes(int(n))
		if err != nil {
			return rValue{}, err
		}
		return rValue{Strings: []string{string(b)}}, nil
	case rLISTSXP:
		// A pairlist: [attr] [tag] car cdr, iterated along the cdr.
		var out rValue
		for {
			if hasAttr {
				if _, err := r.item(); err != nil {
					return rValue{}, err
				}
			}
			tag := ""
			if hasTag {
				t, err := r.item()
				if err != nil {
					return rValue{}, err
				}
				if len(t.Strings) == 1 {
					tag = t.Strings[0]
				}
			}
			car, err := r.item()
			if err != nil {
				return rValue{}, err
			}
			out.List = append(out.List, car)
			out.Names = append(out.Names, tag)
			next, err := r.int()
			if err != nil {
				return rValue{}, err
			}
			if next&0xff == rNILVALUE {
				return out, nil
			}
			if next&0xff != rLISTSXP {
				return rValue{}, fmt.Errorf("R serialization: pairlist continued by type %d", next&0xff)
			}
			hasAttr = next&(1<<9) != 0
			hasTag = next&(1<<10) != 0
		}
	}
	var v rValue
	n, err := r.int()
	if err != nil {
		return rValue{}, err
	}
	if n < 0 {
		return rValue{}, fmt.Errorf("R serialization: long vectors are not read (type %d)", typ)
	}
	switch typ {
	case rNILSXP:
	case rSTRSXP:
		v.Strings = make([]string, n)
		for i := range v.Strings {
			s, err := r.item()
			if err != nil {
				return rValue{}, err
			}
			if len(s.Strings) != 1 {
				return rValue{}, errors.New("R serialization: string vector element is not a CHARSXP")
			}
			v.Strings[i] = s.Strings[0]
		}
	case rVECSXP:
		v.List = make([]rValue, n)
		for i := range v.List {
			if v.List[i], err = r.item(); err != nil {
				return rValue{}, err
			}
		}
	case rLGLSXP, rINTSXP:
		v.Numbers = make([]float64, n)
		for i := range v.Numbers {
			x, err := r.int()
			if err != nil {
				return rValue{}, err
			}
			v.Numbers[i] = float64(x)
			if x == rNAInteger {
				v.Numbers[i] = math.NaN()
			}
		}
	case rREALSXP:
		v.Numbers = make([]float64, n)
		for i := range v.Numbers {
			b, err := r.bytes(8)
			if err != nil {
				return rValue{}, err
			}
			v.Numbers[i] = math.Float64frombits(binary.BigEndian.Uint64(b))
		}
	default:
		return rValue{}, fmt.Errorf("R serialization: type %d is not read", typ)
	}
	if hasAttr {
		attrs, err := r.item()
		if err != nil {
			return rValue{}, err
		}
		for i, name := range attrs.Names {
			if name == "names" {
				v.Names = attrs.List[i].Strings
			}
		}
	}
	return v, nil
}
