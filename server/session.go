package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lightninglm/lightning/model"
)

// Sessions (Config.SessionDir) keep a conversation's model state on disk so
// its next turn, even after a restart, reads only the new messages. A chat
// request names one with the extension field "session"; the file is
// DIR/NAME.session:
//
//	magic    [8]byte  "LTNGSRVS"
//	version  uint32   sessionVersion
//	infoLen  uint32, info [infoLen]byte  sessionInfo as JSON (what listings show)
//	crc      uint32   CRC-32C of every byte before it
//	state             the model's own stream (model.StateStore.SaveState: its
//	                  magic, version, model fingerprint, checksum), whose meta
//	                  is sessionMeta as JSON
//
// A file that is only the state stream, as `lightning chat -session`
// writes it (its meta holds the same "text", "tokens" and "messages"), is
// read too: its header comes from the state, and the next save rewrites it
// in this format.
//
// Listings read only the small header (all of a chat file); a request or
// GET of one session reads and checks everything. Files are replaced atomically (temporary
// file, fsync, rename), and one request at a time may use a session.
const (
	sessionExt     = ".session"
	sessionMagic   = "LTNGSRVS"
	sessionVersion = 1
	maxSessionInfo = 64 << 10
	staleTempAge   = time.Hour
)

// sessionName is a valid session name: no separators, no leading dot (no
// "..", hidden or temporary files).
var sessionName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$`)

// errSessionFile marks every problem with a session file's content, as
// opposed to I/O errors.
var errSessionFile = errors.New("bad session file")

// modelFileError is the model's complaint about the state part of a
// session file; it counts as errSessionFile.
type modelFileError struct{ error }

func (e modelFileError) Unwrap() error        { return e.error }
func (e modelFileError) Is(target error) bool { return target == errSessionFile }

// sessionInfo is a session file's header.
type sessionInfo struct {
	Tokens  int       `json:"tokens"`  // tokens the state has absorbed
	Created time.Time `json:"created"` // first saved
	Model   string    `json:"model"`   // served model name that saved it (informational: the state's fingerprint decides)
}

// sessionMeta travels inside the state stream, covered by its checksum.
type sessionMeta struct {
	Text     string    `json:"text"`     // rendered conversation the state has absorbed
	Tokens   []int32   `json:"tokens"`   // the ids behind it, the model's own for generated text
	Messages []message `json:"messages"` // the conversation, the last answer included
}

// sessions is the session folder and which sessions are in use.
type sessions struct {
	dir  string
	mu   sync.Mutex
	busy map[string]bool
}

func (ss *sessions) path(name string) string { return filepath.Join(ss.dir, name+sessionExt) }

// acquire marks a session in use; false if it already is.
func (ss *sessions) acquire(name string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.busy[name] {
		return false
	}
	ss.busy[name] = true
	return true
}

func (ss *sessions) release(name string) {
	ss.mu.Lock()
	delete(ss.busy, name)
	ss.mu.Unlock()
}

// removeStaleTemps deletes temporary files that a crash mid-save left
// behind (older than staleTempAge, so a save in progress is never touched).
func (ss *sessions) removeStaleTemps() {
	tmps, _ := filepath.Glob(filepath.Join(ss.dir, ".*"+sessionExt+".tmp*"))
	for _, p := range tmps {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			os.Remove(p)
		}
	}
}

// readHeader reads and checks a session file's header, leaving r at the
// state stream.
func readHeader(r io.Reader) (sessionInfo, error) {
	var info sessionInfo
	var fixed [16]byte
	short := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated in the header", errSessionFile)
		}
		return err
	}
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return info, short(err)
	}
	if string(fixed[:8]) != sessionMagic {
		return info, &chatFileError{fixed[:8]}
	}
	if v := binary.LittleEndian.Uint32(fixed[8:]); v != sessionVersion {
		return info, fmt.Errorf("%w: format version %d, this server reads version %d", errSessionFile, v, sessionVersion)
	}
	n := binary.LittleEndian.Uint32(fixed[12:])
	if n > maxSessionInfo {
		return info, fmt.Errorf("%w: header of %d bytes exceeds %d", errSessionFile, n, maxSessionInfo)
	}
	rest := make([]byte, n+4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return info, short(err)
	}
	crc := crc32.Update(crc32.Checksum(fixed[:], castagnoli), castagnoli, rest[:n])
	if got := binary.LittleEndian.Uint32(rest[n:]); got != crc {
		return info, fmt.Errorf("%w: header checksum mismatch (file %08x, computed %08x): the file is corrupted", errSessionFile, got, crc)
	}
	if err := json.Unmarshal(rest[:n], &info); err != nil {
		return info, fmt.Errorf("%w: header: %v", errSessionFile, err)
	}
	return info, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chatFileError says a file does not start like a server session: it may
// be a `lightning chat -session` file (a bare state stream), which the
// caller tries next.
type chatFileError struct{ magic []byte }

func (e *chatFileError) Error() string {
	return fmt.Sprintf("not a server session file (it starts with %q, not %q)", e.magic, sessionMagic)
}

// loadedSession is a session read from disk and checked.
type loadedSession struct {
	info  sessionInfo
	meta  sessionMeta
	state model.State
	bytes int64
	mod   time.Time
}

// load reads and checks a whole session file. It returns an error wrapping
// os.ErrNotExist when there is none and errSessionFile when its content is
// unusable (corrupt, truncated, another model's, another version).
func (ss *sessions) load(store model.StateStore, name string) (*loadedSession, error) {
	f, err := os.Open(ss.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	info, err := readHeader(f)
	var chatFile *chatFileError
	switch {
	case errors.As(err, &chatFile):
		// Perhaps a `lightning chat -session` file: the bare state stream.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		info = sessionInfo{Created: fi.ModTime().UTC()}
	case err != nil:
		return nil, err
	}
	st, metaBytes, err := store.LoadState(f)
	switch {
	case err != nil && chatFile != nil:
		return nil, fmt.Errorf("%w: %v (as a `lightning chat -session` file: %v)", errSessionFile, chatFile, err)
	case err != nil:
		return nil, modelFileError{err}
	case chatFile != nil:
		info.Tokens = st.Len()
	}
	var meta sessionMeta
	if err := json.Unmarshal(metaBytes, &meta); err != nil {
		return nil, fmt.Errorf("%w: state metadata: %v", errSessionFile, err)
	}
	if info.Tokens != st.Len() || len(meta.Tokens) != st.Len() {
		return nil, fmt.Errorf("%w: the header says %d tokens, the metadata lists %d, the state holds %d", errSessionFile, info.Tokens, len(meta.Tokens), st.Len())
	}
	return &loadedSession{info: info, meta: meta, state: st, bytes: fi.Size(), mod: fi.ModTime()}, nil
}

// save replaces a session file atomically: everything goes to a temporary
// file in the same folder, which is synced and then renamed over the old
// one, so a crash mid-write leaves the previous session intact.
func (ss *sessions) save(store model.StateStore, name string, info sessionInfo, meta *sessionMeta, st model.State) error {
	mb, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	ib, err := json.Marshal(info)
	if err != nil {
		return err
	}
	var hdr bytes.Buffer
	hdr.WriteString(sessionMagic)
	binary.Write(&hdr, binary.LittleEndian, uint32(sessionVersion))
	binary.Write(&hdr, binary.LittleEndian, uint32(len(ib)))
	hdr.Write(ib)
	binary.Write(&hdr, binary.LittleEndian, crc32.Checksum(hdr.Bytes(), castagnoli))

	path := ss.path(name)
	f, err := os.CreateTemp(ss.dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	_, err = f.Write(hdr.Bytes())
	if err == nil {
		err = store.SaveState(f, st, mb)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// Make the rename itself durable.
	if d, err := os.Open(ss.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// sessionObject is a session as the API shows it.
type sessionObject struct {
	ID         string    `json:"id"`
	Object     string    `json:"object"`
	Tokens     int       `json:"tokens"`
	Bytes      int64     `json:"bytes"`
	CreatedAt  int64     `json:"created_at"`
	ModifiedAt int64     `json:"modified_at"`
	Model      string    `json:"model,omitempty"`
	Error      string    `json:"error,omitempty"`    // listings: why the header is unreadable
	Text       *string   `json:"text,omitempty"`     // GET of one session
	Messages   []message `json:"messages,omitempty"` // GET of one session
}

// sessionUse is a chat request's hold on a session: it is marked in use
// from open to done.
type sessionUse struct {
	ss     *sessions
	store  model.StateStore
	name   string
	prev   *loadedSession // nil for a new session
	status string         // "new", "resumed" or "mismatch" (the X-Lightning-Session header)
	text   string         // the rendered prompt
	prompt []int32        // every prompt id: the resumed ones, then the ones read now
	done   bool
}

// openSession validates a request's session name, takes the session and
// loads its file if there is one.
func (s *Server) openSession(b *Backend, name string) (*sessionUse, *apiError) {
	ss := s.sessions
	if ss == nil {
		return nil, badRequest("session", "sessions are off on this server (start it with -session-dir DIR)")
	}
	if !sessionName.MatchString(name) {
		return nil, badRequest("session", "session = %q: want 1 to 128 letters, digits, '_', '-' or '.', not starting with '.'", name)
	}
	if !ss.acquire(name) {
		return nil, sessionBusy(name)
	}
	u := &sessionUse{ss: ss, store: b.store, name: name, status: "new"}
	t0 := time.Now()
	prev, err := ss.load(b.store, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return u, nil
	case err != nil:
		ss.release(name)
		return nil, s.sessionLoadError(name, err)
	}
	s.metrics.sessionLoad.observe(time.Since(t0))
	u.prev = prev
	return u, nil
}

// plan sets up j to resume from the session when the rendered conversation
// extends the text its state absorbed, so only the rest is tokenized and
// read; otherwise the whole prompt is read as usual.
func (u *sessionUse) plan(b *Backend, j *job, text string) {
	u.text = text
	j.req.KeepState = true
	if p := u.prev; p != nil {
		if rest, ok := strings.CutPrefix(text, p.meta.Text); ok && rest != "" {
			j.req.Resume, j.req.Prompt, j.base = p.state, encode(b, rest, false), p.state.Len()
			u.prev.state = nil // the engine owns it now
			u.status = "resumed"
			u.prompt = append(slices.Clone(p.meta.Tokens), j.req.Prompt...)
			return
		}
		u.status = "mismatch"
	}
	j.req.Prompt = encode(b, text, false)
	u.prompt = j.req.Prompt
}

// finishSession saves the state a finished answer left, if it can be
// resumed, and lets the session go. A state can be resumed when the answer
// ended with a stop token or max_tokens: it has absorbed the prompt and
// every sampled token but the pending last one. Otherwise (cancelled,
// failed) the file keeps its previous content, which is still a valid
// starting point. It runs before the response ends, so a client's next
// turn finds the session saved and free.
func (s *Server) finishSession(rc *requestCtx, u *sessionUse, msgs []message, out *outcome, answer message) {
	if u == nil || u.done {
		return
	}
	u.done = true
	defer u.ss.release(u.name)
	if out == nil {
		return
	}
	r := out.res
	kept, ok := r.Absorbed(out.ids)
	if !ok {
		return
	}
	ids := make([]int, len(kept))
	for i, id := range kept {
		ids[i] = int(id)
	}
	meta := &sessionMeta{
		Text:     u.text + rc.backend.Tokenizer.Decode(ids, false),
		Tokens:   append(slices.Clone(u.prompt), kept...),
		Messages: append(slices.Clone(msgs), answer),
	}
	if len(meta.Tokens) != r.State.Len() {
		s.log.Error("session not saved: token count mismatch", "id", rc.id, "session", u.name, "tokens", len(meta.Tokens), "state", r.State.Len())
		return
	}
	info := sessionInfo{Tokens: r.State.Len(), Created: time.Now().UTC(), Model: s.cfg.ModelName}
	if u.prev != nil {
		info.Created = u.prev.info.Created
	}
	t0 := time.Now()
	if err := u.ss.save(u.store, u.name, info, meta, r.State); err != nil {
		s.metrics.count(&s.metrics.sessionSaveErrors)
		s.log.Error("saving session", "id", rc.id, "session", u.name, "error", err)
		return
	}
	s.metrics.sessionSave.observe(time.Since(t0))
	rc.log = append(rc.log, "session_saved_tokens", info.Tokens, "session_save", time.Since(t0).Round(time.Microsecond))
}

// release lets the session go without saving (the request failed early).
func (u *sessionUse) release() {
	if u != nil && !u.done {
		u.done = true
		u.ss.release(u.name)
	}
}

func sessionBusy(name string) *apiError {
	return &apiError{Status: http.StatusConflict, Type: "invalid_request_error", Param: strp("session"), Code: strp("session_busy"),
		Message: fmt.Sprintf("session %q is in use by another request; a session serves one request at a time", name)}
}

// sessionLoadError maps a load failure: unusable content is a 409 that
// says how to start over, anything else (I/O) a 500.
func (s *Server) sessionLoadError(name string, err error) *apiError {
	if errors.Is(err, errSessionFile) {
		return &apiError{Status: http.StatusConflict, Type: "invalid_request_error", Param: strp("session"), Code: strp("session_invalid"),
			Message: fmt.Sprintf("session %q cannot be used: %v; DELETE /v1/sessions/%s to start it over", name, err, name)}
	}
	s.log.Error("reading session", "session", name, "error", err)
	return internalError(fmt.Sprintf("reading session %q: %v", name, err))
}

// sessionHandler wraps the session endpoints with their shared checks and
// request metrics (by route, not by name).
func (s *Server) sessionHandler(route string, h func(w http.ResponseWriter, r *http.Request, b *Backend) *apiError) http.Handler {
	return s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		b := s.backend.Load()
		var err *apiError
		switch {
		case s.sessions == nil:
			err = &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
				Message: "sessions are off on this server (start it with -session-dir DIR)"}
		case b == nil:
			err = unavailable("model is loading", s.cfg.RetryAfter)
		default:
			err = h(sw, r, b)
		}
		if err != nil {
			writeError(sw, err)
		}
		s.metrics.request(route, sw.status)
	}))
}

// pathSession validates the {id} of a session URL.
func pathSession(r *http.Request) (string, *apiError) {
	name := r.PathValue("id")
	if !sessionName.MatchString(name) {
		return "", badRequest("id", "session id %q: want 1 to 128 letters, digits, '_', '-' or '.', not starting with '.'", name)
	}
	return name, nil
}

func sessionNotFound(name string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: strp("id"), Code: strp("session_not_found"),
		Message: fmt.Sprintf("no session %q", name)}
}

// listSessions answers GET /v1/sessions from the files' headers. A file
// whose header is unreadable is listed with its error.
func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, b *Backend) *apiError {
	ss := s.sessions
	entries, err := os.ReadDir(ss.dir)
	if err != nil {
		return internalError(fmt.Sprintf("reading the session folder: %v", err))
	}
	data := []sessionObject{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), sessionExt)
		if !ok || !e.Type().IsRegular() || !sessionName.MatchString(name) {
			continue
		}
		o := sessionObject{ID: name, Object: "session"}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		o.Bytes, o.ModifiedAt = fi.Size(), fi.ModTime().Unix()
		info, err := ss.readInfo(b.store, name)
		if err != nil {
			o.Error = err.Error()
		} else {
			o.Tokens, o.CreatedAt, o.Model = info.Tokens, info.Created.Unix(), info.Model
		}
		data = append(data, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	return nil
}

// readInfo reads a session file's header; a `lightning chat -session` file
// has none, so it is read and checked whole.
func (ss *sessions) readInfo(store model.StateStore, name string) (sessionInfo, error) {
	f, err := os.Open(ss.path(name))
	if err != nil {
		return sessionInfo{}, err
	}
	info, err := readHeader(f)
	f.Close()
	if _, chat := err.(*chatFileError); !chat {
		return info, err
	}
	ls, err := ss.load(store, name)
	if err != nil {
		return sessionInfo{}, err
	}
	return ls.info, nil
}

// getSession answers GET /v1/sessions/{id}: it reads and checks the whole
// file and shows the conversation it holds.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request, b *Backend) *apiError {
	name, apiErr := pathSession(r)
	if apiErr != nil {
		return apiErr
	}
	ls, err := s.sessions.load(b.store, name)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return sessionNotFound(name)
	case err != nil:
		e := s.sessionLoadError(name, err)
		e.Param = strp("id")
		return e
	}
	writeJSON(w, http.StatusOK, sessionObject{
		ID: name, Object: "session", Tokens: ls.info.Tokens, Bytes: ls.bytes, CreatedAt: ls.info.Created.Unix(),
		ModifiedAt: ls.mod.Unix(), Model: ls.info.Model, Text: &ls.meta.Text, Messages: ls.meta.Messages,
	})
	return nil
}

// deleteSession answers DELETE /v1/sessions/{id}, whatever the file holds.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, b *Backend) *apiError {
	name, apiErr := pathSession(r)
	if apiErr != nil {
		return apiErr
	}
	ss := s.sessions
	if !ss.acquire(name) {
		e := sessionBusy(name)
		e.Param = strp("id")
		return e
	}
	defer ss.release(name)
	switch err := os.Remove(ss.path(name)); {
	case errors.Is(err, os.ErrNotExist):
		return sessionNotFound(name)
	case err != nil:
		return internalError(fmt.Sprintf("deleting session %q: %v", name, err))
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": name, "object": "session.deleted", "deleted": true})
	return nil
}
