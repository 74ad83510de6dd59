package minimax01

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// Quantized weights (issue 7). A QuantSpec says which matrices are
// quantized and to what; it is recorded in config.json as
//
//	"quantization_config": {
//	  "quant_method": "lightning",
//	  "format":       "q4g64",   // attention projections and expert matrices
//	  "lm_head":      "q8",      // or "none": kept in the source dtype
//	  "embed_tokens": "none",    // or a format
//	  "scale_dtype":  "F16"      // or "BF16": scales of the block formats (q8's are F32)
//	}
//
// and the quantized tensors follow quant's naming (NAME, NAME_scale,
// NAME_min). The router gate and the norm weights are never quantized, and
// every product accumulates in float32 (spec §3.4). With tied embeddings the
// one matrix follows lm_head's setting (or embed_tokens' when lm_head is
// "none"). Quantizing at load (Options.Quant) and loading a checkpoint
// written by QuantizeCheckpoint with the same spec give identical weights.

// QuantSpec selects the quantized formats of a model's weights.
type QuantSpec struct {
	Format    quant.Type // attention and expert matrices
	LMHead    quant.Type // lm_head.weight; quant.Invalid keeps the source dtype
	Embed     quant.Type // model.embed_tokens.weight; quant.Invalid keeps it
	ScaleType quant.Type // F16 or BF16: scales (and mins) of the block formats
}

// DefaultQuantSpec is what `lightning quantize -format NAME` and `-quant
// NAME` use: the attention and expert matrices in format t, the LM head in
// int8 per channel (the head is a small share of a MoE model's active bytes
// but drives the logits directly), the embeddings as stored, F16 scales.
func DefaultQuantSpec(t quant.Type) QuantSpec {
	return QuantSpec{Format: t, LMHead: quant.Q8, Embed: quant.Invalid, ScaleType: quant.F16}
}

// Validate checks that every format is quantized and the scale type usable.
func (s QuantSpec) Validate() error {
	if !s.Format.Quantized() {
		return fmt.Errorf("minimax01: quantization format %s is not a quantized format (have %v)", s.Format, quant.QuantizedNames())
	}
	for _, t := range []quant.Type{s.LMHead, s.Embed} {
		if t != quant.Invalid && !t.Quantized() {
			return fmt.Errorf("minimax01: quantization format %s is not a quantized format (have %v)", t, quant.QuantizedNames())
		}
	}
	if s.ScaleType != quant.F16 && s.ScaleType != quant.BF16 {
		return fmt.Errorf("minimax01: quantization scale dtype %s: want F16 or BF16", s.ScaleType)
	}
	return nil
}

// String renders the spec as `lightning quantize` flags would.
func (s QuantSpec) String() string {
	return fmt.Sprintf("format=%s lm_head=%s embed_tokens=%s scale_dtype=%s", s.Format, typeName(s.LMHead), typeName(s.Embed), s.ScaleType)
}

func typeName(t quant.Type) string {
	if t == quant.Invalid {
		return "none"
	}
	return t.String()
}

// scaleTypeFor returns the scale type of format t under s: F32 for the
// per-row q8, else s.ScaleType.
func (s QuantSpec) scaleTypeFor(t quant.Type) quant.Type {
	if t.Info().PerRow {
		return quant.F32
	}
	return s.ScaleType
}

// Names of the head and embedding matrices.
const (
	lmHeadName = "lm_head.weight"
	embedName  = "model.embed_tokens.weight"
)

// typeFor returns the quantized format of a parameter of role r with cols
// inputs under s, or quant.Invalid when it stays as stored: QuantSpec.Format
// for the attention projections and expert matrices, the head and
// embedding settings for those, nothing for the router gate and the norms.
// A format whose rows cannot hold cols elements (int4 needs a multiple of
// 64 and of the group, q8b32 of 32) falls back to q8b32, then to q8, which
// takes any width (llama.cpp's fallback types); the rule depends on the
// shape only, so the writer and the loader agree.
func (s QuantSpec) typeFor(r Role, tied bool, cols int) quant.Type {
	var t quant.Type
	switch {
	case r.Linear():
		t = s.Format
	case r == RoleLMHead:
		t = s.LMHead
	case r == RoleEmbed && tied && s.LMHead != quant.Invalid:
		t = s.LMHead
	case r == RoleEmbed:
		t = s.Embed
	}
	if t == quant.Invalid {
		return t
	}
	for _, f := range []quant.Type{t, quant.Q8B32, quant.Q8} {
		if _, err := f.RowBytes(cols); err == nil {
			return f
		}
	}
	return quant.Q8
}

// fileQuant applies a QuantSpec to checkpoint tensors found by name:
// their roles come from the parameter table, and tensors outside it stay
// as stored.
type fileQuant struct {
	QuantSpec
	roles map[string]Role
	tied  bool
}

func newFileQuant(c *Config, spec QuantSpec) fileQuant {
	ps := ParamTable(c)
	roles := make(map[string]Role, len(ps))
	for _, p := range ps {
		roles[p.Name] = p.Role
	}
	return fileQuant{QuantSpec: spec, roles: roles, tied: c.TieEmbeddings}
}

// typeOf returns the format of tensor name with cols inputs (typeFor).
func (f fileQuant) typeOf(name string, cols int) quant.Type {
	r, ok := f.roles[name]
	if !ok {
		return quant.Invalid
	}
	return f.typeFor(r, f.tied, cols)
}

// wantedOf returns the format asked for tensor name before any fallback.
func (f fileQuant) wantedOf(name string) quant.Type {
	r, ok := f.roles[name]
	if !ok {
		return quant.Invalid
	}
	return f.wanted(r, f.tied)
}

// fallbacks collects the matrices typeFor moved to another format, for
// one warning per (from, to, cols).
type fallbacks map[string]int

func (f fallbacks) note(want, got quant.Type, cols int) {
	if want != got {
		f[fmt.Sprintf("%s instead of %s (%d inputs)", got, want, cols)]++
	}
}

func (f fallbacks) messages() []string {
	var out []string
	for k, n := range f {
		out = append(out, fmt.Sprintf("%d matrices use %s: their width does not fit the format", n, k))
	}
	slices.Sort(out)
	return out
}

// wanted returns the format s asks for role r before any fallback.
func (s QuantSpec) wanted(r Role, tied bool) quant.Type {
	return s.typeFor(r, tied, 1<<20) // a width every format takes
}

// quantJSON is the quantization_config object of config.json.
type quantJSON struct {
	QuantMethod string `json:"quant_method"`
	Format      string `json:"format"`
	LMHead      string `json:"lm_head"`
	Embed       string `json:"embed_tokens"`
	ScaleDType  string `json:"scale_dtype"`
}

// parseQuantConfig reads config.json's quantization_config as decoded into
// an any (nil: absent or null, not quantized). Every field is required;
// unknown fields and other quantization methods are errors.
func parseQuantConfig(v any) (*QuantSpec, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, bad("quantization_config", "%v", err)
	}
	var q quantJSON
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return nil, bad("quantization_config", "%v (this build reads quant_method \"lightning\" from `lightning quantize`)", err)
	}
	if q.QuantMethod != "lightning" {
		return nil, bad("quantization_config", "quant_method %q is not supported; this build reads \"lightning\" (written by `lightning quantize`)", q.QuantMethod)
	}
	format := func(field, v string, none bool) (quant.Type, error) {
		if none && v == "none" {
			return quant.Invalid, nil
		}
		t, ok := quant.ByName(v)
		if !ok || !t.Quantized() {
			return quant.Invalid, bad("quantization_config."+field, "%q is not a quantized format (have %v)", v, quant.QuantizedNames())
		}
		return t, nil
	}
	var s QuantSpec
	if s.Format, err = format("format", q.Format, false); err != nil {
		return nil, err
	}
	if s.LMHead, err = format("lm_head", q.LMHead, true); err != nil {
		return nil, err
	}
	if s.Embed, err = format("embed_tokens", q.Embed, true); err != nil {
		return nil, err
	}
	switch q.ScaleDType {
	case "F16":
		s.ScaleType = quant.F16
	case "BF16":
		s.ScaleType = quant.BF16
	default:
		return nil, bad("quantization_config.scale_dtype", "%q: want \"F16\" or \"BF16\"", q.ScaleDType)
	}
	return &s, nil
}

// configJSON returns the quantization_config object for s.
func (s QuantSpec) configJSON() quantJSON {
	return quantJSON{QuantMethod: "lightning", Format: s.Format.String(), LMHead: typeName(s.LMHead),
		Embed: typeName(s.Embed), ScaleDType: s.ScaleType.String()}
}

// quantTensorSpecs returns the tensors that hold matrix name [rows, cols]
// in format t with scale type st: quants, scales and, with mins, mins.
func quantTensorSpecs(name string, rows, cols int, t quant.Type, st quant.Type) []safetensors.TensorSpec {
	f := t.Info()
	q := safetensors.TensorSpec{Name: name, DType: safetensors.I8, Shape: []int{rows, cols}}
	if f.Bits == 4 {
		q = safetensors.TensorSpec{Name: name, DType: safetensors.U8, Shape: []int{rows, cols / 2}}
	}
	sc := safetensors.TensorSpec{Name: name + "_scale", DType: safetensors.DType(st.String()), Shape: []int{rows, t.ScalesPerRow(cols)}}
	if f.PerRow {
		sc.Shape = []int{rows}
	}
	specs := []safetensors.TensorSpec{q, sc}
	if f.Mins {
		specs = append(specs, safetensors.TensorSpec{Name: name + "_min", DType: sc.DType, Shape: sc.Shape})
	}
	return specs
}

// qmat loads the quantized matrix name [rows, cols] of format t, checking
// each part's dtype and shape against the spec, so a corrupted or
// mislabelled checkpoint fails here with the part that is wrong.
func (l *loader) qmat(name string, rows, cols int, t quant.Type) (tensor.Mat, error) {
	st := l.quant.scaleTypeFor(t)
	if _, err := t.RowBytes(cols); err != nil {
		return tensor.Mat{}, fmt.Errorf("%w: %s: %v", ErrWeights, name, err)
	}
	var data [3][]byte
	for i, want := range quantTensorSpecs(name, rows, cols, t, st) {
		tt, err := l.ck.Tensor(want.Name)
		if err != nil {
			return tensor.Mat{}, fmt.Errorf("%w: %w (the checkpoint's quantization_config says %s is %s)", ErrWeights, err, name, t)
		}
		l.used[want.Name] = true
		if tt.DType != want.DType || !sameShape(tt.Shape, want.Shape) {
			return tensor.Mat{}, fmt.Errorf("%w: %s (in %s): %s %v, want %s %v for %s [%d, %d] (quantization_config)",
				ErrWeights, want.Name, tt.File, tt.DType, tt.Shape, want.DType, want.Shape, t, rows, cols)
		}
		data[i] = tt.Data
	}
	m, err := tensor.NewQMat(rows, cols, t, data[0], data[1], data[2], st)
	if err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrWeights, name, err)
	}
	return m, nil
}

// quantizeWeights replaces the matrices of w that spec quantizes by
// quantized copies (on-the-fly quantization at load) and returns warnings
// about format fallbacks. The checkpoint must not be quantized already.
func quantizeWeights(c *Config, w *Weights, spec QuantSpec) ([]string, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	fb := fallbacks{}
	for _, p := range ParamTable(c) {
		m, _ := w.Bind(p)
		if m == nil {
			continue
		}
		t := spec.typeFor(p.Role, c.TieEmbeddings, m.Cols)
		if t == quant.Invalid || m.Rows == 0 {
			continue
		}
		fb.note(spec.wanted(p.Role, c.TieEmbeddings), t, m.Cols)
		if m.Type.Quantized() {
			return nil, fmt.Errorf("minimax01: %s is already %s; -quant applies to float checkpoints", p.Name, m.Type)
		}
		qm, err := tensor.Quantize(*m, t, spec.scaleTypeFor(t))
		if err != nil {
			return nil, fmt.Errorf("minimax01: quantize %s to %s: %w", p.Name, t, err)
		}
		*m = qm
	}
	if c.TieEmbeddings {
		w.LMHead = w.Embed
	}
	return fb.messages(), nil
}

// QuantizeOptions controls QuantizeCheckpoint.
type QuantizeOptions struct {
	Spec     QuantSpec
	Progress func(done, total int64) // source bytes processed so far; may be nil
	Warn     func(msg string)        // format fallbacks; may be nil
}

// QuantizeCheckpoint writes a quantized copy of the float checkpoint folder
// src into the folder dst: one output file per source file (same names,
// and an index when the source has one), config.json with
// quantization_config, and every other file of src (tokenizer files,
// generation config) copied. It streams one tensor at a time, so memory
// holds at most one quantized tensor, never the model.
func QuantizeCheckpoint(src, dst string, opt QuantizeOptions) error {
	spec := opt.Spec
	if err := spec.Validate(); err != nil {
		return err
	}
	if a, b := filepath.Clean(src), filepath.Clean(dst); a == b {
		return fmt.Errorf("minimax01: quantize: output folder %s is the source folder", dst)
	}
	cfg, err := LoadConfig(src)
	if err != nil {
		return err
	}
	if cfg.Quant != nil {
		return fmt.Errorf("minimax01: quantize: %s is already quantized (%s)", src, cfg.Quant)
	}
	ck, err := safetensors.OpenCheckpoint(src)
	if err != nil {
		return fmt.Errorf("minimax01: quantize: %w", err)
	}
	defer ck.Close()
	byFile := map[string][]safetensors.Tensor{}
	var files []string
	var total int64
	for _, n := range ck.Names() {
		t, err := ck.Tensor(n)
		if err != nil {
			return err
		}
		if strings.HasPrefix(n, "model.layers.") && strings.Contains(n, ".mlp.experts.") {
			return fmt.Errorf("minimax01: quantize: %s: the fused Hugging Face expert layout is not supported by quantize; load it with -quant instead", n)
		}
		if _, ok := byFile[t.File]; !ok {
			files = append(files, t.File)
		}
		byFile[t.File] = append(byFile[t.File], t)
		total += int64(len(t.Data))
	}
	slices.Sort(files)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("minimax01: quantize: %w", err)
	}
	weightMap := map[string]string{}
	fb := fallbacks{}
	fq := newFileQuant(cfg, spec)
	var done, outTotal int64
	for _, file := range files {
		base := filepath.Base(file)
		n, err := quantizeFile(filepath.Join(dst, base), byFile[file], fq, fb, func(d int64) {
			done += d
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		})
		if err != nil {
			return err
		}
		outTotal += n
		for _, t := range byFile[file] {
			for _, s := range outSpecs(t, fq) {
				weightMap[s.Name] = base
			}
		}
	}
	if _, err := os.Stat(filepath.Join(src, safetensors.IndexFileName)); err == nil {
		if err := safetensors.WriteIndex(dst, weightMap, outTotal); err != nil {
			return err
		}
	}
	if err := copyExtraFiles(src, dst); err != nil {
		return err
	}
	if opt.Warn != nil {
		for _, m := range fb.messages() {
			opt.Warn(m)
		}
	}
	return writeQuantConfig(src, dst, spec)
}

// outSpecs returns the output tensors for source tensor t.
func outSpecs(t safetensors.Tensor, fq fileQuant) []safetensors.TensorSpec {
	if len(t.Shape) != 2 {
		return []safetensors.TensorSpec{{Name: t.Name, DType: t.DType, Shape: t.Shape}}
	}
	q := fq.typeOf(t.Name, t.Shape[1])
	if q == quant.Invalid {
		return []safetensors.TensorSpec{{Name: t.Name, DType: t.DType, Shape: t.Shape}}
	}
	return quantTensorSpecs(t.Name, t.Shape[0], t.Shape[1], q, fq.scaleTypeFor(q))
}

// quantizeFile writes the tensors of one source file to path, quantizing
// the ones spec selects, and returns the bytes of tensor data written.
// step reports the source bytes of each finished tensor.
func quantizeFile(path string, ts []safetensors.Tensor, fq fileQuant, fb fallbacks, step func(int64)) (int64, error) {
	var specs []safetensors.TensorSpec
	for _, t := range ts {
		if fq.wantedOf(t.Name) != quant.Invalid && len(t.Shape) != 2 {
			return 0, fmt.Errorf("minimax01: quantize: %s (in %s): shape %v is not a matrix", t.Name, t.File, t.Shape)
		}
		specs = append(specs, outSpecs(t, fq)...)
	}
	w, err := safetensors.Create(path, specs, map[string]string{"format": "pt"})
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	var n int64
	write := func(name string, b []byte) error {
		n += int64(len(b))
		return w.WriteTensor(name, b)
	}
	for _, t := range ts {
		q := quant.Invalid
		if len(t.Shape) == 2 {
			q = fq.typeOf(t.Name, t.Shape[1])
			fb.note(fq.wantedOf(t.Name), q, t.Shape[1])
		}
		if q == quant.Invalid {
			if err := write(t.Name, t.Data); err != nil {
				return 0, err
			}
			step(int64(len(t.Data)))
			continue
		}
		typ, err := dtypeOf(t)
		if err != nil {
			return 0, err
		}
		m, err := tensor.NewMat(t.Shape[0], t.Shape[1], typ, t.Data)
		if err != nil {
			return 0, fmt.Errorf("minimax01: quantize: %s: %w", t.Name, err)
		}
		qm, err := tensor.Quantize(m, q, fq.scaleTypeFor(q))
		if err != nil {
			return 0, fmt.Errorf("minimax01: quantize: %s: %w", t.Name, err)
		}
		parts := [][]byte{qm.Data, qm.Scales, qm.Mins}
		for i, s := range quantTensorSpecs(t.Name, m.Rows, m.Cols, q, qm.ScaleType) {
			if err := write(s.Name, parts[i]); err != nil {
				return 0, err
			}
		}
		step(int64(len(t.Data)))
	}
	return n, w.Close()
}

// copyExtraFiles copies every regular file of src other than the weights,
// their index and config.json (tokenizer and generation files) to dst.
func copyExtraFiles(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("minimax01: quantize: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(n, ".safetensors") || n == safetensors.IndexFileName || n == "config.json" {
			continue
		}
		if err := copyFile(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return fmt.Errorf("minimax01: quantize: copy %s: %w", n, err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeQuantConfig writes src's config.json to dst with quantization_config
// set; every other field is kept as it was.
func writeQuantConfig(src, dst string, spec QuantSpec) error {
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		return fmt.Errorf("minimax01: quantize: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("minimax01: quantize: %s/config.json: %w", src, err)
	}
	m["quantization_config"] = spec.configJSON()
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, "config.json"), append(out, '\n'), 0o644)
}
