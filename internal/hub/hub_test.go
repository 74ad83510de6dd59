package hub

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub behaves like the Hub's HTTP API for one model repository: the
// model-info endpoint lists the files of a commit; resolve URLs answer a
// small (non-LFS) file directly with its git-blob ETag, and redirect an LFS
// file to a storage URL with X-Linked-Etag (its sha256), X-Linked-Size and
// X-Repo-Commit, as the Hub does. Storage honours Range requests. Faults
// can be injected per file: cut the first transfer after N bytes, or serve
// corrupted bytes on the first full transfer.
type fakeHub struct {
	t      *testing.T
	repo   string
	commit string
	files  map[string][]byte
	lfs    map[string]bool
	token  string // required bearer token, "" for a public repo

	mu        sync.Mutex
	cutAfter  map[string]int  // file → bytes sent before the connection drops (once)
	corrupt   map[string]bool // file → first full transfer is corrupted
	gets      map[string]int  // storage/resolve GETs per file
	ranges    map[string][]string
	apiCalls  int
	headCalls int
}

func newFakeHub(t *testing.T) *fakeHub {
	files := map[string][]byte{
		"config.json":                      []byte(`{"model_type": "minimax_text_01"}`),
		"model-00001-of-00002.safetensors": bytes.Repeat([]byte("shard one "), 40000),
		"model-00002-of-00002.safetensors": bytes.Repeat([]byte("shard two!"), 30000),
		"model.safetensors.index.json":     []byte(`{"weight_map": {}}`),
		"sub/readme.md":                    []byte("# hello"),
		"sub/same-as-config.json":          []byte(`{"model_type": "minimax_text_01"}`), // one blob for two files
	}
	return &fakeHub{
		t: t, repo: "MiniMaxAI/Tiny-Test", commit: strings.Repeat("ab", 20), files: files,
		lfs:      map[string]bool{"model-00001-of-00002.safetensors": true, "model-00002-of-00002.safetensors": true},
		cutAfter: map[string]int{}, corrupt: map[string]bool{}, gets: map[string]int{}, ranges: map[string][]string{},
	}
}

func sum256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func gitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.token != "" {
		switch r.Header.Get("Authorization") {
		case "Bearer " + h.token:
		case "":
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		default:
			http.Error(w, "gated", http.StatusForbidden)
			return
		}
	}
	p := r.URL.Path
	switch {
	case p == "/api/models/"+h.repo+"/revision/main" || p == "/api/models/"+h.repo+"/revision/"+h.commit:
		h.mu.Lock()
		h.apiCalls++
		h.mu.Unlock()
		type sib struct {
			RFilename string `json:"rfilename"`
			Size      int64  `json:"size"`
		}
		var sibs []sib
		for name, b := range h.files {
			sibs = append(sibs, sib{name, int64(len(b))})
		}
		json.NewEncoder(w).Encode(map[string]any{"id": h.repo, "sha": h.commit, "siblings": sibs})
	case strings.HasPrefix(p, "/"+h.repo+"/resolve/"+h.commit+"/"):
		name := strings.TrimPrefix(p, "/"+h.repo+"/resolve/"+h.commit+"/")
		b, ok := h.files[name]
		if !ok {
			http.Error(w, "entry not found", http.StatusNotFound)
			return
		}
		w.Header().Set("X-Repo-Commit", h.commit)
		if h.lfs[name] {
			w.Header().Set("X-Linked-Etag", `"`+sum256(b)+`"`)
			w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)))
			w.Header().Set("ETag", `"`+gitSHA1([]byte("pointer "+name))+`"`)
			if r.Method == http.MethodHead {
				h.mu.Lock()
				h.headCalls++
				h.mu.Unlock()
			}
			http.Redirect(w, r, "/storage/"+name, http.StatusFound)
			return
		}
		w.Header().Set("ETag", `"`+gitSHA1(b)+`"`)
		h.serve(w, r, name, b)
	case strings.HasPrefix(p, "/storage/"):
		name := strings.TrimPrefix(p, "/storage/")
		h.serve(w, r, name, h.files[name])
	default:
		http.Error(w, "repository not found", http.StatusNotFound)
	}
}

// serve sends b with Range support, applying the file's injected faults.
func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		return
	}
	h.mu.Lock()
	h.gets[name]++
	h.ranges[name] = append(h.ranges[name], r.Header.Get("Range"))
	cut, cutOK := h.cutAfter[name]
	delete(h.cutAfter, name)
	bad := h.corrupt[name] && r.Header.Get("Range") == ""
	if bad {
		delete(h.corrupt, name)
	}
	h.mu.Unlock()
	if bad {
		b = bytes.ToUpper(b)
	}
	if cutOK {
		// Promise the whole file, send part of it, and drop the connection.
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:cut])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (h *fakeHub) client(t *testing.T, srv *httptest.Server) *Client {
	return &Client{Endpoint: srv.URL, CacheDir: filepath.Join(t.TempDir(), "hub"), Workers: 3}
}

// checkSnapshot verifies every file of the snapshot against the repo.
func (h *fakeHub) checkSnapshot(t *testing.T, snap string, names ...string) {
	t.Helper()
	if len(names) == 0 {
		for n := range h.files {
			names = append(names, n)
		}
	}
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(snap, n))
		if err != nil || !bytes.Equal(got, h.files[n]) {
			t.Errorf("%s: %d bytes, %v; want the repository's %d bytes", n, len(got), err, len(h.files[n]))
		}
		if fi, err := os.Lstat(filepath.Join(snap, n)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: not a link into blobs/ (%v)", n, err)
		}
	}
}

func TestPullShardedRepoAndCache(t *testing.T) {
	h := newFakeHub(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := h.client(t, srv)
	var last [2]int64
	c.Progress = func(done, total int64) { last = [2]int64{done, total} }
	snap, err := c.Pull(context.Background(), h.repo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.checkSnapshot(t, snap)
	want := filepath.Join(c.CacheDir, "models--MiniMaxAI--Tiny-Test", "snapshots", h.commit)
	if snap != want {
		t.Errorf("snapshot %s, want %s", snap, want)
	}
	if ref, _ := os.ReadFile(filepath.Join(c.CacheDir, "models--MiniMaxAI--Tiny-Test", "refs", "main")); string(ref) != h.commit {
		t.Errorf("refs/main = %q", ref)
	}
	blob := filepath.Join(c.CacheDir, "models--MiniMaxAI--Tiny-Test", "blobs", sum256(h.files["model-00001-of-00002.safetensors"]))
	if _, err := os.Stat(blob); err != nil {
		t.Errorf("LFS blob not stored under its sha256: %v", err)
	}
	var total int64
	for _, b := range h.files {
		total += int64(len(b))
	}
	if last != [2]int64{total, total} {
		t.Errorf("final progress %v, want [%d %d]", last, total, total)
	}

	// A second pull reads the listing and nothing else.
	before := fmt.Sprint(h.gets, h.headCalls)
	apiBefore := h.apiCalls
	if _, err := c.Pull(context.Background(), h.repo, Options{}); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprint(h.gets, h.headCalls); after != before || h.apiCalls != apiBefore+1 {
		t.Errorf("second pull made requests: %s → %s", before, after)
	}
	// Resolve finds the snapshot without the network.
	srv.Close()
	if got, err := c.Resolve(h.repo, ""); err != nil || got != snap {
		t.Errorf("Resolve = %s, %v", got, err)
	}
	if _, err := c.Resolve("Other/Repo", ""); !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "lightning pull Other/Repo") {
		t.Errorf("Resolve of an absent repo: %v", err)
	}
}

func TestPullResumesInterruptedTransfer(t *testing.T) {
	h := newFakeHub(t)
	const name = "model-00001-of-00002.safetensors"
	h.cutAfter[name] = 123457
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := h.client(t, srv)
	snap, err := c.Pull(context.Background(), h.repo, Options{Include: []string{"*.safetensors"}})
	if err != nil {
		t.Fatal(err)
	}
	h.checkSnapshot(t, snap, name, "model-00002-of-00002.safetensors")
	if r := h.ranges[name]; len(r) != 2 || r[0] != "" || r[1] != "bytes=123457-" {
		t.Errorf("requests for %s had ranges %q, want a full request then bytes=123457-", name, r)
	}
	if _, err := os.Stat(filepath.Join(snap, "config.json")); !os.IsNotExist(err) {
		t.Errorf("-include *.safetensors fetched config.json")
	}
}

// TestPullResumesPartialBlob starts from a partial blob left by an earlier
// process (blobs/SHA.incomplete) and checks that only the rest is fetched.
func TestPullResumesPartialBlob(t *testing.T) {
	h := newFakeHub(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := h.client(t, srv)
	const name = "model-00002-of-00002.safetensors"
	b := h.files[name]
	blobs := filepath.Join(c.CacheDir, "models--MiniMaxAI--Tiny-Test", "blobs")
	os.MkdirAll(blobs, 0o755)
	os.WriteFile(filepath.Join(blobs, sum256(b)+".incomplete"), b[:1000], 0o644)
	snap, err := c.Pull(context.Background(), h.repo, Options{Include: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	h.checkSnapshot(t, snap, name)
	if r := h.ranges[name]; len(r) != 1 || r[0] != "bytes=1000-" {
		t.Errorf("ranges %q, want one bytes=1000- request", r)
	}
}

func TestPullRefetchesCorruptedFile(t *testing.T) {
	h := newFakeHub(t)
	const name = "model-00002-of-00002.safetensors"
	h.corrupt[name] = true
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := h.client(t, srv)
	snap, err := c.Pull(context.Background(), h.repo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.checkSnapshot(t, snap)
	if h.gets[name] != 2 {
		t.Errorf("%s fetched %d times, want 2 (corrupted, then again)", name, h.gets[name])
	}
	// A file that stays corrupted fails with ErrChecksum and leaves nothing.
	h2 := newFakeHub(t)
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h2.mu.Lock()
		h2.corrupt[name] = true
		h2.mu.Unlock()
		h2.ServeHTTP(w, r)
	}))
	defer srv2.Close()
	c2 := h2.client(t, srv2)
	if _, err := c2.Pull(context.Background(), h2.repo, Options{Include: []string{name}}); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), name) {
		t.Errorf("persistently corrupted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c2.CacheDir, "models--MiniMaxAI--Tiny-Test", "snapshots", h2.commit, name)); !os.IsNotExist(err) {
		t.Errorf("a corrupted file was linked into the snapshot")
	}
}

func TestPullErrors(t *testing.T) {
	h := newFakeHub(t)
	h.token = "secret"
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := h.client(t, srv)
	cases := []struct {
		token, repo, rev string
		want             error
	}{
		{"", h.repo, "", ErrAuth},
		{"wrong", h.repo, "", ErrForbidden},
		{"secret", "MiniMaxAI/Missing", "", ErrNotFound},
		{"secret", h.repo, "v9", ErrNotFound},
	}
	for _, cs := range cases {
		c.Token = cs.token
		_, err := c.Pull(context.Background(), cs.repo, Options{Revision: cs.rev})
		if !errors.Is(err, cs.want) || !strings.Contains(err.Error(), cs.repo) {
			t.Errorf("token %q repo %s rev %q: %v, want %v naming the repo", cs.token, cs.repo, cs.rev, err, cs.want)
		}
	}
	c.Token = "secret"
	if _, err := c.Pull(context.Background(), "not a repo", Options{}); err == nil {
		t.Error("bad repo id: no error")
	}
	snap, err := c.Pull(context.Background(), h.repo, Options{Include: []string{"config.json"}, LocalDir: filepath.Join(t.TempDir(), "out")})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(snap, "config.json")); err != nil || !bytes.Equal(b, h.files["config.json"]) {
		t.Errorf("-o copy: %q %v", b, err)
	}
}

func TestValidPath(t *testing.T) {
	for p, ok := range map[string]bool{"a/b.txt": true, "../x": false, "/etc/passwd": false, "a//b": false, "a/./b": false, "": false, `a\b`: false} {
		if validPath(p) != ok {
			t.Errorf("validPath(%q) = %v", p, !ok)
		}
	}
}
