package safetensors

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeSharded writes tensors into shards named 0-based, as some real
// checkpoints are (model-00000-of-0000N), plus the index, and returns the
// folder and the shard of each tensor.
func writeSharded(t *testing.T, tensors []Tensor, nShards int) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	weightMap := map[string]string{}
	var total int64
	for s := range nShards {
		name := shardName(s, nShards)
		var part []Tensor
		for i := s; i < len(tensors); i += nShards {
			part = append(part, tensors[i])
			weightMap[tensors[i].Name] = name
			total += int64(len(tensors[i].Data))
		}
		if err := Write(filepath.Join(dir, name), part, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteIndex(dir, weightMap, total); err != nil {
		t.Fatal(err)
	}
	return dir, weightMap
}

func shardName(s, n int) string { return fmt.Sprintf("model-%05d-of-%05d.safetensors", s, n) }

func TestCheckpointSharded(t *testing.T) {
	tensors := mixedTensors()
	dir, weightMap := writeSharded(t, tensors, 3)
	if _, err := os.Stat(filepath.Join(dir, "model-00000-of-00003.safetensors")); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var names []string
	for _, tn := range tensors {
		names = append(names, tn.Name)
		got, err := c.Tensor(tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, tn.Data) || !slices.Equal(got.Shape, tn.Shape) || got.DType != tn.DType {
			t.Errorf("%q: got %s %v, want %s %v (data equal %v)", tn.Name, got.DType, got.Shape, tn.DType, tn.Shape, bytes.Equal(got.Data, tn.Data))
		}
		if filepath.Base(got.File) != weightMap[tn.Name] {
			t.Errorf("%q came from %s, want shard %s", tn.Name, got.File, weightMap[tn.Name])
		}
	}
	slices.Sort(names)
	if !slices.Equal(c.Names(), names) {
		t.Errorf("Names() = %v, want %v", c.Names(), names)
	}
	_, err = c.Tensor("nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing tensor: error %v, want ErrNotFound naming it", err)
	}
	// The written index reads back with its total size.
	js, _ := os.ReadFile(filepath.Join(dir, IndexFileName))
	wm, total, err := parseIndex("index", js)
	if err != nil || len(wm) != len(tensors) || total <= 0 {
		t.Errorf("parseIndex of written index: %d entries, total %d, err %v", len(wm), total, err)
	}
}

func TestCheckpointMissingShard(t *testing.T) {
	dir, weightMap := writeSharded(t, mixedTensors(), 3)
	missing := "model-00001-of-00003.safetensors"
	if err := os.Remove(filepath.Join(dir, missing)); err != nil {
		t.Fatal(err)
	}
	var first string // the first tensor, by name, in the missing shard
	for name, shard := range weightMap {
		if shard == missing && (first == "" || name < first) {
			first = name
		}
	}
	_, err := OpenCheckpoint(dir)
	if err == nil {
		t.Fatal("OpenCheckpoint succeeded with a shard missing")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	for _, want := range []string{`shard "` + missing + `"`, `tensor "` + first + `"`, "is missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestCheckpointTensorNotInShard(t *testing.T) {
	dir, _ := writeSharded(t, mixedTensors(), 2)
	index := `{"metadata":{"total_size":4},"weight_map":{"a.bool":"model-00000-of-00002.safetensors","b.bf16":"model-00000-of-00002.safetensors"}}`
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenCheckpoint(dir)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `tensor "b.bf16": mapped to shard "model-00000-of-00002.safetensors", which does not contain it`) {
		t.Errorf("error %v, want ErrFormat naming b.bf16 and its shard", err)
	}
}

func TestCheckpointMalformedShard(t *testing.T) {
	dir, _ := writeSharded(t, mixedTensors(), 2)
	shard := filepath.Join(dir, "model-00001-of-00002.safetensors")
	b, _ := os.ReadFile(shard)
	if err := os.WriteFile(shard, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenCheckpoint(dir)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), shard) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("error %v, want ErrFormat naming the truncated shard", err)
	}
}

func TestCheckpointFallbackAndSingle(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a, b := randomTensor(r, "a", F32, 2), randomTensor(r, "b", BF16, 3)

	t.Run("every file", func(t *testing.T) {
		dir := t.TempDir()
		if err := Write(filepath.Join(dir, "one.safetensors"), []Tensor{a}, nil); err != nil {
			t.Fatal(err)
		}
		if err := Write(filepath.Join(dir, "two.safetensors"), []Tensor{b}, nil); err != nil {
			t.Fatal(err)
		}
		c, err := OpenCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !slices.Equal(c.Names(), []string{"a", "b"}) {
			t.Errorf("Names() = %v, want [a b]", c.Names())
		}
	})
	t.Run("duplicate across files", func(t *testing.T) {
		dir := t.TempDir()
		for _, name := range []string{"one.safetensors", "two.safetensors"} {
			if err := Write(filepath.Join(dir, name), []Tensor{a}, nil); err != nil {
				t.Fatal(err)
			}
		}
		_, err := OpenCheckpoint(dir)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), `tensor "a": also in`) {
			t.Errorf("error %v, want ErrFormat about tensor a in two files", err)
		}
	})
	t.Run("model.safetensors wins", func(t *testing.T) {
		dir := t.TempDir()
		if err := Write(filepath.Join(dir, SingleFileName), []Tensor{a}, nil); err != nil {
			t.Fatal(err)
		}
		if err := Write(filepath.Join(dir, "prefill.safetensors"), []Tensor{b}, nil); err != nil {
			t.Fatal(err)
		}
		c, err := OpenCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !slices.Equal(c.Names(), []string{"a"}) {
			t.Errorf("Names() = %v, want [a]", c.Names())
		}
		// A file path opens just that file.
		c2, err := OpenCheckpoint(filepath.Join(dir, "prefill.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if !slices.Equal(c2.Names(), []string{"b"}) {
			t.Errorf("Names() of a file path = %v, want [b]", c2.Names())
		}
	})
	t.Run("empty folder", func(t *testing.T) {
		if _, err := OpenCheckpoint(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("no folder", func(t *testing.T) {
		if _, err := OpenCheckpoint(filepath.Join(t.TempDir(), "x")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v, want fs.ErrNotExist", err)
		}
	})
}

func TestParseIndex(t *testing.T) {
	for _, tc := range []struct {
		name, js string
		want     string // error substring; "" for success
		total    int64
	}{
		{name: "ok", js: `{"metadata":{"total_size":16},"weight_map":{"a":"m-00000-of-00413.safetensors"}}`, total: 16},
		{name: "no metadata", js: `{"weight_map":{"a":"m.safetensors"}}`, total: -1},
		{name: "float total", js: `{"metadata":{"total_size":1.2e10},"weight_map":{"a":"m.safetensors"}}`, total: 12_000_000_000},
		{name: "extra keys", js: `{"format":"x","metadata":{"total_size":1,"other":[1]},"weight_map":{"a":"m.safetensors"}} `, total: 1},
		{name: "not JSON", js: `{"weight_map":`, want: "truncated or invalid JSON"},
		{name: "truncated in a value", js: `{"weight_map":{"a":"m-00001-of-00002.safe`, want: "truncated or invalid JSON"},
		{name: "truncated after a key", js: `{"weight_map":{"a":"m.safetensors","b":`, want: "truncated or invalid JSON"},
		{name: "syntax error", js: `{"weight_map":{"a":"m.safetensors",,}}`, want: "truncated or invalid JSON"},
		{name: "not object", js: `[]`, want: "not a JSON object"},
		{name: "no weight_map", js: `{"metadata":{}}`, want: "no weight_map"},
		{name: "empty weight_map", js: `{"weight_map":{}}`, want: "no weight_map"},
		{name: "weight_map array", js: `{"weight_map":["a"]}`, want: "weight_map is not a JSON object"},
		{name: "duplicate tensor", js: `{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}`, want: `tensor "a": mapped twice`},
		{name: "duplicate key", js: `{"weight_map":{"a":"x"},"weight_map":{"b":"x"}}`, want: `duplicate key "weight_map"`},
		{name: "shard not string", js: `{"weight_map":{"a":1}}`, want: `tensor "a": weight_map value is not a shard file name`},
		{name: "traversal", js: `{"weight_map":{"a":"../x.safetensors"}}`, want: `shard "../x.safetensors" is not a plain file name`},
		{name: "subfolder", js: `{"weight_map":{"a":"sub/x.safetensors"}}`, want: "not a plain file name"},
		{name: "backslash", js: `{"weight_map":{"a":"sub\\x.safetensors"}}`, want: "not a plain file name"},
		{name: "absolute", js: `{"weight_map":{"a":"/etc/passwd"}}`, want: "not a plain file name"},
		{name: "dot dot", js: `{"weight_map":{"a":".."}}`, want: "not a plain file name"},
		{name: "empty shard", js: `{"weight_map":{"a":""}}`, want: "not a plain file name"},
		{name: "NUL", js: `{"weight_map":{"a":"x\u0000.safetensors"}}`, want: "not a plain file name"},
		{name: "negative total", js: `{"metadata":{"total_size":-1},"weight_map":{"a":"m"}}`, want: "not a non-negative integer"},
		{name: "fractional total", js: `{"metadata":{"total_size":1.5},"weight_map":{"a":"m"}}`, want: "not a non-negative integer"},
		{name: "string total", js: `{"metadata":{"total_size":"1"},"weight_map":{"a":"m"}}`, want: "is not a number"},
		{name: "metadata array", js: `{"metadata":[],"weight_map":{"a":"m"}}`, want: "metadata is not an object"},
		{name: "trailing", js: `{"weight_map":{"a":"m"}} x`, want: "invalid character 'x' after top-level value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wm, total, err := parseIndex("idx.json", []byte(tc.js))
			if tc.want == "" {
				if err != nil || len(wm) != 1 || total != tc.total {
					t.Errorf("got %v, total %d, err %v; want one entry, total %d", wm, total, err, tc.total)
				}
				return
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "idx.json") {
				t.Errorf("error %v, want ErrFormat naming idx.json and containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteIndexRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		wm    map[string]string
		total int64
		want  string
	}{
		{"empty", nil, 0, "empty weight map"},
		{"negative", map[string]string{"a": "m.safetensors"}, -1, "negative total size"},
		{"traversal", map[string]string{"a": "../m.safetensors"}, 0, "not a plain file name"},
	} {
		if err := WriteIndex(dir, tc.wm, tc.total); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, IndexFileName)); !os.IsNotExist(err) {
		t.Error("a rejected index was written")
	}
}
