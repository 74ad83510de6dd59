package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPullThenModelRepo pulls a one-file GGUF repository from a local
// stand-in of the Hub and runs it as -model ORG/REPO from the cache.
func TestPullThenModelRepo(t *testing.T) {
	dir := qwenModel(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "tiny-f16.gguf")
	if _, stderr, code := runCLI(t, "convert", "-model", dir, "-to", "gguf", "-type", "f16", "-o", file); code != 0 {
		t.Fatalf("convert: %s", stderr)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	const repo, commit = "test-org/Tiny-GGUF", "0123456789abcdef0123456789abcdef01234567"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/models/" + repo + "/revision/main":
			json.NewEncoder(w).Encode(map[string]any{"sha": commit, "siblings": []map[string]any{
				{"rfilename": "tiny-f16.gguf", "size": len(data)}, {"rfilename": "README.md", "size": 5}}})
		case "/" + repo + "/resolve/" + commit + "/tiny-f16.gguf":
			w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
			if r.Method == http.MethodGet {
				w.Write(data)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HOME", filepath.Join(tmp, "hf"))
	t.Setenv("HF_HUB_CACHE", "")
	out, stderr, code := runCLI(t, "pull", repo, "-include", "*.gguf")
	if code != 0 || !strings.Contains(out, filepath.Join("hf", "hub", "models--test-org--Tiny-GGUF", "snapshots", commit)) {
		t.Fatalf("pull: exit %d, %q %s", code, out, stderr)
	}
	want, _, _ := runCLI(t, "run", "-model", file, "-temperature", "0", "-n", "6", "Hello there")
	got, stderr, code := runCLI(t, "run", "-model", repo, "-temperature", "0", "-n", "6", "Hello there")
	if code != 0 || got != want {
		t.Errorf("run -model %s: exit %d, %q, want %q (%s)", repo, code, got, want, stderr)
	}
	if _, stderr, code := runCLI(t, "run", "-model", "test-org/Absent", "x"); code == 0 || !strings.Contains(stderr, "lightning pull test-org/Absent") {
		t.Errorf("uncached repo: exit %d %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, "pull", "test-org/Absent"); code == 0 || !strings.Contains(stderr, "404") {
		t.Errorf("pull of a missing repo: exit %d %q", code, stderr)
	}
}
