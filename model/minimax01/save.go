package minimax01

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// Saving and loading fp32 slabs laid out by ParamTable: training
// checkpoints (weights in the Hugging Face layout, loadable by Load and by
// the official code) and optimizer state (any slab of the same layout, such
// as AdamW's moments).

// defaultShardBytes is the shard size of written checkpoints, as the
// Hugging Face writer's default of a few GB keeps files manageable.
const defaultShardBytes = 2 << 30

// checkSlab reports a slab whose length is not the table's.
func checkSlab(what string, ps []Param, slab []float32) error {
	if n := SlabSize(ps); len(slab) != n {
		return fmt.Errorf("minimax01: %s: slab holds %d values, the configuration's %d parameters need %d", what, len(slab), len(ps), n)
	}
	return nil
}

// slabSpecs declares every parameter as an F32 tensor, sorted by name.
func slabSpecs(ps []Param) ([]safetensors.TensorSpec, []Param) {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
	specs := make([]safetensors.TensorSpec, len(ps))
	for i, p := range ps {
		specs[i] = safetensors.TensorSpec{Name: p.Name, DType: safetensors.F32, Shape: p.Shape}
	}
	return specs, ps
}

// SaveCheckpoint writes the weights in slab (laid out by ParamTable(c)) as
// a checkpoint folder: config.json as LoadConfig reads it back (without
// quantization_config: the weights are float) and the F32 tensors under
// their official names in model.safetensors, or in shards with an index
// above 2 GiB. The folder is written beside dir under a temporary name and
// renamed into place, so dir is always either its old version or complete;
// an existing dir is replaced.
func SaveCheckpoint(dir string, c *Config, slab []float32) error {
	ps := ParamTable(c)
	if err := checkSlab("save "+dir, ps, slab); err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	tmp, err := tempDirBeside(dir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	specs, sorted := slabSpecs(ps)
	err = writeTensors(tmp, specs, defaultShardBytes, func(i int) []byte {
		p := sorted[i]
		return f32Bytes(slab[p.Offset : p.Offset+p.Size])
	}, nil)
	if err != nil {
		return fmt.Errorf("minimax01: save %s: %w", dir, err)
	}
	if err := writeFileSync(filepath.Join(tmp, "config.json"), c.JSON(quant.F32)); err != nil {
		return fmt.Errorf("minimax01: save %s: %w", dir, err)
	}
	return replaceDir(tmp, dir)
}

// WriteFolder writes files (file name → contents) as the folder dir, the
// way SaveCheckpoint writes: beside dir under a temporary name, then renamed
// into place, so dir is always either its old version or complete; an
// existing dir is replaced, with all its old contents.
func WriteFolder(dir string, files map[string][]byte) error {
	dir = filepath.Clean(dir)
	tmp, err := tempDirBeside(dir)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for name, b := range files {
		if filepath.Base(name) != name || name == "." || name == ".." {
			return fmt.Errorf("minimax01: save %s: %q is not a plain file name", dir, name)
		}
		if err := writeFileSync(filepath.Join(tmp, name), b); err != nil {
			return fmt.Errorf("minimax01: save %s: %w", dir, err)
		}
	}
	return replaceDir(tmp, dir)
}

// tempDirBeside creates the hidden temporary folder in which the folder dir
// is written before replaceDir renames it into place (beside dir, so the
// rename stays on one file system).
func tempDirBeside(dir string) (string, error) {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("minimax01: save %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp*")
	if err != nil {
		return "", fmt.Errorf("minimax01: save %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("minimax01: save %s: %w", dir, err)
	}
	return tmp, nil
}

// writeFileSync writes b to a new file at path and syncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replaceDir renames the finished folder tmp to dir. An existing dir is
// first renamed aside and removed only after tmp is in place.
func replaceDir(tmp, dir string) error {
	var old string
	if _, err := os.Stat(dir); err == nil {
		o, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".old*")
		if err != nil {
			return fmt.Errorf("minimax01: save %s: %w", dir, err)
		}
		if err := os.Remove(o); err != nil {
			return fmt.Errorf("minimax01: save %s: %w", dir, err)
		}
		if err := os.Rename(dir, o); err != nil {
			return fmt.Errorf("minimax01: save %s: move the old version aside: %w", dir, err)
		}
		old = o
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir) // put the old version back
		}
		return fmt.Errorf("minimax01: save %s: %w", dir, err)
	}
	if d, err := os.Open(filepath.Dir(dir)); err == nil {
		d.Sync() // best effort: make the renames durable
		d.Close()
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// LoadF32 reads a float checkpoint folder (F32, BF16 or F16 tensors, any
// layout Load accepts) into a fresh fp32 slab laid out by ParamTable, with
// Weights viewing it (NewF32Weights): the starting point of training.
// Checkpoint tensors the model does not use are ignored, as Load does.
func LoadF32(dir string) (*Config, *Weights, []float32, error) {
	c, err := LoadConfig(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Quant != nil {
		return nil, nil, nil, fmt.Errorf("minimax01: %s is quantized (%s); fp32 weights need a float checkpoint (F32, BF16 or F16)", dir, c.Quant)
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("minimax01: %w", err)
	}
	defer ck.Close()
	src, _, err := loadWeights(c, ck, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	w, slab := NewF32Weights(c)
	for _, p := range ParamTable(c) {
		dst := slab[p.Offset : p.Offset+p.Size]
		m, v := src.Bind(p)
		if v != nil {
			copy(dst, *v)
			continue
		}
		for r := 0; r < m.Rows; r++ {
			tensor.Row(dst[r*m.Cols:(r+1)*m.Cols], *m, r) // widens BF16/F16 exactly
		}
	}
	return c, w, slab, nil
}

// SaveSlab writes slab (laid out by ParamTable(c): weights, gradients or an
// optimizer moment) to one safetensors file at path, each parameter as an
// F32 tensor under its name, atomically.
func SaveSlab(path string, c *Config, slab []float32) error {
	ps := ParamTable(c)
	if err := checkSlab("save "+path, ps, slab); err != nil {
		return err
	}
	specs, sorted := slabSpecs(ps)
	w, err := safetensors.Create(path, specs, map[string]string{"format": "pt"})
	if err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	defer w.Abort()
	for i, p := range sorted {
		if err := w.WriteTensor(specs[i].Name, f32Bytes(slab[p.Offset:p.Offset+p.Size])); err != nil {
			return fmt.Errorf("minimax01: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	return nil
}

// LoadSlab reads a file written by SaveSlab into slab (laid out by
// ParamTable(c)). The file must hold exactly the table's tensors, F32, with
// its shapes; otherwise the error (wrapping ErrWeights) names the first
// tensor that differs, as a file saved for another configuration would, and
// slab is left as it was.
func LoadSlab(path string, c *Config, slab []float32) error {
	ps := ParamTable(c)
	if err := checkSlab("load "+path, ps, slab); err != nil {
		return err
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	defer f.Close()
	want := make(map[string]bool, len(ps))
	for _, p := range ps {
		want[p.Name] = true
		x, ok := f.Tensor(p.Name)
		switch {
		case !ok:
			return fmt.Errorf("%w: %s: tensor %s is missing (the file was saved for another configuration?)", ErrWeights, path, p.Name)
		case x.DType != safetensors.F32:
			return fmt.Errorf("%w: %s: tensor %s is %s, want F32", ErrWeights, path, p.Name, x.DType)
		case !slices.Equal(x.Shape, p.Shape):
			return fmt.Errorf("%w: %s: tensor %s has shape %v, this configuration's is %v (the file was saved for another configuration?)", ErrWeights, path, p.Name, x.Shape, p.Shape)
		}
	}
	for _, n := range f.Names() {
		if !want[n] {
			return fmt.Errorf("%w: %s: tensor %s is not a parameter of this configuration (the file was saved for another configuration?)", ErrWeights, path, n)
		}
	}
	for _, p := range ps { // only now that the whole file fits
		x, _ := f.Tensor(p.Name)
		copy(slab[p.Offset:p.Offset+p.Size], x.F32())
	}
	return nil
}
