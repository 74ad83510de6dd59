// Package server is Lightning's OpenAI-compatible HTTP API: POST
// /v1/chat/completions and /v1/completions (streaming over SSE or not),
// GET /v1/models, /health and /metrics (Prometheus text), and, with
// Config.SessionDir, sessions saved to disk (GET /v1/sessions, GET and
// DELETE /v1/sessions/{id}).
//
// It turns requests into token ids (tokenizer, chat templates), hands them
// to the engine, which batches all running requests into shared forward
// passes, and turns the tokens back into text, applying stop strings and
// parsing tool calls (MiniMax's <tool_calls> format); response_format
// json_object constrains sampling to a JSON object. Every field is validated, and errors use the OpenAI
// error shape with the matching status: 400 naming the field, 401 for a
// missing or wrong API key, 404 for an unknown model, 413 for an oversized
// body, 429 when the queue is full and 503 while loading or draining (both
// with Retry-After).
//
// Sessions: a chat request may carry the extension field "session": NAME.
// Its model state is then saved to SessionDir/NAME.session after the answer
// (atomically), and the next request naming it resumes from that state when
// its rendered conversation extends the text the state absorbed: only the
// new messages are tokenized and read, and the model keeps seeing its own
// generated ids (as llama.cpp's chat does). Otherwise the whole prompt is
// read and the file replaced. The response header X-Lightning-Session says
// "resumed", "new" or "mismatch", and usage.prompt_tokens_details.cached_tokens
// counts the tokens the session spared. A session serves one request at a
// time (409 session_busy), and a file that is corrupt, truncated, from
// another model or another format version gives 409 session_invalid, which
// DELETE /v1/sessions/{id} clears.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/tokenizer/chat"
)

// Config configures a server. Zero fields take the defaults noted.
type Config struct {
	// ModelName is the model id clients send and /v1/models lists.
	ModelName string
	// APIKey, if set, is required as "Authorization: Bearer KEY" on every
	// endpoint except /health.
	APIKey string
	// MaxBodyBytes bounds request bodies. Default 8 MiB.
	MaxBodyBytes int64
	// MaxTokens caps max_tokens and is its default when a request omits it.
	// Default 4096.
	MaxTokens int
	// RequestTimeout bounds a request from arrival to its last token; 0 means
	// no limit.
	RequestTimeout time.Duration
	// RetryAfter is the Retry-After sent with 429 and 503. Default 1s.
	RetryAfter time.Duration
	// Logger receives one line per request and the server's events. Default
	// slog.Default().
	Logger *slog.Logger
	// SessionDir, if set, is an existing folder for sessions saved to disk;
	// the model must implement model.StateStore. One server per folder.
	SessionDir string
	// SplitReasoning sends the thinking of a chat reply that opens with
	// <think>…</think> (MiniMax-M1's format) as the message's
	// reasoning_content, and only the rest as its content, like vLLM's
	// reasoning parsers. Sessions keep the whole reply.
	SplitReasoning bool
}

// Backend is what a server needs to generate: the engine and how to turn
// text into its token ids and back.
type Backend struct {
	Engine    *engine.Engine
	Tokenizer *tokenizer.Tokenizer
	// Chat holds the model's chat templates (tokenizer_config.json); nil
	// means there are none, and /v1/chat/completions answers 400.
	Chat *chat.Config
	// StopTokens end generation (end-of-turn and end-of-text tokens); see
	// DefaultStopTokens.
	StopTokens []int32

	chat  *chatTemplates   // parsed from Chat by Attach
	texts *tokenTextCache  // token texts for JSON mode, built on first use
	store model.StateStore // the engine's model, when sessions are on
}

// Server is the HTTP API. Create it with New, make it ready with Attach.
type Server struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	backend  atomic.Pointer[Backend] // nil while loading
	drain    atomic.Bool
	created  int64
	metrics  *metrics
	sessions *sessions // nil when off

	fingerprint string
	tokenText   sync.Map // int32 → string: single-token texts for logprobs
}

// New returns a server that answers 503 "loading" until Attach.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 8 << 20
	}
	if cfg.MaxTokens == 0 {
		cfg.MaxTokens = 4096
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ModelName == "" {
		cfg.ModelName = "lightning"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), created: time.Now().Unix(), metrics: newMetrics()}
	s.fingerprint = "fp_lightning_" + randomID(4)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /livez", s.live)
	s.mux.Handle("GET /metrics", s.auth(http.HandlerFunc(s.serveMetrics)))
	s.mux.Handle("GET /v1/models", s.auth(http.HandlerFunc(s.listModels)))
	s.mux.Handle("GET /v1/models/{id}", s.auth(http.HandlerFunc(s.getModel)))
	s.mux.Handle("POST /v1/chat/completions", s.auth(s.generation("chat", s.chatCompletions)))
	s.mux.Handle("POST /v1/completions", s.auth(s.generation("completions", s.completions)))
	if cfg.SessionDir != "" {
		s.sessions = &sessions{dir: cfg.SessionDir, busy: map[string]bool{}}
	}
	s.mux.Handle("GET /v1/sessions", s.sessionHandler("/v1/sessions", s.listSessions))
	s.mux.Handle("GET /v1/sessions/{id}", s.sessionHandler("/v1/sessions/{id}", s.getSession))
	s.mux.Handle("DELETE /v1/sessions/{id}", s.sessionHandler("/v1/sessions/{id}", s.deleteSession))
	s.mux.HandleFunc("/", s.notFound)
	return s
}

// Attach makes the server ready with a loaded model. It fails if the chat
// templates do not parse, or if sessions are on and the model cannot save
// its states or the folder is missing.
func (s *Server) Attach(b Backend) error {
	if ss := s.sessions; ss != nil {
		store, ok := b.Engine.Model().(model.StateStore)
		if !ok {
			return fmt.Errorf("server: sessions need a model that can save its states (%T cannot)", b.Engine.Model())
		}
		if fi, err := os.Stat(ss.dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("server: session folder %s: not a folder (%v)", ss.dir, err)
		}
		ss.removeStaleTemps()
		b.store = store
	}
	if b.Chat != nil && len(b.Chat.Templates) > 0 {
		t, err := newChatTemplates(b.Chat)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		b.chat = t
	}
	b.texts = new(tokenTextCache)
	s.backend.Store(&b)
	s.log.Info("model ready", "model", s.cfg.ModelName, "vocab", b.Engine.Info().VocabSize, "chat_template", b.chat != nil, "stop_tokens", b.StopTokens)
	return nil
}

// endOfTurn are the end-of-turn and end-of-text tokens of common chat
// formats: MiniMax's <end_of_sentence>, ChatML's <|im_end|>, Llama 3's
// <|eot_id|>, and others.
var endOfTurn = []string{
	"<end_of_sentence>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
	"<｜end▁of▁sentence｜>", "</s>", "<|end|>",
}

// DefaultStopTokens returns the tokenizer's EOS token and every special
// token of a known chat format that ends a turn.
func DefaultStopTokens(t *tokenizer.Tokenizer) []int32 {
	var out []int32
	add := func(id int) {
		if !slices.Contains(out, int32(id)) {
			out = append(out, int32(id))
		}
	}
	if id, ok := t.EOS(); ok {
		add(id)
	}
	for _, name := range endOfTurn {
		if id, ok := t.TokenToID(name); ok && t.IsSpecial(id) {
			add(id)
		}
	}
	return out
}

// Drain stops accepting generation requests (503 with Retry-After) and puts
// the engine into draining mode; requests in flight continue. /health
// reports "draining".
func (s *Server) Drain() {
	s.drain.Store(true)
	if b := s.backend.Load(); b != nil {
		b.Engine.Drain()
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	b := s.backend.Load()
	switch {
	case s.drain.Load():
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	case b == nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
	default:
		st := b.Engine.Stats()
		body := map[string]any{"status": "ok", "model": s.cfg.ModelName, "running": st.Running, "queued": st.Queued}
		code := http.StatusOK
		if ws, ok := b.Engine.Model().(model.Workers); ok {
			ctx, cancel := context.WithTimeout(r.Context(), workerCheckTimeout)
			defer cancel()
			var list []map[string]any
			for _, wk := range ws.Workers(ctx) {
				e := map[string]any{"rank": wk.Rank, "addr": wk.Addr, "holds": wk.Role, "ready": wk.Ready,
					"check_ms": float64(wk.Check.Microseconds()) / 1000}
				if !wk.Ready {
					e["error"] = wk.Error
					body["status"], code = "degraded", http.StatusServiceUnavailable
				}
				list = append(list, e)
			}
			body["workers"] = list
		}
		writeJSON(w, code, body)
	}
}

// live answers 200 whenever the process serves HTTP: while loading, while
// draining, and with a worker down. It waits for nothing, so a liveness
// probe on it restarts only a process that stopped answering (restarting a
// hub does not bring a worker back); /health is the readiness.
func (s *Server) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// workerCheckTimeout bounds the check of each model worker in /health and
// /metrics (models served across processes).
const workerCheckTimeout = 2 * time.Second

// auth checks the bearer token in constant time.
func (s *Server) auth(h http.Handler) http.Handler {
	if s.cfg.APIKey == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.metrics.request(r.URL.Path, http.StatusUnauthorized)
			msg := "Incorrect API key provided"
			if len(got) == 0 {
				msg = "Missing API key: send it as 'Authorization: Bearer KEY'"
			}
			writeError(w, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: strp("invalid_api_key"), Message: msg})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health", "/livez", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/sessions":
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)})
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/sessions/"); ok && rest != "" && !strings.Contains(rest, "/") {
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: fmt.Sprintf("method %s not allowed on %s (GET or DELETE)", r.Method, r.URL.Path)})
		return
	}
	writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
		Message: fmt.Sprintf("no such endpoint %s %s", r.Method, r.URL.Path)})
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.cfg.ModelName, Object: "model", Created: s.created, OwnedBy: "lightning"}
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	if id := r.PathValue("id"); id != s.cfg.ModelName {
		writeError(w, modelNotFound(id))
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}

// handlerFunc is a generation endpoint: it returns an error to send (before
// any output was written) or nil when it has answered.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *requestCtx) *apiError

// requestCtx carries one generation request's bookkeeping.
type requestCtx struct {
	id      string
	start   time.Time
	backend *Backend
	body    []byte
	ctx     context.Context
	log     []any // extra log attributes set by the handler
}

// generation wraps an endpoint with the checks every generation request
// shares: readiness, draining, body size, timeout, logging and metrics.
func (s *Server) generation(name string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := &requestCtx{id: randomID(12), start: time.Now()}
		w.Header().Set("X-Request-Id", rc.id)
		sw := &statusWriter{ResponseWriter: w}
		err := s.prepare(sw, r, rc)
		if err == nil {
			ctx := r.Context()
			if s.cfg.RequestTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
				defer cancel()
			}
			rc.ctx = ctx
			err = h(sw, r, rc)
		}
		if err != nil {
			writeError(sw, err)
		}
		s.metrics.request(r.URL.Path, sw.status)
		attrs := []any{"id", rc.id, "endpoint", name, "status", sw.status, "duration", time.Since(rc.start).Round(time.Microsecond)}
		attrs = append(attrs, rc.log...)
		if err != nil {
			attrs = append(attrs, "error", err.Message)
		}
		s.log.Info("request", attrs...)
	})
}

// prepare checks readiness and reads the body.
func (s *Server) prepare(w http.ResponseWriter, r *http.Request, rc *requestCtx) *apiError {
	rc.backend = s.backend.Load()
	switch {
	case s.drain.Load():
		return unavailable("server is shutting down", s.cfg.RetryAfter)
	case rc.backend == nil:
		return unavailable("model is loading", s.cfg.RetryAfter)
	}
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	rc.body = body
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case err != nil:
		return nil, badRequest("", "reading the request body: %v", err)
	}
	return body, nil
}

func tooLarge(limit int64) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
		Message: fmt.Sprintf("request body exceeds the server's limit of %d bytes", limit)}
}

// statusWriter records the status code and forwards Flush.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
