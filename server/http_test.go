package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/server"
)

// post sends a raw request and returns the status, headers and decoded
// OpenAI error (if any).
func post(t *testing.T, url, path, key, body string) (int, http.Header, apiErr) {
	t.Helper()
	return do(t, "POST", url+path, key, body)
}

type apiErr struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func do(t *testing.T, method, url, key, body string) (int, http.Header, apiErr) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error apiErr `json:"error"`
	}
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Errorf("%s %s: status %d body %q is not an OpenAI error", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header, e.Error
}

// TestBadInput checks that bad requests get the right 4xx, name the field,
// and leave the server serving.
func TestBadInput(t *testing.T) {
	ts := start(t, setup{template: "vllm_minimax_m1_tool", server: server.Config{MaxBodyBytes: 64 << 10}})
	msgs := `"messages": [{"role": "user", "content": "hi"}]`
	ok := `{"model": "tiny-test", ` + msgs + `, "max_tokens": 2}`
	huge := `{"model": "tiny-test", "messages": [{"role": "user", "content": "` + strings.Repeat("a", 100<<10) + `"}]}`
	cases := []struct {
		name, path, key, body string
		status                int
		param                 string
	}{
		{"malformed JSON", "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [`, 400, ""},
		{"not an object", "/v1/chat/completions", apiKey, `[1, 2]`, 400, ""},
		{"trailing data", "/v1/chat/completions", apiKey, ok + ` {}`, 400, ""},
		{"wrong type temperature", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "temperature": "hot"}`, 400, "temperature"},
		{"wrong type max_tokens", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "max_tokens": 1.5}`, 400, "max_tokens"},
		{"wrong type messages", "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": "hi"}`, 400, "messages"},
		{"wrong type content", "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "user", "content": 5}]}`, 400, "messages.content"},
		{"wrong type stop", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "stop": 5}`, 400, "stop"},
		{"wrong type model", "/v1/chat/completions", apiKey, `{"model": 7, ` + msgs + `}`, 400, "model"},
		{"temperature range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "temperature": 2.5}`, 400, "temperature"},
		{"top_p range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "top_p": 0}`, 400, "top_p"},
		{"top_k range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "top_k": -5}`, 400, "top_k"},
		{"min_p range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "min_p": 1.5}`, 400, "min_p"},
		{"presence range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "presence_penalty": 3}`, 400, "presence_penalty"},
		{"frequency range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "frequency_penalty": -2.5}`, 400, "frequency_penalty"},
		{"max_tokens zero", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "max_tokens": 0}`, 400, "max_tokens"},
		{"max_tokens over limit", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "max_tokens": 100000}`, 400, "max_tokens"},
		{"max_completion_tokens", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "max_completion_tokens": -1}`, 400, "max_completion_tokens"},
		{"n > 1", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "n": 2}`, 400, "n"},
		{"top_logprobs range", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "logprobs": true, "top_logprobs": 21}`, 400, "top_logprobs"},
		{"top_logprobs without logprobs", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "top_logprobs": 2}`, 400, "top_logprobs"},
		{"empty stop", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "stop": [""]}`, 400, "stop"},
		{"stream_options without stream", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "stream_options": {"include_usage": true}}`, 400, "stream_options"},
		{"response_format json_schema", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "response_format": {"type": "json_schema"}}`, 400, "response_format"},
		{"logit_bias key", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "logit_bias": {"five": 10}}`, 400, "logit_bias"},
		{"logit_bias token past the vocabulary", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": "hi", "logit_bias": {"99999999": 10}}`, 400, "logit_bias"},
		{"logit_bias value", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "logit_bias": {"5": 101}}`, 400, "logit_bias"},
		{"logit_bias type", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "logit_bias": {"5": "up"}}`, 400, "logit_bias"},
		{"bad tool", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "tools": [{"type": "function"}]}`, 400, "tools"},
		{"bad tool_choice", "/v1/chat/completions", apiKey, `{"model": "tiny-test", ` + msgs + `, "tool_choice": "always"}`, 400, "tool_choice"},
		{"empty messages", "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": []}`, 400, "messages"},
		{"missing messages", "/v1/chat/completions", apiKey, `{"model": "tiny-test"}`, 400, "messages"},
		{"bad role", "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "wizard", "content": "hi"}]}`, 400, "messages"},
		{"image part", "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}`, 400, "messages"},
		{"missing model", "/v1/chat/completions", apiKey, `{` + msgs + `}`, 400, "model"},
		{"unknown model", "/v1/chat/completions", apiKey, `{"model": "gpt-9", ` + msgs + `}`, 404, "model"},
		{"huge body", "/v1/chat/completions", apiKey, huge, 413, ""},
		{"missing API key", "/v1/chat/completions", "", ok, 401, ""},
		{"wrong API key", "/v1/chat/completions", "sk-wrong", ok, 401, ""},
		{"completions empty prompt", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": ""}`, 400, "prompt"},
		{"completions prompt batch", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": ["a", "b"]}`, 400, "prompt"},
		{"completions bad token", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": [1, 99999999]}`, 400, "prompt"},
		{"completions wrong prompt type", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": {"a": 1}}`, 400, "prompt"},
		{"completions logprobs range", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": "a", "logprobs": 6}`, 400, "logprobs"},
		{"completions suffix", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": "a", "suffix": "b"}`, 400, "suffix"},
		{"completions best_of", "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": "a", "best_of": 3}`, 400, "best_of"},
		{"models without key", "/v1/models", "", "", 401, ""},
		{"unknown endpoint", "/v1/embeddings", apiKey, `{}`, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if c.path == "/v1/models" {
				method = "GET"
			}
			status, _, e := do(t, method, ts.url+c.path, c.key, c.body)
			if status != c.status {
				t.Fatalf("status %d, want %d (%s)", status, c.status, e.Message)
			}
			if c.param != "" && (e.Param == nil || *e.Param != c.param) {
				t.Errorf("param %v, want %q (%s)", e.Param, c.param, e.Message)
			}
		})
	}
	if status, _, _ := do(t, "GET", ts.url+"/v1/chat/completions", apiKey, ""); status != 405 {
		t.Errorf("GET on a POST endpoint: %d, want 405", status)
	}
	// Still serving.
	if status, _, e := post(t, ts.url, "/v1/chat/completions", apiKey, ok); status != 200 {
		t.Fatalf("valid request after bad ones: %d %s", status, e.Message)
	}
	waitFor(t, func() bool { st := ts.eng.Stats(); return st.Running == 0 && st.Submitted == st.Finished })
}

// TestModelsAndHealth covers GET /v1/models, /health and /livez before
// and after the model is attached, and draining.
func TestModelsAndHealth(t *testing.T) {
	srv := server.New(server.Config{ModelName: modelName, APIKey: apiKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	health := func() (int, string) {
		resp, err := http.Get(hs.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Status string }
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v.Status
	}
	live := func(when string) {
		t.Helper()
		resp, err := http.Get(hs.URL + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Status string }
		json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode != 200 || v.Status != "alive" {
			t.Errorf("/livez %s: %d %q, want 200 alive", when, resp.StatusCode, v.Status)
		}
	}
	if code, st := health(); code != 503 || st != "loading" {
		t.Errorf("health while loading: %d %s", code, st)
	}
	live("while loading")
	status, h, _ := post(t, hs.URL, "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "user", "content": "hi"}]}`)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Errorf("request while loading: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	tok := loadTokenizer(t, "llama2")
	eng, err := engine.New(randomModel(t, tok.VocabSize()), engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := srv.Attach(server.Backend{Engine: eng, Tokenizer: tok, Chat: templateConfig(t, "minimax_m1"), StopTokens: server.DefaultStopTokens(tok)}); err != nil {
		t.Fatal(err)
	}
	if code, st := health(); code != 200 || st != "ok" {
		t.Errorf("health when ready: %d %s", code, st)
	}
	live("when ready")
	client := openai.NewClient(optionsFor(hs.URL)...)
	models, err := client.Models.List(bg())
	if err != nil {
		t.Fatal(err)
	}
	if len(models.Data) != 1 || models.Data[0].ID != modelName {
		t.Errorf("models %+v", models.Data)
	}
	if m, err := client.Models.Get(bg(), modelName); err != nil || m.ID != modelName {
		t.Errorf("model %+v, %v", m, err)
	}
	// MiniMax-M1's own template (content as parts) renders a chat.
	resp, err := client.Chat.Completions.New(bg(), openai.ChatCompletionNewParams{
		Model:     modelName,
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("hi")},
		MaxTokens: openai.Int(3),
	})
	if err != nil || resp.Usage.CompletionTokens != 3 {
		t.Errorf("MiniMax-M1 template chat: %+v, %v", resp, err)
	}
	srv.Drain()
	if code, st := health(); code != 503 || st != "draining" {
		t.Errorf("health while draining: %d %s", code, st)
	}
	live("while draining")
	status, h, _ = post(t, hs.URL, "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "user", "content": "hi"}]}`)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Errorf("request while draining: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
}

// TestCapacityAndDisconnect fills the only slot and the queue, checks the
// 429, then drops a streaming client and checks its slot comes back.
func TestCapacityAndDisconnect(t *testing.T) {
	ts := start(t, setup{template: "vllm_minimax_m1_tool", engine: engine.Config{MaxSeqs: 1, MaxQueue: 1}, server: server.Config{MaxTokens: 1 << 20}})
	long := `{"model": "tiny-test", "messages": [{"role": "user", "content": "go"}], "max_tokens": 1000000, "stream": true}`
	ctx1, cancel1 := context.WithCancel(bg())
	body1 := openStream(t, ctx1, ts.url, long)
	ctx2, cancel2 := context.WithCancel(bg())
	body2 := openStream(t, ctx2, ts.url, long) // queued: headers come only once it runs
	waitFor(t, func() bool { st := ts.eng.Stats(); return st.Running == 1 && st.Queued == 1 })
	status, h, e := post(t, ts.url, "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}`)
	if status != 429 || h.Get("Retry-After") == "" || e.Code == nil || *e.Code != "rate_limit_exceeded" {
		t.Errorf("over capacity: %d Retry-After %q %+v", status, h.Get("Retry-After"), e)
	}
	// The first client reads a little, then disconnects.
	r := bufio.NewReader(body1)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel1()
	waitFor(t, func() bool { st := ts.eng.Stats(); return st.Cancelled == 1 && st.Running == 1 && st.Queued == 0 })
	cancel2()
	waitFor(t, func() bool { st := ts.eng.Stats(); return st.Running == 0 && st.Submitted == st.Finished })
	_ = body2
	// The handlers count the disconnects just after the engine lets go.
	waitFor(t, func() bool {
		return strings.Contains(get(t, ts.url+"/metrics", apiKey), "lightning_client_disconnects_total 2")
	})
	metrics := get(t, ts.url+"/metrics", apiKey)
	for _, want := range []string{"lightning_running_sequences 0", "lightning_queue_depth 0", "lightning_client_disconnects_total 2",
		`lightning_http_requests_total{path="/v1/chat/completions",status="429"} 1`, "# TYPE lightning_time_to_first_token_seconds histogram"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestRequestTimeout checks the server's request timeout ends a long
// generation with 504 and frees the slot. The timeout leaves room to read the
// prompt even under the race detector (~150 tokens/s here): a prompt that
// cannot be read in time is refused with 413 instead (TestPromptTooSlowForTimeout).
//
// The random model must not end the generation itself: on a fast machine it
// samples thousands of tokens in the timeout, and one of them could be a stop
// token, so logit_bias rules those out.
func TestRequestTimeout(t *testing.T) {
	ts := start(t, setup{template: "vllm_minimax_m1_tool", server: server.Config{RequestTimeout: 2 * time.Second, MaxTokens: 1 << 20}})
	var bias []string
	for _, id := range server.DefaultStopTokens(loadTokenizer(t, "llama2")) {
		bias = append(bias, fmt.Sprintf(`"%d": -100`, id))
	}
	status, _, e := post(t, ts.url, "/v1/chat/completions", apiKey, `{"model": "tiny-test", "messages": [{"role": "user", "content": "go"}], "max_tokens": 1000000, "logit_bias": {`+strings.Join(bias, ", ")+`}}`)
	if status != 504 || e.Type != "timeout_error" {
		t.Errorf("timeout: %d %+v", status, e)
	}
	waitFor(t, func() bool { return ts.eng.Stats().Running == 0 })
}

func openStream(t *testing.T, ctx context.Context, url, body string) io.ReadCloser {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	ch := make(chan io.ReadCloser, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Error(err)
			}
			ch <- io.NopCloser(strings.NewReader(""))
			return
		}
		ch <- resp.Body
	}()
	select {
	case b := <-ch:
		return b
	case <-time.After(200 * time.Millisecond): // queued: no headers yet
		return io.NopCloser(strings.NewReader(""))
	}
}

func get(t testing.TB, url, key string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMemoryMetrics reads the process's memory figures from /metrics: the
// resident set size beside the engine's accounted bytes and bound, and the
// Go runtime's memory and limit.
func TestMemoryMetrics(t *testing.T) {
	ts := start(t, setup{engine: engine.Config{MaxMemory: 256 << 20, PrefixCacheBytes: 64 << 20}})
	metrics := get(t, ts.url+"/metrics", apiKey)
	value := func(name string) int64 {
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("%s = %q", name, v)
				}
				return n
			}
		}
		t.Errorf("metrics lack %s", name)
		return -1
	}
	if rss := value("lightning_process_resident_bytes"); rss < 1<<20 {
		t.Errorf("resident bytes %d", rss)
	}
	if b := value("lightning_memory_bound_bytes"); b != ts.eng.MemoryBound() || b < 320<<20 {
		t.Errorf("memory bound %d, engine says %d", b, ts.eng.MemoryBound())
	}
	if a := value("lightning_memory_accounted_bytes"); a < 0 {
		t.Errorf("accounted bytes %d", a)
	}
	if g := value("lightning_go_memory_bytes"); g < 1<<20 {
		t.Errorf("Go memory %d", g)
	}
	value("lightning_go_memory_limit_bytes")
}
