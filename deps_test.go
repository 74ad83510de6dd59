package lightning_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// allowed is the import DAG of Lightning as policy (style.md §3, Go's
// go/build/deps_test.go): each project package may import only the project
// packages and third-party modules listed for it, plus the standard library.
// Do not edit this table to make a build pass; changing it is a design
// decision and is reviewed as one.
var allowed = map[string][]string{
	"internal/cpu":            {"golang.org/x/sys/cpu"},
	"internal/trace":          {},
	"internal/numtest":        {"internal/cpu"},
	"internal/testpki":        {}, // throw-away CAs and certificates for the mutual-TLS tests of dist and cmd/lightning
	"kernels":                 {"internal/cpu"},
	"quant":                   {"kernels"},
	"tensor":                  {"quant", "kernels"},
	"format/internal/filemap": {"golang.org/x/sys/unix"}, // what both file formats share: mapping, pre-faulting, atomic commit
	"format/safetensors":      {"format/internal/filemap"},
	"format/gguf":             {"format/internal/filemap"},
	"internal/hub":            {}, // Hugging Face Hub client (lightning pull): standard library only
	"tokenizer":               {"github.com/dlclark/regexp2/v2", "golang.org/x/text/unicode/norm"},
	"tokenizer/jinja":         {},
	"tokenizer/chat":          {"tokenizer/jinja"},
	"attention":               {"tensor", "kernels", "internal/trace"},
	"moe":                     {"tensor", "kernels", "internal/trace"},
	"sample":                  {"kernels"},
	"model":                   {"tensor"},
	"model/minimax01":         {"model", "attention", "moe", "tensor", "quant", "kernels", "format/safetensors", "format/gguf", "internal/trace"},
	"model/builtin":           {"model/minimax01", "format/safetensors", "tokenizer", "tokenizer/chat"}, // the model embedded in the binary (go:embed), loaded in place from its bytes
	"engine":                  {"model", "sample"},
	"server":                  {"engine", "model", "sample", "tokenizer", "tokenizer/chat", "tokenizer/jinja"},
	"train":                   {"model/minimax01", "attention", "moe", "tensor", "kernels"},
	"train/data":              {"tokenizer"},
	// dist: serving across processes (docs/distributed.md). gRPC is its data
	// plane (streams, TLS, deadlines); its messages use a raw codec, not
	// protobuf, so hidden states cross as raw fp32 bytes (or bf16, rounded
	// by kernels.RoundBF16, with -wire bf16).
	"dist": {"model", "model/minimax01", "quant", "kernels", "google.golang.org/grpc", "google.golang.org/grpc/backoff", "google.golang.org/grpc/codes",
		"google.golang.org/grpc/credentials", "google.golang.org/grpc/credentials/insecure", "google.golang.org/grpc/encoding",
		"google.golang.org/grpc/metadata", "google.golang.org/grpc/stats", "google.golang.org/grpc/status"},
	"cmd/lightning":  {"*"},
	"cmd/loadtest":   {},                  // an HTTP client of the server: standard library only
	"scripts/corpus": {"evalset/passkey"}, // the corpus builder (issue 13): standard library and the passkey task's text
	// evalset/passkey: the passkey retrieval task (needle in a haystack), one
	// definition for the corpus's training documents and 'lightning needle'.
	"evalset/passkey": {},
}

const module = "github.com/lightninglm/lightning"

type goPackage struct {
	ImportPath string
	Imports    []string
	SFiles     []string
	CgoFiles   []string
}

func listPackages(t *testing.T, args ...string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var pkgs []goPackage
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p goPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestImportRules(t *testing.T) {
	for _, tags := range []string{"", "purego"} {
		args := []string{"./..."}
		if tags != "" {
			args = []string{"-tags", tags, "./..."}
		}
		for _, p := range listPackages(t, args...) {
			rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
			if rel == "" {
				continue // this test's own package
			}
			allow, ok := allowed[rel]
			if !ok {
				t.Errorf("package %s is not in the import table of deps_test.go; add it with the imports it may use", rel)
				continue
			}
			if len(p.SFiles) > 0 && rel != "kernels" {
				t.Errorf("package %s has assembly %v; only kernels may", rel, p.SFiles)
			}
			if len(p.CgoFiles) > 0 {
				t.Errorf("package %s uses cgo (%v); the default build must not", rel, p.CgoFiles)
			}
			if len(allow) == 1 && allow[0] == "*" {
				continue
			}
			set := map[string]bool{}
			for _, a := range allow {
				set[a] = true
			}
			for _, imp := range p.Imports {
				if isStd(imp) {
					if imp == "simd/archsimd" && rel != "kernels" {
						t.Errorf("%s imports simd/archsimd; only kernels may", rel)
					}
					continue
				}
				name := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
				if !set[name] {
					t.Errorf("%s (tags %q) imports %s, which the table in deps_test.go does not allow", rel, tags, name)
				}
			}
		}
	}
}

// testOnly are the helper packages that only _test.go files may import.
var testOnly = []string{"internal/numtest", "internal/testpki"}

// TestHelpersOnlyInTests checks that the test helper packages are never
// linked into a binary: only _test.go files may import them.
func TestHelpersOnlyInTests(t *testing.T) {
	var bad []string
	for _, p := range listPackages(t, "./...") {
		for _, imp := range p.Imports {
			for _, h := range testOnly {
				if imp == module+"/"+h {
					bad = append(bad, p.ImportPath+" imports "+h)
				}
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("test helpers imported by non-test code: %v", bad)
	}
}
