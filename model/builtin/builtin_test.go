package builtin

import (
	"bytes"
	"slices"
	"testing"
	"unsafe"

	"github.com/lightninglm/lightning/model/minimax01"
)

// TestFolder checks the embedded folder: the files a checkpoint folder
// needs, under the 40 MB budget, and the shape recipes/mini trains.
func TestFolder(t *testing.T) {
	var names []string
	for _, f := range Files() {
		names = append(names, f.Name)
		if len(f.Data) == 0 {
			t.Errorf("%s is empty", f.Name)
		}
	}
	for _, want := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", WeightsFile} {
		if !slices.Contains(names, want) {
			t.Errorf("the folder has %v, no %s", names, want)
		}
	}
	if n := Size(); n >= 40e6 {
		t.Errorf("the built-in model is %d bytes; the budget is 40 MB", n)
	}
	c, err := Config()
	if err != nil {
		t.Fatal(err)
	}
	recipe, err := minimax01.LoadConfig("../../recipes/mini/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.Dim != recipe.Dim || c.Layers != recipe.Layers || c.Vocab != recipe.Vocab || c.Experts != recipe.Experts ||
		c.FFN != recipe.FFN || c.Heads != recipe.Heads || c.KVHeads != recipe.KVHeads || !slices.Equal(c.LayerKinds, recipe.LayerKinds) {
		t.Errorf("built-in config %+v differs in shape from recipes/mini/config.json %+v", *c, *recipe)
	}
	d := Describe()
	if !bytes.Contains([]byte(d), []byte(WeightsSHA256())) || len(WeightsSHA256()) != 64 {
		t.Errorf("Describe() = %q: no 64-digit sha256", d)
	}
}

// TestLoadInPlace loads the model and checks that every weight matrix is a
// view into the binary's data (nothing copied, which also shows the
// embedded bytes are aligned enough for every dtype), and that the
// tokenizer and chat template fit it.
func TestLoadInPlace(t *testing.T) {
	m, err := Load(minimax01.Options{MaxBatchTokens: 16, LazyWeights: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	w := Weights()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(w)))
	hi := lo + uintptr(len(w))
	inside := func(b []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		return p >= lo && p+uintptr(len(b)) <= hi
	}
	n := 0
	for _, p := range minimax01.ParamTable(m.Config) {
		mat, _ := m.Weights.Bind(p)
		if mat == nil || mat.Rows == 0 {
			continue
		}
		n++
		if !inside(mat.Data) || (mat.Scales != nil && !inside(mat.Scales)) {
			t.Errorf("%s (%s): copied at load, not a view into the embedded weights", p.Name, mat.Type)
		}
	}
	if n == 0 {
		t.Fatal("no weight matrices")
	}
	tok, err := Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() > m.Config.Vocab {
		t.Errorf("tokenizer has %d ids, the model %d", tok.VocabSize(), m.Config.Vocab)
	}
	if _, ok := tok.EOS(); !ok {
		t.Error("the tokenizer names no EOS token")
	}
	cc, err := ChatConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cc.Templates["default"]; !ok {
		t.Errorf("no default chat template (have %v)", cc.Names())
	}
}
