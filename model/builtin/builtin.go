// Package builtin is the model embedded in the lightning binary: "mini", the
// small MiniMax-01 model trained by recipes/mini, which every command that
// takes -model uses when -model is absent, without downloading or writing a
// file.
//
// The folder mini/ is an ordinary checkpoint folder: config.json (with the
// quantization_config of 'lightning quantize', if quantized),
// tokenizer.json, tokenizer_config.json (the chat template), any other
// *.json file (generation_config.json) and the weights as one
// model.safetensors. scripts/make-builtin.sh makes it from a trained
// checkpoint. The weights are loaded in place from the binary's read-only
// data (minimax01.LoadBytes): nothing is copied or unpacked.
package builtin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"unsafe"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/tokenizer/chat"
)

// Name is the built-in model's name.
const Name = "mini"

// Label names the built-in model in messages and errors, where a folder
// path would otherwise stand.
const Label = "built-in model " + Name

// WeightsFile is the name of the weights file in the folder.
const WeightsFile = safetensors.SingleFileName

var (
	// jsonFiles are the folder's small files (config, tokenizer, chat
	// template, generation config).
	//
	//go:embed mini/*.json
	jsonFiles embed.FS

	// weights is model.safetensors. A string, so that it lives in the
	// binary's read-only data and is read in place (an embed.FS read would
	// copy it).
	//
	//go:embed mini/model.safetensors
	weights string
)

// File is one file of the built-in checkpoint folder.
type File struct {
	Name string // file name, e.g. "config.json"
	Data []byte // read-only for the weights: writing to it faults
}

// Weights returns model.safetensors as a read-only view of the binary's
// data, not a copy.
func Weights() []byte {
	return unsafe.Slice(unsafe.StringData(weights), len(weights))
}

// Files returns every file of the folder, the small ones sorted by name,
// then the weights.
func Files() []File {
	names, err := fs.Glob(jsonFiles, "mini/*.json")
	if err != nil {
		panic(err) // the pattern is a constant
	}
	var out []File
	for _, n := range names {
		out = append(out, File{Name: path.Base(n), Data: readJSON(path.Base(n))})
	}
	return append(out, File{Name: WeightsFile, Data: Weights()})
}

// readJSON returns one of the small files (nil when the folder has none of
// that name).
func readJSON(name string) []byte {
	b, err := jsonFiles.ReadFile("mini/" + name)
	if err != nil {
		return nil
	}
	return b
}

// Size is the total size of the folder's files in bytes.
func Size() int64 {
	var n int64
	for _, f := range Files() {
		n += int64(len(f.Data))
	}
	return n
}

// WeightsSHA256 is the hex SHA-256 of model.safetensors (computed once).
var WeightsSHA256 = sync.OnceValue(func() string {
	sum := sha256.Sum256(Weights())
	return hex.EncodeToString(sum[:])
})

// Describe is the one-line description commands print: name, size and the
// weights' SHA-256.
func Describe() string {
	return fmt.Sprintf("%s, embedded, %.1f MB, sha256 %s", Label, float64(Size())/1e6, WeightsSHA256())
}

// Config parses the built-in config.json.
func Config() (*minimax01.Config, error) {
	c, err := minimax01.ParseConfig(readJSON("config.json"))
	if err != nil {
		return nil, fmt.Errorf("%s: config.json: %w", Label, err)
	}
	return c, nil
}

// Checkpoint opens the built-in weights as a checkpoint (views into the
// binary's data).
func Checkpoint() (*safetensors.Checkpoint, error) {
	return safetensors.CheckpointFromBytes(Label, Weights())
}

// Load loads the built-in model in place, as minimax01.Load loads a folder.
func Load(opt minimax01.Options) (*minimax01.Model, error) {
	return minimax01.LoadBytes(Label, readJSON("config.json"), Weights(), opt)
}

// Tokenizer builds the built-in tokenizer.
func Tokenizer() (*tokenizer.Tokenizer, error) {
	t, err := tokenizer.FromFiles(readJSON("tokenizer.json"), readJSON("tokenizer_config.json"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Label, err)
	}
	return t, nil
}

// ChatConfig reads the built-in chat templates (tokenizer_config.json).
func ChatConfig() (*chat.Config, error) {
	c, err := chat.ParseConfig(readJSON("tokenizer_config.json"))
	if err != nil {
		return nil, fmt.Errorf("%s: tokenizer_config.json: %w", Label, err)
	}
	return c, nil
}
