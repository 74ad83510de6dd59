package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNotFound is wrapped by Checkpoint.Tensor when the checkpoint has no
// tensor of that name.
var ErrNotFound = errors.New("safetensors: tensor not found")

// The file names of a model folder, as the Hugging Face libraries write them.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// maxIndexSize caps the index file; real ones are a few MB at most.
const maxIndexSize = 100_000_000

// Checkpoint is a model folder opened as one table of tensors. Every file of
// it is opened, mapped and validated by OpenCheckpoint, so a missing or
// malformed shard is reported before any weight is used. A Checkpoint is safe
// for concurrent reads.
type Checkpoint struct {
	dir    string
	files  []*File
	byName map[string]*File
	names  []string // sorted
}

// OpenCheckpoint opens a model folder. It uses, in this order (the order of
// the Hugging Face loaders): a single model.safetensors; an index
// model.safetensors.index.json and the shards it names; or, failing both,
// every *.safetensors file in the folder, which must not share tensor names.
// path may also name a single .safetensors file. With an index, exactly the
// tensors of its weight_map are visible; others stored in a shard are ignored.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open checkpoint: %w", err)
	}
	if !st.IsDir() {
		return openFiles(filepath.Dir(path), []string{path})
	}
	single := filepath.Join(path, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return openFiles(path, []string{single})
	}
	index := filepath.Join(path, IndexFileName)
	if _, err := os.Stat(index); err == nil {
		return openIndexed(path, index)
	}
	all, err := filepath.Glob(filepath.Join(path, "*.safetensors"))
	if err != nil {
		return nil, fmt.Errorf("safetensors: open checkpoint %s: %w", path, err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("safetensors: open checkpoint %s: no %s, %s or *.safetensors file: %w",
			path, SingleFileName, IndexFileName, fs.ErrNotExist)
	}
	return openFiles(path, all) // Glob sorts
}

// CheckpointFromBytes is the checkpoint of one safetensors file held in
// memory (FromBytes: its tensors are views into data); name stands for its
// folder in Dir and in error messages.
func CheckpointFromBytes(name string, data []byte) (*Checkpoint, error) {
	f, err := FromBytes(name, data)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{dir: name, files: []*File{f}, byName: make(map[string]*File, len(f.tensors))}
	for _, t := range f.tensors {
		c.byName[t.Name] = f
	}
	c.finish()
	return c, nil
}

// openFiles opens every file of paths as one checkpoint; a tensor name in two
// files is an error.
func openFiles(dir string, paths []string) (*Checkpoint, error) {
	c := &Checkpoint{dir: dir, byName: map[string]*File{}}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		for _, t := range f.tensors {
			if other, dup := c.byName[t.Name]; dup {
				c.Close()
				return nil, formatErr(p, t.Name, "also in %s; without an index every tensor must be in one file only", other.path)
			}
			c.byName[t.Name] = f
		}
	}
	c.finish()
	return c, nil
}

// openIndexed opens the checkpoint described by the index file at index.
func openIndexed(dir, index string) (*Checkpoint, error) {
	js, err := readIndex(index)
	if err != nil {
		return nil, err
	}
	weightMap, _, err := parseIndex(index, js)
	if err != nil {
		return nil, err
	}
	byShard := map[string][]string{} // shard → its tensors
	for name, shard := range weightMap {
		byShard[shard] = append(byShard[shard], name)
	}
	shards := make([]string, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
		slices.Sort(byShard[s])
	}
	slices.Sort(shards)

	c := &Checkpoint{dir: dir, byName: make(map[string]*File, len(weightMap))}
	for _, shard := range shards {
		names := byShard[shard]
		path := filepath.Join(dir, shard)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			c.Close()
			return nil, fmt.Errorf("safetensors: %s: shard %q (holding tensor %q and %d more) is missing: %w",
				index, shard, names[0], len(names)-1, err)
		}
		f, err := Open(path)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.files = append(c.files, f)
		for _, name := range names {
			if _, ok := f.index[name]; !ok {
				c.Close()
				return nil, formatErr(index, name, "mapped to shard %q, which does not contain it", shard)
			}
			c.byName[name] = f
		}
	}
	c.finish()
	return c, nil
}

// readIndex reads an index file, refusing absurdly large ones.
func readIndex(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.Size() > maxIndexSize {
		return nil, formatErr(path, "", "index is %d bytes, more than the %d-byte limit", st.Size(), maxIndexSize)
	}
	js, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return js, nil
}

// finish builds the sorted name list once all files are in.
func (c *Checkpoint) finish() {
	c.names = make([]string, 0, len(c.byName))
	for name := range c.byName {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
}

// Dir returns the folder the checkpoint was opened from.
func (c *Checkpoint) Dir() string { return c.dir }

// Names returns the names of all tensors of the checkpoint, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Tensor returns the tensor called name. The error wraps ErrNotFound when the
// checkpoint has no such tensor.
func (c *Checkpoint) Tensor(name string) (Tensor, error) {
	f, ok := c.byName[name]
	if !ok {
		return Tensor{}, fmt.Errorf("%w: %q in checkpoint %s", ErrNotFound, name, c.dir)
	}
	t, _ := f.Tensor(name)
	return t, nil
}

// Close unmaps every file of the checkpoint; all Tensor.Data obtained from it
// become invalid.
func (c *Checkpoint) Close() error {
	var errs []error
	for _, f := range c.files {
		errs = append(errs, f.Close())
	}
	c.files, c.byName, c.names = nil, nil, nil
	return errors.Join(errs...)
}

// parseIndex parses and validates a sharded-checkpoint index:
//
//	{"metadata": {"total_size": N, ...}, "weight_map": {"tensor name": "shard file name", ...}}
//
// weight_map is required, must not be empty and must not repeat a name; every
// shard must be a plain file name in the index's folder. metadata and its
// total_size are optional (totalSize is -1 when absent); other keys are
// ignored. file is used in error messages only.
func parseIndex(file string, js []byte) (weightMap map[string]string, totalSize int64, err error) {
	// Check the syntax of the whole file first, so a truncated download is
	// reported as such rather than as whatever value it was cut in.
	if !json.Valid(js) {
		var v any
		err := json.Unmarshal(js, &v)
		var se *json.SyntaxError
		at := int64(len(js))
		if errors.As(err, &se) {
			at = se.Offset
		}
		return nil, 0, formatErr(file, "", "truncated or invalid JSON in the index (%d bytes; error at byte %d): %v", len(js), at, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	syntaxErr := func(err error) error {
		return formatErr(file, "", "index is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
	}
	if tok, err := dec.Token(); err != nil {
		return nil, 0, syntaxErr(err)
	} else if tok != json.Delim('{') {
		return nil, 0, formatErr(file, "", "index is not a JSON object")
	}
	totalSize = -1
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, syntaxErr(err)
		}
		key := tok.(string)
		if seen[key] {
			return nil, 0, formatErr(file, "", "duplicate key %q in index", key)
		}
		seen[key] = true
		switch key {
		case "weight_map":
			if weightMap, err = parseWeightMap(dec, file); err != nil {
				return nil, 0, err
			}
		case "metadata":
			var meta map[string]any
			if err := dec.Decode(&meta); err != nil {
				return nil, 0, formatErr(file, "", "index metadata is not an object: %v", err)
			}
			if v, ok := meta["total_size"]; ok {
				if totalSize, err = parseTotalSize(v); err != nil {
					return nil, 0, formatErr(file, "", "index metadata: %v", err)
				}
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, 0, syntaxErr(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, 0, syntaxErr(err)
	}
	if len(weightMap) == 0 {
		return nil, 0, formatErr(file, "", "index has no weight_map or an empty one")
	}
	return weightMap, totalSize, nil
}

// parseWeightMap reads the weight_map object, rejecting repeated tensor names,
// non-string values and shard names that are not plain file names.
func parseWeightMap(dec *json.Decoder, file string) (map[string]string, error) {
	if tok, err := dec.Token(); err != nil {
		return nil, formatErr(file, "", "index is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
	} else if tok != json.Delim('{') {
		return nil, formatErr(file, "", "weight_map is not a JSON object")
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, formatErr(file, "", "index is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
		}
		name := tok.(string)
		if _, dup := m[name]; dup {
			return nil, formatErr(file, name, "mapped twice in weight_map")
		}
		var shard string
		if err := dec.Decode(&shard); err != nil {
			return nil, formatErr(file, name, "weight_map value is not a shard file name: %v", err)
		}
		if err := checkShardName(shard); err != nil {
			return nil, formatErr(file, name, "%v", err)
		}
		m[name] = shard
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, formatErr(file, "", "index is not valid JSON (near byte %d): %v", dec.InputOffset(), err)
	}
	return m, nil
}

// checkShardName accepts only a plain file name: no directory part, no "." or
// "..", not absolute, no NUL. Shards always live beside their index.
func checkShardName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") || filepath.IsAbs(s) ||
		filepath.VolumeName(s) != "" || filepath.Base(s) != s {
		return fmt.Errorf("shard %q is not a plain file name in the index's folder", s)
	}
	return nil
}

// parseTotalSize accepts a non-negative integer, also when written as an
// integral float (some writers emit 1.2e10).
func parseTotalSize(v any) (int64, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("total_size %v is not a number", v)
	}
	if n, err := strconv.ParseInt(string(num), 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f >= math.MaxInt64 {
		return 0, fmt.Errorf("total_size %s is not a non-negative integer", num)
	}
	return int64(f), nil
}
