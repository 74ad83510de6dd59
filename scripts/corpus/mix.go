package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// runMix writes one shuffled JSONL of {"text": ...} lines from corpus files
// ({"text"} lines) and rendered chat files ({"rendered"} lines, what
// `lightning template -jsonl` writes). The shuffle is Python's
// random.Random(seed).shuffle and each line is json.dumps(ensure_ascii=False),
// so the output is byte for byte the mix the recipe's first run was built
// with (by a Python script this replaced).
func runMix(args []string) error {
	fs := flag.NewFlagSet("mix", flag.ContinueOnError)
	out := fs.String("o", "", "output .jsonl file")
	seed := fs.Uint64("seed", 1, "shuffle seed")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: corpus mix -o OUT.jsonl [-seed N] FILE.jsonl...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("mix: -o and at least one input file are required")
	}
	var lines []string
	for _, path := range fs.Args() {
		texts, err := readMixInput(path)
		if err != nil {
			return err
		}
		for _, t := range texts {
			lines = append(lines, `{"text": `+pythonJSONString(t)+"}")
		}
	}
	if uint64(len(lines)) > 1<<32 {
		return errors.New("mix: more than 2^32 documents")
	}
	newPythonRandom(*seed).shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	if err := os.WriteFile(*out, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d documents\n", *out, len(lines))
	return nil
}

// readMixInput returns the "text" (else "rendered") string of every line.
func readMixInput(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<30)
	for n := 1; sc.Scan(); n++ {
		var o map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		raw, ok := o["text"]
		if !ok {
			raw, ok = o["rendered"]
		}
		var text *string
		if ok {
			if err := json.Unmarshal(raw, &text); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
		}
		if text == nil {
			return nil, fmt.Errorf("%s:%d: the line has neither a \"text\" nor a \"rendered\" string", path, n)
		}
		texts = append(texts, *text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return texts, nil
}

// pythonJSONString quotes s as Python's json.dumps(s, ensure_ascii=False)
// does: only the quote, the backslash and control characters are escaped
// (unlike encoding/json, which also escapes U+2028 and U+2029).
func pythonJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pythonRandom is CPython's random.Random: the Mersenne Twister MT19937
// seeded with init_by_array from the seed's 32-bit words.
type pythonRandom struct {
	mt  [624]uint32
	idx int
}

func newPythonRandom(seed uint64) *pythonRandom {
	key := []uint32{uint32(seed)} // the seed's 32-bit words, low first, no high zero words
	if seed>>32 != 0 {
		key = append(key, uint32(seed>>32))
	}
	r := &pythonRandom{}
	// init_genrand(19650218)
	r.mt[0] = 19650218
	for i := 1; i < 624; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	// init_by_array(key)
	i, j := 1, 0
	for k := max(624, len(key)); k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i, j = i+1, j+1
		if i >= 624 {
			r.mt[0], i = r.mt[623], 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := 623; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		i++
		if i >= 624 {
			r.mt[0], i = r.mt[623], 1
		}
	}
	r.mt[0] = 0x80000000
	r.idx = 624
	return r
}

// uint32 is genrand_uint32: the next tempered output.
func (r *pythonRandom) uint32() uint32 {
	if r.idx >= 624 {
		for k := 0; k < 624; k++ {
			y := r.mt[k]&0x80000000 | r.mt[(k+1)%624]&0x7fffffff
			v := r.mt[(k+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			r.mt[k] = v
		}
		r.idx = 0
	}
	y := r.mt[r.idx]
	r.idx++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// below is Random._randbelow(n) for 2 <= n <= 2^32: getrandbits(n.bit_length())
// drawn until it is under n.
func (r *pythonRandom) below(n uint64) uint64 {
	k := 0
	for n>>k != 0 {
		k++
	}
	for {
		v := uint64(r.uint32() >> (32 - k))
		if v < n {
			return v
		}
	}
}

// shuffle is Random.shuffle on n items: from the last item down to the
// second, swap item i with a uniform j in [0, i].
func (r *pythonRandom) shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, int(r.below(uint64(i)+1)))
	}
}
