package jinja

import (
	"bufio"
	"os"
	"testing"
)

// TestJSONRoundTrip decodes every line of testdata/golden.jsonl (written by
// Python's json.dumps(ensure_ascii=False)) and re-encodes it with ToJSON:
// key order, int-vs-float, float repr and escaping must reproduce the line
// byte for byte.
func TestJSONRoundTrip(t *testing.T) {
	f, err := os.Open("testdata/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for n := 1; sc.Scan(); n++ {
		v, err := DecodeJSON(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		got, err := ToJSON(v)
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if got != sc.Text() {
			t.Errorf("line %d:\n got: %s\nwant: %s", n, got, sc.Text())
		}
	}
}

func TestDecodeJSONNumberKinds(t *testing.T) {
	v, err := DecodeJSON([]byte(`{"b": 1, "a": 1.0, "c": 123456789012345678901234567890, "d": -0, "e": 1e2}`))
	if err != nil {
		t.Fatal(err)
	}
	d := v.(*Dict)
	wantKeys := []string{"b", "a", "c", "d", "e"}
	for i, k := range d.Keys() {
		if k != wantKeys[i] {
			t.Fatalf("key %d = %v, want %s (insertion order)", i, k, wantKeys[i])
		}
	}
	if _, ok := d.Values()[0].(int64); !ok {
		t.Errorf("1 decoded as %T, want int64", d.Values()[0])
	}
	if _, ok := d.Values()[1].(float64); !ok {
		t.Errorf("1.0 decoded as %T, want float64", d.Values()[1])
	}
	if s := pyStr(d.Values()[2]); s != "123456789012345678901234567890" {
		t.Errorf("big int printed %s", s)
	}
	if _, ok := d.Values()[4].(float64); !ok {
		t.Errorf("1e2 decoded as %T, want float64", d.Values()[4])
	}
	if _, err := DecodeJSON([]byte(`{"a": 1} x`)); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestFromGo(t *testing.T) {
	v, err := FromGo(map[string]any{"z": []any{1, "a", nil, true, 2.5}, "a": map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	// Go maps have no order: FromGo sorts keys.
	got, err := ToJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a": {"k": "v"}, "z": [1, "a", null, true, 2.5]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := FromGo(struct{}{}); err == nil {
		t.Error("struct accepted")
	}
}
