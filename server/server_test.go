package server_test

import (
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/server"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/tokenizer/chat"
	"github.com/lightninglm/lightning/tokenizer/jinja"
)

const (
	modelName = "tiny-test"
	apiKey    = "sk-test-key"
)

// The fixtures are the tokenizer packages' own: tokenizers (tokenizer.json.gz
// + tokenizer_config.json) in tokenizerTestdata/NAME, chat templates in
// chatTestdata/NAME/template.jinja.
const (
	tokenizerTestdata = "../tokenizer/testdata"
	chatTestdata      = "../tokenizer/chat/testdata"
)

// loadTokenizer unpacks tokenizerTestdata/NAME/tokenizer.json.gz next to its
// tokenizer_config.json and loads it.
func loadTokenizer(t testing.TB, name string) *tokenizer.Tokenizer {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(tokenizerTestdata, name)
	f, err := os.Open(filepath.Join(src, "tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// templateConfig returns a chat config holding chatTestdata/NAME/template.jinja
// and the special tokens of NAME/special_tokens.json (bos_token, …).
func templateConfig(t testing.TB, name string) *chat.Config {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(chatTestdata, name, "template.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	special := map[string]jinja.Value{}
	if data, err := os.ReadFile(filepath.Join(chatTestdata, name, "special_tokens.json")); err == nil {
		v, err := jinja.DecodeJSON(data)
		d, ok := v.(*jinja.Dict)
		if err != nil || !ok {
			t.Fatalf("%s/special_tokens.json: %v", name, err)
		}
		for i, k := range d.Keys() {
			special[jinja.Str(k)] = d.Values()[i]
		}
	}
	return &chat.Config{Templates: map[string]string{"default": string(src)}, SpecialTokens: special}
}

var (
	modelOnce sync.Map // [vocab, seed] → *minimax01.Model, shared by the tests of one run
)

// randomModel returns a tiny random f32 model whose vocabulary fits vocab
// ids, generated once per test binary run.
func randomModel(t testing.TB, vocab int) *minimax01.Model {
	t.Helper()
	return randomModelSeed(t, vocab, 11)
}

// randomModelSeed is randomModel with other random weights.
func randomModelSeed(t testing.TB, vocab int, seed uint64) *minimax01.Model {
	t.Helper()
	key := [2]uint64{uint64(vocab), seed}
	if m, ok := modelOnce.Load(key); ok {
		return m.(*minimax01.Model)
	}
	cfg, err := minimax01.PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vocab = vocab
	dir, err := os.MkdirTemp("", "lightning-server-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := minimax01.WriteRandom(dir, cfg, minimax01.RandomOptions{DType: quant.F32, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	m, err := minimax01.Load(dir, minimax01.Options{MaxBatchTokens: 64})
	os.RemoveAll(dir) // the weights stay mapped
	if err != nil {
		t.Fatal(err)
	}
	modelOnce.Store(key, m)
	return m
}

// testServer is a running server on loopback and an OpenAI client for it.
type testServer struct {
	url    string
	srv    *server.Server
	eng    *engine.Engine
	tok    *tokenizer.Tokenizer
	client openai.Client
}

type setup struct {
	model    model.Model // nil: a random model for the tokenizer
	tok      string      // tokenizerTestdata folder
	template string      // chatTestdata template name; "" = the tokenizer config's own
	engine   engine.Config
	server   server.Config
}

func start(t testing.TB, s setup) *testServer {
	t.Helper()
	if s.tok == "" {
		s.tok = "llama2"
	}
	tok := loadTokenizer(t, s.tok)
	m := s.model
	if m == nil {
		m = randomModel(t, tok.VocabSize())
	}
	if s.engine.BatchTokens == 0 {
		s.engine.BatchTokens = 64
	}
	eng, err := engine.New(m, s.engine)
	if err != nil {
		t.Fatal(err)
	}
	var cc *chat.Config
	if s.template != "" {
		cc = templateConfig(t, s.template)
	} else {
		cc, err = chat.LoadConfig(filepath.Join(tokenizerTestdata, s.tok, "tokenizer_config.json"))
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.server.ModelName == "" {
		s.server.ModelName = modelName
	}
	if s.server.APIKey == "" {
		s.server.APIKey = apiKey
	}
	if s.server.Logger == nil {
		s.server.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := server.New(s.server)
	if err := srv.Attach(server.Backend{Engine: eng, Tokenizer: tok, Chat: cc, StopTokens: server.DefaultStopTokens(tok)}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		eng.Close()
		hs.Close()
	})
	return &testServer{
		url: hs.URL, srv: srv, eng: eng, tok: tok,
		client: openai.NewClient(optionsFor(hs.URL)...),
	}
}

// optionsFor points an OpenAI client at a test server, without retries so
// errors surface.
func optionsFor(url string) []option.RequestOption {
	return []option.RequestOption{option.WithBaseURL(url + "/v1/"), option.WithAPIKey(apiKey), option.WithMaxRetries(0)}
}

func bg() context.Context { return context.Background() }
