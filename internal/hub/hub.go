// Package hub downloads model repositories from the Hugging Face Hub over
// its HTTP API, into the Hub's standard cache so files fetched by other
// tools (huggingface_hub, transformers) are reused and the other way round:
//
//	$HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//	  models--ORG--NAME/
//	    blobs/ETAG                 file contents, named by their ETag (sha256 for LFS files)
//	    blobs/ETAG.incomplete      a download in progress, resumed with an HTTP Range request
//	    refs/REVISION              the commit a branch or tag pointed to at the last pull
//	    snapshots/COMMIT/PATH      symbolic links to ../../blobs/ETAG
//
// The file list comes from GET /api/models/REPO/revision/REV; each file from
// /REPO/resolve/COMMIT/PATH, whose HEAD response (redirects not followed)
// carries the ETag (X-Linked-Etag for LFS files) and the size. LFS files are
// checked against their sha256 ETag after download and fetched again once
// when they do not match. HF_ENDPOINT selects another endpoint and HF_TOKEN
// authenticates (gated and private repositories).
package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEndpoint is the public Hub.
const DefaultEndpoint = "https://huggingface.co"

// Errors callers can branch on; every error wraps one of them or names the
// file and the HTTP status.
var (
	ErrAuth      = errors.New("hub: authentication required (401): set HF_TOKEN to a token with access to the repository")
	ErrForbidden = errors.New("hub: access denied (403): the repository is gated or private; accept its terms on the Hub with the account of HF_TOKEN")
	ErrNotFound  = errors.New("hub: not found (404)")
	ErrChecksum  = errors.New("hub: checksum mismatch")
	ErrNotCached = errors.New("hub: not in the local cache")
)

// Client talks to one Hub endpoint and keeps one cache folder.
type Client struct {
	Endpoint string       // without a trailing slash
	Token    string       // bearer token, "" for none
	CacheDir string       // the hub cache folder (holds models--ORG--NAME)
	HTTP     *http.Client // nil: a client with no overall timeout
	Workers  int          // files downloaded at once; 0 = 4
	// Progress receives bytes present so far (cached or downloaded) and the
	// total of the files being pulled; may be nil. Calls are serialised.
	Progress func(done, total int64)
}

// FromEnv returns a client configured as huggingface_hub is: HF_ENDPOINT,
// HF_TOKEN, HF_HUB_CACHE or HF_HOME.
func FromEnv() *Client {
	c := &Client{Endpoint: DefaultEndpoint, Token: os.Getenv("HF_TOKEN"), CacheDir: CacheDir()}
	if e := os.Getenv("HF_ENDPOINT"); e != "" {
		c.Endpoint = strings.TrimRight(e, "/")
	}
	return c
}

// CacheDir returns the hub cache folder from the environment.
func CacheDir() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if h := os.Getenv("HF_HOME"); h != "" {
		return filepath.Join(h, "hub")
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "huggingface", "hub")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)

// IsRepoID reports whether s looks like ORG/NAME.
func IsRepoID(s string) bool { return repoRE.MatchString(s) && !strings.Contains(s, "..") }

// repoDir is the cache folder of a model repository.
func (c *Client) repoDir(repo string) string {
	return filepath.Join(c.CacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// File is one file of a repository revision.
type File struct {
	Path string // rfilename
	Size int64  // -1 if the listing did not say
}

// Options select what Pull fetches.
type Options struct {
	Revision string   // branch, tag or commit; "" = main
	Include  []string // glob patterns (path.Match) on the file path or its base name; none = every file
	LocalDir string   // if set, the files are also copied there
}

// Pull fetches the files of repo at opt.Revision that match opt.Include
// into the cache, reusing what is already there, and returns the snapshot
// folder (or opt.LocalDir when set).
func (c *Client) Pull(ctx context.Context, repo string, opt Options) (string, error) {
	if !IsRepoID(repo) {
		return "", fmt.Errorf("hub: %q is not a repository id (want ORG/NAME)", repo)
	}
	rev := opt.Revision
	if rev == "" {
		rev = "main"
	}
	commit, files, err := c.listFiles(ctx, repo, rev)
	if err != nil {
		return "", err
	}
	files = filterFiles(files, opt.Include)
	if len(files) == 0 {
		return "", fmt.Errorf("hub: %s@%s: no file matches %v", repo, rev, opt.Include)
	}
	dir := c.repoDir(repo)
	for _, d := range []string{"blobs", "refs", filepath.Join("snapshots", commit)} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("hub: %w", err)
		}
	}
	if rev != commit {
		if err := writeRef(filepath.Join(dir, "refs", filepath.FromSlash(rev)), commit); err != nil {
			return "", err
		}
	}
	snap := filepath.Join(dir, "snapshots", commit)
	p := &pullState{c: c, ctx: ctx, repo: repo, commit: commit, dir: dir, snap: snap}
	for _, f := range files {
		if f.Size > 0 {
			p.total.Add(f.Size)
		}
	}
	workers := c.Workers
	if workers <= 0 {
		workers = 4
	}
	jobs := make(chan File)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range min(workers, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				errs <- p.fetch(f)
			}
		}()
	}
	for _, f := range files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	if err := errors.Join(all...); err != nil {
		return "", err
	}
	p.report()
	if opt.LocalDir == "" {
		return snap, nil
	}
	for _, f := range files {
		if err := copyFile(filepath.Join(snap, filepath.FromSlash(f.Path)), filepath.Join(opt.LocalDir, filepath.FromSlash(f.Path))); err != nil {
			return "", err
		}
	}
	return opt.LocalDir, nil
}

// Resolve returns the cached snapshot folder of repo at revision ("" =
// main) without any network access.
func (c *Client) Resolve(repo, revision string) (string, error) {
	if revision == "" {
		revision = "main"
	}
	dir := c.repoDir(repo)
	commit := revision
	if b, err := os.ReadFile(filepath.Join(dir, "refs", filepath.FromSlash(revision))); err == nil {
		commit = strings.TrimSpace(string(b))
	}
	snap := filepath.Join(dir, "snapshots", commit)
	if fi, err := os.Stat(snap); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s@%s (looked in %s); HINT: lightning pull %s", ErrNotCached, repo, revision, dir, repo)
	}
	return snap, nil
}

// apiModel is the part of the model-info response Pull reads.
type apiModel struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
	} `json:"siblings"`
}

func (c *Client) listFiles(ctx context.Context, repo, rev string) (string, []File, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", c.Endpoint, repo, url.PathEscape(rev))
	req, err := c.request(ctx, http.MethodGet, u)
	if err != nil {
		return "", nil, err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("hub: %s: %w", u, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, repo+"@"+rev); err != nil {
		return "", nil, err
	}
	var m apiModel
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&m); err != nil {
		return "", nil, fmt.Errorf("hub: %s: bad model info: %w", u, err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(m.SHA) {
		return "", nil, fmt.Errorf("hub: %s: model info has no commit sha (got %q)", u, m.SHA)
	}
	files := make([]File, 0, len(m.Siblings))
	for _, s := range m.Siblings {
		if !validPath(s.RFilename) {
			return "", nil, fmt.Errorf("hub: %s: unsafe file name %q in the listing", u, s.RFilename)
		}
		f := File{Path: s.RFilename, Size: -1}
		if s.Size != nil {
			f.Size = *s.Size
		}
		files = append(files, f)
	}
	return m.SHA, files, nil
}

// validPath rejects names that would escape the snapshot folder.
func validPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func filterFiles(files []File, include []string) []File {
	if len(include) == 0 {
		return files
	}
	var out []File
	for _, f := range files {
		for _, g := range include {
			full, _ := path.Match(g, f.Path)
			base, _ := path.Match(g, path.Base(f.Path))
			if full || base {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) request(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "lightning")
	return req, nil
}

// statusError turns an HTTP error status into an error naming what.
func statusError(resp *http.Response, what string) error {
	switch {
	case resp.StatusCode < 300 || resp.StatusCode == http.StatusPartialContent:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w (%s)", ErrAuth, what)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w (%s)", ErrForbidden, what)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %s (check the repository id, the revision and the file name)", ErrNotFound, what)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return fmt.Errorf("hub: %s: HTTP %s: %s", what, resp.Status, strings.TrimSpace(string(body)))
}

// pullState is one Pull's shared progress.
type pullState struct {
	c            *Client
	ctx          context.Context
	repo, commit string
	dir, snap    string
	done, total  atomic.Int64
	mu           sync.Mutex
	lastReport   time.Time
	blobLocks    sync.Map // ETag → *sync.Mutex: files with the same content share one blob
}

func (p *pullState) add(n int64) {
	p.done.Add(n)
	if p.c.Progress == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.lastReport) > 100*time.Millisecond {
		p.lastReport = now
		p.c.Progress(p.done.Load(), max(p.total.Load(), p.done.Load()))
	}
}

func (p *pullState) report() {
	if p.c.Progress != nil {
		p.mu.Lock()
		p.c.Progress(p.done.Load(), max(p.total.Load(), p.done.Load()))
		p.mu.Unlock()
	}
}

// fetch brings one file into the snapshot: nothing to do when the snapshot
// already has it, a link when its blob is cached, else a download.
func (p *pullState) fetch(f File) error {
	dst := filepath.Join(p.snap, filepath.FromSlash(f.Path))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && (f.Size < 0 || fi.Size() == f.Size) {
		p.add(fi.Size())
		return nil
	}
	u := fmt.Sprintf("%s/%s/resolve/%s/%s", p.c.Endpoint, p.repo, p.commit, escapePath(f.Path))
	etag, size, err := p.head(u, f.Path)
	if err != nil {
		return err
	}
	if f.Size < 0 && size >= 0 {
		p.total.Add(size)
	}
	blob := filepath.Join(p.dir, "blobs", etag)
	lk, _ := p.blobLocks.LoadOrStore(etag, &sync.Mutex{})
	lk.(*sync.Mutex).Lock()
	defer lk.(*sync.Mutex).Unlock()
	if fi, err := os.Stat(blob); err != nil || (size >= 0 && fi.Size() != size) {
		if err := p.download(u, f.Path, blob, etag, size); err != nil {
			return err
		}
	} else {
		p.add(fi.Size())
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	os.Remove(dst)
	if err := os.Symlink(rel, dst); err != nil {
		return fmt.Errorf("hub: link %s: %w", dst, err)
	}
	return nil
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

var etagRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// head returns the file's ETag (X-Linked-Etag for LFS files, whose
// resolve answer is a redirect) and size (-1 if unknown).
func (p *pullState) head(u, name string) (string, int64, error) {
	req, err := p.c.request(p.ctx, http.MethodHead, u)
	if err != nil {
		return "", 0, err
	}
	cl := *p.c.client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("hub: %s: %w", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.StatusCode = http.StatusOK // a redirect to the file's storage
	}
	if err := statusError(resp, p.repo+": "+name); err != nil {
		return "", 0, err
	}
	etag := resp.Header.Get("X-Linked-Etag")
	if etag == "" {
		etag = resp.Header.Get("ETag")
	}
	etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if !etagRE.MatchString(etag) {
		return "", 0, fmt.Errorf("hub: %s: the server gave no usable ETag (%q)", name, etag)
	}
	size := int64(-1)
	for _, h := range []string{"X-Linked-Size", "Content-Length"} {
		if v, err := strconv.ParseInt(resp.Header.Get(h), 10, 64); err == nil && v >= 0 {
			size = v
			break
		}
	}
	return etag, size, nil
}

// isSHA256 reports whether etag is an LFS content hash.
func isSHA256(etag string) bool { return regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(etag) }

// maxAttempts bounds the requests one file download may take (resumed
// transfers and one re-download after a checksum mismatch).
const maxAttempts = 6

// download fetches u into blob.incomplete, resuming it with a Range request
// when it exists (and after a dropped connection), checks an LFS file's
// sha256 against etag (starting over once on a mismatch), and renames it to
// blob.
func (p *pullState) download(u, name, blob, etag string, size int64) error {
	part := blob + ".incomplete"
	restarted := false
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		have := int64(0)
		if fi, err := os.Stat(part); err == nil {
			have = fi.Size()
		}
		if size >= 0 && have > size {
			os.Remove(part)
			have = 0
		}
		p.add(have)
		if size < 0 || have < size {
			err := p.get(u, name, part, have)
			if err != nil {
				p.done.Add(-fileSize(part))
				if errors.Is(err, ErrAuth) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) || p.ctx.Err() != nil {
					return err
				}
				lastErr = err
				continue // resume from what arrived
			}
		}
		got := fileSize(part)
		if size >= 0 && got != size {
			p.done.Add(-got)
			lastErr = fmt.Errorf("hub: %s: %d bytes arrived, want %d", name, got, size)
			continue
		}
		if isSHA256(etag) {
			sum, err := fileSHA256(part)
			if err != nil {
				return err
			}
			if sum != etag {
				os.Remove(part)
				p.done.Add(-got)
				lastErr = fmt.Errorf("%w: %s: sha256 %s, want %s (the ETag)", ErrChecksum, name, sum, etag)
				if restarted {
					return lastErr
				}
				restarted = true
				continue
			}
		}
		if err := os.Rename(part, blob); err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		return nil
	}
	return fmt.Errorf("hub: %s: giving up after %d attempts: %w", name, maxAttempts, lastErr)
}

// get appends the bytes of u from offset have to part.
func (p *pullState) get(u, name, part string, have int64) error {
	req, err := p.c.request(p.ctx, http.MethodGet, u)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := p.c.client().Do(req)
	if err != nil {
		return fmt.Errorf("hub: %s: %w", name, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, p.repo+": "+name); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if have > 0 && resp.StatusCode != http.StatusPartialContent {
		flags |= os.O_TRUNC // the server ignored the Range: start over
		p.done.Add(-have)
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	_, err = io.Copy(f, &countingReader{r: resp.Body, add: p.add})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("hub: %s: transfer interrupted: %w", name, err)
	}
	return nil
}

type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

func fileSize(p string) int64 {
	if fi, err := os.Stat(p); err == nil {
		return fi.Size()
	}
	return 0
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hub: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeRef(path, commit string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(commit), 0o644); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	return nil
}

// copyFile copies src (following links) to dst unless dst already has its
// size, through a temporary file.
func copyFile(src, dst string) error {
	si, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if di, err := os.Stat(dst); err == nil && di.Size() == si.Size() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer in.Close()
	tmp := dst + ".incomplete"
	out, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub: copy to %s: %w", dst, err)
	}
	return nil
}
