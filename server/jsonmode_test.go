package server

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// recognize feeds s and returns how many bytes were accepted and the final
// state.
func recognize(s string) (int, jsonState) {
	var st jsonState
	for i := 0; i < len(s); i++ {
		if !st.feed(s[i]) {
			return i, st
		}
	}
	return len(s), st
}

// prefixOK is the oracle: encoding/json's tokenizer reads s without a syntax
// error, only running out of input (or finishing).
func prefixOK(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		_, err := dec.Token()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return true
		default:
			return false
		}
	}
}

func TestJSONRecognizerAcceptsValidObjects(t *testing.T) {
	docs := []string{
		`{}`, ` {"a":1}`, `{"a": [1, -2.5e+3, 0, 0.25, 1E9, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9"]}`,
		`{"nested": {"deep": [[], {}, [{"k": "v"}]]}, "é": "ü", "n": -0}`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := r.IntN(7); {
		case k == 0 && depth < 4:
			m := map[string]any{}
			for i := range r.IntN(4) {
				m[string(rune('a'+i))+"\t\"\\ü"] = gen(depth + 1)
			}
			return m
		case k == 1 && depth < 4:
			l := make([]any, r.IntN(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		case k == 2:
			return r.NormFloat64() * 1e6
		case k == 3:
			return r.IntN(2) == 0
		case k == 4:
			return nil
		default:
			return "s\x01\u2028" + string(rune(r.IntN(0x1000)))
		}
	}
	for range 500 {
		b, err := json.Marshal(map[string]any{"v": gen(0)})
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	for _, d := range docs {
		n, st := recognize(d)
		if n != len(d) || st.mode != jsDone {
			t.Errorf("valid object %q: accepted %d of %d bytes, mode %d", d, n, len(d), st.mode)
		}
	}
}

// TestJSONRecognizerPrefixes checks, on random strings over JSON's
// alphabet, that every accepted string is a prefix of valid JSON and that
// "done" means valid; then exact rejection points on tricky cases.
func TestJSONRecognizerPrefixes(t *testing.T) {
	alphabet := []string{"{", "}", "[", "]", ":", ",", `"`, `\`, "u", "0", "1", "-", "+", ".", "e", "a", " ", "t", "rue", "n", "ull", "f", "alse"}
	r := rand.New(rand.NewPCG(3, 4))
	accepted := 0
	for range 200000 {
		var sb strings.Builder
		sb.WriteString("{")
		for range r.IntN(12) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		s := sb.String()
		n, st := recognize(s)
		if n < len(s) {
			continue
		}
		accepted++
		if !prefixOK(s) {
			t.Fatalf("accepted %q, which no JSON value starts with", s)
		}
		if st.mode == jsDone && !json.Valid([]byte(s)) {
			t.Fatalf("%q reported complete but is not valid JSON", s)
		}
	}
	if accepted < 1000 {
		t.Fatalf("only %d random strings accepted: the generator tests little", accepted)
	}
	for _, c := range []struct {
		s      string
		accept int // bytes accepted
	}{
		{`{"a":-`, 6}, {`{"a":01`, 6}, {`{"a":1.}`, 7}, {`{"a" 1`, 5}, {`{,`, 1}, {`{"a":1,}`, 7},
		{`{"a":tru`, 8}, {`{"a":trux`, 8}, {`{"a":"\x`, 7}, {`{"a":"\u12G`, 10}, {`[`, 0}, {`{} `, 2},
		{`{"a":[1,]`, 8}, {`{"a":1e+`, 8}, {`{"a":1e}`, 7}, {`{"a":"x` + "\n", 7}, {"{\"a\":\"\x01", 6},
		{`{"a":[1 2]`, 8}, {`{"a":{"b":1]`, 11}, {`{"a":0.5e-3}`, 12},
	} {
		if n, _ := recognize(c.s); n != c.accept {
			t.Errorf("%q: accepted %d bytes, want %d", c.s, n, c.accept)
		}
	}
}
