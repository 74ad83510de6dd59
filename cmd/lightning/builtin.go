package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
)

// The built-in model (package model/builtin) is what every command that
// takes -model uses when -model is absent: a model path of "" stands for it
// in the helpers below, which are the only places that tell the two apart.

// modelFlagHelp is the help of the -model flag of the commands that
// default to the built-in model.
const modelFlagHelp = "model folder (config.json, safetensors, tokenizer files), a .gguf file, or ORG/REPO pulled (default: the " + builtin.Label + ", embedded in this binary)"

// modelLabel names the model at path in messages.
func modelLabel(path string) string {
	if path == "" {
		return builtin.Label
	}
	return path
}

// loadModelAt loads the model at path (a folder or .gguf file, or the
// built-in model for "").
func loadModelAt(path string, opt minimax01.Options) (*minimax01.Model, error) {
	if path == "" {
		return builtin.Load(opt)
	}
	return minimax01.Load(path, opt)
}

// loadConfig reads the config.json of the model folder at path (the
// built-in model's for "").
func loadConfig(path string) (*minimax01.Config, error) {
	if path == "" {
		return builtin.Config()
	}
	return minimax01.LoadConfig(path)
}

// openCheckpoint opens the safetensors weights of the model folder at path
// (the built-in model's for "").
func openCheckpoint(path string) (*safetensors.Checkpoint, error) {
	if path == "" {
		return builtin.Checkpoint()
	}
	return safetensors.OpenCheckpoint(path)
}

// announceBuiltin prints the startup line of a command that runs the
// built-in model.
func announceBuiltin(w io.Writer) {
	fmt.Fprintf(w, "model: %s (embedded, %.1f MB; give -model to use another)\n", builtin.Label, float64(builtin.Size())/1e6)
}

func init() {
	register(&command{
		name:    "export-default",
		summary: "write the built-in model out as an ordinary checkpoint folder",
		usage:   "-o DIR [-force]",
		help: `Writes the files of the built-in model (` + builtin.Name + `, embedded in this binary and used by every command
when -model is absent) into DIR as a normal checkpoint folder: config.json, ` + builtin.WeightsFile + `, tokenizer.json,
tokenizer_config.json (with the chat template) and any generation config. '-model DIR' then loads exactly
the built-in model, e.g. to fine-tune it, convert it to GGUF or serve it from elsewhere.

The folder is written under a temporary name beside DIR and renamed into place, so DIR is either complete or
untouched. An existing non-empty DIR is refused unless -force, which replaces it and everything in it.

Example:
  lightning export-default -o /tmp/mini
  lightning run -model /tmp/mini "Once upon a time"`,
		run: runExportDefault,
	})
}

func runExportDefault(fs *flag.FlagSet, args []string) error {
	out := fs.String("o", "", "output folder (created; must be absent or empty unless -force)")
	force := fs.Bool("force", false, "replace an existing non-empty output folder and everything in it")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: -o DIR is required", errUsage)
	}
	dir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	switch st, err := os.Stat(dir); {
	case err == nil && !st.IsDir():
		return fmt.Errorf("%w: -o %s exists and is not a folder", errUsage, *out)
	case err == nil:
		if ents, err := os.ReadDir(dir); err != nil {
			return err
		} else if len(ents) > 0 && !*force {
			return fmt.Errorf("%w: -o %s exists and is not empty (add -force to replace it and everything in it)", errUsage, *out)
		}
		if wd, err := os.Getwd(); err == nil && (wd == dir || strings.HasPrefix(wd, dir+string(filepath.Separator))) {
			return fmt.Errorf("%w: -o %s holds the current folder; it cannot be replaced", errUsage, *out)
		}
	case !os.IsNotExist(err):
		return err
	}
	files := map[string][]byte{}
	for _, f := range builtin.Files() {
		files[f.Name] = f.Data
	}
	if err := minimax01.WriteFolder(dir, files); err != nil {
		return err
	}
	fmt.Fprintf(fs.Output(), "wrote %s: %s\n", *out, builtin.Describe())
	return nil
}
