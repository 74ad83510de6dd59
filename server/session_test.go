package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/sample"
	"github.com/lightninglm/lightning/server"
)

// chatMsg is a chat message as the tests send it.
type chatMsg struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatResult is what the session tests read from a chat completion.
type chatResult struct {
	status  int
	session string // X-Lightning-Session
	err     apiErr
	text    string
	finish  string
	prompt  int // usage.prompt_tokens
	cached  int // usage.prompt_tokens_details.cached_tokens
	compl   int
}

// chatSession sends a greedy chat request, with a session unless name is
// "", streaming or not, and decodes the answer.
func chatSession(t *testing.T, url, name string, msgs []chatMsg, maxTokens int, stream bool) chatResult {
	t.Helper()
	body := map[string]any{"model": modelName, "messages": msgs, "max_tokens": maxTokens, "temperature": 0}
	if name != "" {
		body["session"] = name
	}
	if stream {
		body["stream"] = true
		body["stream_options"] = map[string]any{"include_usage": true}
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := chatResult{status: resp.StatusCode, session: resp.Header.Get("X-Lightning-Session")}
	type usage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	}
	var v struct {
		Error   apiErr `json:"error"`
		Choices []struct {
			Message, Delta struct {
				Content string `json:"content"`
			}
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *usage `json:"usage"`
	}
	take := func(b []byte) {
		v.Usage = nil
		v.Choices = nil
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("response %q: %v", b, err)
		}
		for _, c := range v.Choices {
			r.text += c.Message.Content + c.Delta.Content
			if c.FinishReason != "" {
				r.finish = c.FinishReason
			}
		}
		if u := v.Usage; u != nil {
			r.prompt, r.cached, r.compl = u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.CompletionTokens
		}
		if v.Error.Message != "" {
			r.err = v.Error
		}
	}
	if stream && resp.StatusCode == 200 {
		for _, line := range strings.Split(string(data), "\n") {
			if ev, ok := strings.CutPrefix(line, "data: "); ok && ev != "[DONE]" {
				take([]byte(ev))
			}
		}
	} else {
		take(data)
	}
	return r
}

// sessionObject is a session as GET /v1/sessions[/{id}] shows it.
type sessionObject struct {
	ID         string    `json:"id"`
	Object     string    `json:"object"`
	Tokens     int       `json:"tokens"`
	Bytes      int64     `json:"bytes"`
	CreatedAt  int64     `json:"created_at"`
	ModifiedAt int64     `json:"modified_at"`
	Error      string    `json:"error"`
	Text       string    `json:"text"`
	Messages   []chatMsg `json:"messages"`
}

func getSession(t *testing.T, url, name string) sessionObject {
	t.Helper()
	var o sessionObject
	if err := json.Unmarshal([]byte(get(t, url+"/v1/sessions/"+name, apiKey)), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func listSessions(t *testing.T, url string) map[string]sessionObject {
	t.Helper()
	var l struct {
		Object string          `json:"object"`
		Data   []sessionObject `json:"data"`
	}
	if err := json.Unmarshal([]byte(get(t, url+"/v1/sessions", apiKey)), &l); err != nil || l.Object != "list" {
		t.Fatalf("list: %v %+v", err, l)
	}
	out := map[string]sessionObject{}
	for _, o := range l.Data {
		out[o.ID] = o
	}
	return out
}

func sessionServer(t *testing.T, dir string, seed uint64) *testServer {
	tok := loadTokenizer(t, "qwen3")
	return start(t, setup{tok: "qwen3", model: randomModelSeed(t, tok.VocabSize(), seed), server: server.Config{SessionDir: dir}})
}

// TestSessionResume runs a conversation with a session: turn 2 resumes
// from the saved state and reads only the new tokens, a restarted server
// resumes turn 3 from the file, and greedy answers equal those of a server
// without sessions.
func TestSessionResume(t *testing.T) {
	dir := t.TempDir()
	ts := sessionServer(t, dir, 11)
	conv := []chatMsg{{"system", "You answer in one short sentence."}, {"user", "What is the capital of France?"}}
	const n = 8

	r1 := chatSession(t, ts.url, "chat-1", conv, n, false)
	if r1.status != 200 || r1.session != "new" || r1.cached != 0 || r1.compl != n || r1.finish != "length" {
		t.Fatalf("turn 1: %+v", r1)
	}
	// The state absorbed the prompt and every generated token but the last.
	absorbed := r1.prompt + n - 1
	l := listSessions(t, ts.url)
	if o := l["chat-1"]; o.Tokens != absorbed || o.Bytes == 0 || o.CreatedAt == 0 || o.ModifiedAt == 0 || o.Error != "" || len(l) != 1 {
		t.Fatalf("list after turn 1: %+v", l)
	}
	o := getSession(t, ts.url, "chat-1")
	if o.Tokens != absorbed || len(o.Messages) != 3 || o.Messages[2].Role != "assistant" || o.Messages[2].Content != r1.text ||
		!strings.Contains(o.Text, "What is the capital of France?<|im_end|>\n<|im_start|>assistant\n") {
		t.Fatalf("session after turn 1: %+v", o)
	}

	conv = append(conv, chatMsg{"assistant", r1.text}, chatMsg{"user", "And of Italy?"})
	before := ts.eng.Stats()
	r2 := chatSession(t, ts.url, "chat-1", conv, n, false)
	if r2.status != 200 || r2.session != "resumed" || r2.cached != absorbed {
		t.Fatalf("turn 2: %+v (want %d tokens resumed)", r2, absorbed)
	}
	waitFor(t, func() bool { return ts.eng.Stats().Finished == before.Finished+1 })
	read := ts.eng.Stats().PromptTokens - before.PromptTokens
	if read != int64(r2.prompt-r2.cached) || read > 20 {
		t.Errorf("turn 2 read %d prompt tokens; usage says %d of %d cached", read, r2.cached, r2.prompt)
	}
	t.Logf("turn 2: %d prompt tokens, %d resumed from the session, %d read", r2.prompt, r2.cached, read)
	metrics := get(t, ts.url+"/metrics", apiKey)
	for _, want := range []string{`lightning_session_requests_total{outcome="resumed"} 1`, `lightning_session_requests_total{outcome="new"} 1`,
		fmt.Sprintf("lightning_session_resumed_tokens_total %d", absorbed), "lightning_session_save_seconds_count 2"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A new server on the same folder resumes turn 3 (streamed).
	ts2 := sessionServer(t, dir, 11)
	conv = append(conv, chatMsg{"assistant", r2.text}, chatMsg{"user", "Thanks!"})
	absorbed2 := r2.prompt + n - 1
	r3 := chatSession(t, ts2.url, "chat-1", conv, n, true)
	if r3.status != 200 || r3.session != "resumed" || r3.cached != absorbed2 || r3.compl != n {
		t.Fatalf("turn 3 after a restart: %+v (want %d tokens resumed)", r3, absorbed2)
	}
	// Saved before the stream ended.
	if o := getSession(t, ts2.url, "chat-1"); o.Tokens != r3.prompt+n-1 || len(o.Messages) != 7 {
		t.Errorf("session after turn 3: %d tokens, %d messages", o.Tokens, len(o.Messages))
	}

	// The same conversation without sessions. When the answers re-tokenize
	// to the ids the model generated (same prompt length), the outputs must
	// be equal; otherwise the model saw different ids and may differ.
	plain := start(t, setup{tok: "qwen3"})
	same := 0
	for i, c := range []struct {
		conv []chatMsg
		want chatResult
	}{{conv[:4], r2}, {conv, r3}} {
		got := chatSession(t, plain.url, "", c.conv, n, false)
		if got.status != 200 || got.session != "" {
			t.Fatalf("without sessions: %+v", got)
		}
		if got.prompt != c.want.prompt {
			t.Logf("turn %d: %d prompt tokens without the session, %d with it (the reply re-tokenizes differently)", i+2, got.prompt, c.want.prompt)
			continue
		}
		same++
		if got.text != c.want.text {
			t.Errorf("turn %d: without sessions %q, resumed %q", i+2, got.text, c.want.text)
		}
	}
	if same == 0 {
		t.Error("no turn re-tokenized identically; pick other messages so the comparison means something")
	}

	// A conversation that does not extend the session is read in full, and
	// replaces it.
	other := []chatMsg{{"user", "Something else entirely."}}
	r4 := chatSession(t, ts2.url, "chat-1", other, n, false)
	if r4.status != 200 || r4.session != "mismatch" || r4.cached != 0 {
		t.Fatalf("diverging conversation: %+v", r4)
	}
	if o := getSession(t, ts2.url, "chat-1"); o.Tokens != r4.prompt+n-1 || len(o.Messages) != 2 {
		t.Errorf("replaced session: %+v", o)
	}
}

// TestChatSessionFile puts a file written as `lightning chat -session`
// writes it (the model's bare state stream, with the conversation as meta)
// into the session folder: the server lists it, resumes the next turn from
// it through the OpenAI client, and saves it back in its own format. Before,
// it was refused as "bad magic".
func TestChatSessionFile(t *testing.T) {
	dir := t.TempDir()
	ts := sessionServer(t, dir, 11)
	conv := []chatMsg{{"user", "What is the capital of France?"}}
	if r := chatSession(t, ts.url, "srv", conv, 4, false); r.status != 200 {
		t.Fatalf("turn 1: %+v", r)
	}
	o := getSession(t, ts.url, "srv")
	// The state a chat would hold after that turn: the rendered text read.
	enc := ts.tok.Encode(o.Text, false)
	ids := make([]int32, len(enc))
	for i, id := range enc {
		ids[i] = int32(id)
	}
	stream, err := ts.eng.Submit(bg(), engine.Request{Prompt: ids, MaxTokens: 1, Params: sample.DefaultParams(), KeepState: true, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	_, res, err := stream.Wait(bg())
	if err != nil || res.State == nil || res.State.Len() != len(ids) {
		t.Fatalf("state: %+v, %v", res, err)
	}
	meta, _ := json.Marshal(map[string]any{"messages": o.Messages, "tokens": ids, "text": o.Text}) // chat.go's chatSessionMeta
	m := ts.eng.Model().(*minimax01.Model)
	chatFile := filepath.Join(dir, "from-chat.session")
	if err := m.SaveStateFile(chatFile, res.State.(*minimax01.State), meta); err != nil {
		t.Fatal(err)
	}

	if l := listSessions(t, ts.url); l["from-chat"].Tokens != len(ids) || l["from-chat"].Error != "" {
		t.Errorf("listed as %+v", l["from-chat"])
	}
	var msgs []openai.ChatCompletionMessageParamUnion
	for _, m := range o.Messages {
		if m.Role == "user" {
			msgs = append(msgs, openai.UserMessage(m.Content))
		} else {
			msgs = append(msgs, openai.AssistantMessage(m.Content))
		}
	}
	msgs = append(msgs, openai.UserMessage("And of Italy?"))
	var hr *http.Response
	resp, err := ts.client.Chat.Completions.New(bg(), openai.ChatCompletionNewParams{
		Model: modelName, Messages: msgs, MaxTokens: openai.Int(4), Temperature: openai.Float(0),
	}, option.WithJSONSet("session", "from-chat"), option.WithResponseInto(&hr))
	if err != nil {
		t.Fatalf("resuming a chat -session file: %v", err)
	}
	if got := hr.Header.Get("X-Lightning-Session"); got != "resumed" || resp.Usage.PromptTokensDetails.CachedTokens != int64(len(ids)) {
		t.Errorf("session %q, %d of %d prompt tokens resumed; want resumed, %d", got, resp.Usage.PromptTokensDetails.CachedTokens, resp.Usage.PromptTokens, len(ids))
	}
	if head, _ := os.ReadFile(chatFile); !bytes.HasPrefix(head, []byte("LTNGSRVS")) {
		t.Errorf("the session was not saved back in the server's format: starts with %q", head[:min(8, len(head))])
	}
}

// TestSessionBadFiles checks that corrupt, truncated, foreign and
// unrelated files give clear errors (never a crash), on requests and on the
// endpoints, and that DELETE clears them.
func TestSessionBadFiles(t *testing.T) {
	dir := t.TempDir()
	ts := sessionServer(t, dir, 11)
	conv := []chatMsg{{"user", "Hello there."}}
	if r := chatSession(t, ts.url, "good", conv, 4, false); r.status != 200 {
		t.Fatalf("creating a session: %+v", r)
	}
	// Another model's session, made by a server on another folder.
	otherDir := t.TempDir()
	other := sessionServer(t, otherDir, 12)
	if r := chatSession(t, other.url, "x", conv, 4, false); r.status != 200 {
		t.Fatalf("creating a session with another model: %+v", r)
	}
	good, err := os.ReadFile(filepath.Join(dir, "good.session"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := os.ReadFile(filepath.Join(otherDir, "x.session"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		return c
	}
	cases := []struct {
		name  string
		data  []byte
		want  string // in the error message
		listd bool   // the listing shows an error too (header-level problem)
	}{
		{"corrupt", flip(good, len(good)/2), "checksum mismatch", false},
		{"truncated", good[:len(good)/2], "truncated", false},
		{"no-checksum", good[:len(good)-2], "truncated in the checksum", false},
		{"bad-header", flip(good, 20), "header checksum mismatch", true},
		{"short-header", good[:10], "truncated in the header", true},
		{"foreign", foreign, "different model", false},
		{"garbage", []byte("hello, world, this is not a session"), "bad magic", true},
	}
	for _, c := range cases {
		if err := os.WriteFile(filepath.Join(dir, c.name+".session"), c.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := listSessions(t, ts.url)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := chatSession(t, ts.url, c.name, conv, 4, false)
			if r.status != 409 || r.err.Code == nil || *r.err.Code != "session_invalid" || r.err.Param == nil || *r.err.Param != "session" ||
				!strings.Contains(r.err.Message, c.want) || !strings.Contains(r.err.Message, "DELETE /v1/sessions/"+c.name) {
				t.Errorf("chat: %d %+v, want 409 session_invalid mentioning %q", r.status, r.err, c.want)
			}
			status, _, e := do(t, "GET", ts.url+"/v1/sessions/"+c.name, apiKey, "")
			if status != 409 || !strings.Contains(e.Message, c.want) {
				t.Errorf("GET: %d %+v", status, e)
			}
			if o, ok := list[c.name]; !ok || (o.Error != "") != c.listd || c.listd && !strings.Contains(o.Error, c.want) {
				t.Errorf("listed as %+v (present %v)", o, ok)
			}
			t.Logf("%s: %s", c.name, r.err.Message)
			// The file is left alone until deleted.
			if got, _ := os.ReadFile(filepath.Join(dir, c.name+".session")); !bytes.Equal(got, c.data) {
				t.Error("the failed request changed the file")
			}
			if status, _, e := do(t, "DELETE", ts.url+"/v1/sessions/"+c.name, apiKey, ""); status != 200 {
				t.Errorf("DELETE: %d %+v", status, e)
			}
			if r := chatSession(t, ts.url, c.name, conv, 4, false); r.status != 200 || r.session != "new" {
				t.Errorf("after DELETE: %+v", r)
			}
		})
	}
	// The good session still resumes.
	if r := chatSession(t, ts.url, "good", append(conv, chatMsg{"assistant", "Hi."}, chatMsg{"user", "Bye."}), 4, false); r.status != 200 {
		t.Errorf("good session: %+v", r)
	}
}

// TestSessionAPI covers names, the endpoints' errors, and sessions off.
func TestSessionAPI(t *testing.T) {
	dir := t.TempDir()
	ts := sessionServer(t, dir, 11)
	chat := func(session any) string {
		b, _ := json.Marshal(map[string]any{"model": modelName, "messages": []chatMsg{{"user", "hi"}}, "max_tokens": 2, "session": session})
		return string(b)
	}
	for _, name := range []any{"", "../etc/passwd", "a/b", ".hidden", "..", "a b", strings.Repeat("x", 129), "naïve", 7} {
		status, _, e := post(t, ts.url, "/v1/chat/completions", apiKey, chat(name))
		if status != 400 || e.Param == nil || *e.Param != "session" {
			t.Errorf("session %v: %d %+v", name, status, e)
		}
	}
	if status, _, e := post(t, ts.url, "/v1/chat/completions", apiKey, chat(strings.Repeat("x", 128))); status != 200 {
		t.Errorf("128-character name: %d %+v", status, e)
	}
	if status, _, e := post(t, ts.url, "/v1/completions", apiKey, `{"model": "tiny-test", "prompt": "a", "session": "s"}`); status != 400 || e.Param == nil || *e.Param != "session" {
		t.Errorf("completions with a session: %d %+v", status, e)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/sessions/nope", 404}, {"DELETE", "/v1/sessions/nope", 404}, {"GET", "/v1/sessions/.hidden", 400},
		{"DELETE", "/v1/sessions/%2e%2e", 400}, {"GET", "/v1/sessions/a%2Fb", 400}, {"GET", "/v1/sessions/..%2F..%2Fx", 400},
		{"POST", "/v1/sessions/x", 405}, {"POST", "/v1/sessions", 405},
	} {
		if status, _, e := do(t, c.method, ts.url+c.path, apiKey, ""); status != c.status {
			t.Errorf("%s %s: %d %+v, want %d", c.method, c.path, status, e, c.status)
		}
	}
	if status, _, _ := do(t, "GET", ts.url+"/v1/sessions", "", ""); status != 401 {
		t.Errorf("list without the key: %d", status)
	}
	// Files that are not sessions are not listed.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, ".x.session.tmp123"), []byte("x"), 0o644)
	if l := listSessions(t, ts.url); len(l) != 1 {
		t.Errorf("list: %+v", l)
	}

	// Sessions off.
	off := start(t, setup{tok: "qwen3"})
	if status, _, e := post(t, off.url, "/v1/chat/completions", apiKey, chat("s")); status != 400 || e.Param == nil || *e.Param != "session" || !strings.Contains(e.Message, "-session-dir") {
		t.Errorf("session with sessions off: %d %+v", status, e)
	}
	if status, _, e := do(t, "GET", off.url+"/v1/sessions", apiKey, ""); status != 404 || !strings.Contains(e.Message, "-session-dir") {
		t.Errorf("list with sessions off: %d %+v", status, e)
	}
}

// TestSessionBusy checks one request at a time per session: a second one
// gets 409 while the first runs, as does DELETE; other sessions are free.
func TestSessionBusy(t *testing.T) {
	dir := t.TempDir()
	tok := loadTokenizer(t, "qwen3")
	ts := start(t, setup{tok: "qwen3", model: randomModel(t, tok.VocabSize()), server: server.Config{SessionDir: dir, MaxTokens: 1 << 20}})
	b, _ := json.Marshal(map[string]any{"model": modelName, "messages": []chatMsg{{"user", "go on"}}, "max_tokens": 1 << 20, "stream": true, "session": "busy"})
	ctx, cancel := context.WithCancel(bg())
	body := openStream(t, ctx, ts.url, string(b))
	waitFor(t, func() bool { return ts.eng.Stats().Running == 1 })
	r := chatSession(t, ts.url, "busy", []chatMsg{{"user", "me too"}}, 2, false)
	if r.status != 409 || r.err.Code == nil || *r.err.Code != "session_busy" {
		t.Errorf("second request: %+v", r)
	}
	if status, _, e := do(t, "DELETE", ts.url+"/v1/sessions/busy", apiKey, ""); status != 409 {
		t.Errorf("DELETE while in use: %d %+v", status, e)
	}
	if r := chatSession(t, ts.url, "free", []chatMsg{{"user", "me too"}}, 2, false); r.status != 200 {
		t.Errorf("another session: %+v", r)
	}
	cancel()
	body.Close()
	waitFor(t, func() bool { return ts.eng.Stats().Running == 0 })
	// Cancelled: nothing was saved, and the session is free again.
	waitFor(t, func() bool {
		return chatSession(t, ts.url, "busy", []chatMsg{{"user", "me too"}}, 2, false).status == 200
	})
	if _, err := os.Stat(filepath.Join(dir, "busy.session")); err != nil {
		t.Errorf("after the second request: %v", err)
	}
}

// failingStore is a model whose SaveState, when fail is set, writes part
// of the state and then fails, as a crash or a full disk would.
type failingStore struct {
	*minimax01.Model
	fail atomic.Bool
}

func (f *failingStore) SaveState(w io.Writer, st model.State, meta []byte) error {
	if !f.fail.Load() {
		return f.Model.SaveState(w, st, meta)
	}
	w.Write(make([]byte, 1000))
	return errors.New("disk full")
}

// TestSessionSaveFailure checks that a save failing midway leaves the
// previous session file intact (and no temporary file), that the answer
// still arrives, and that the next turn resumes from the older state.
func TestSessionSaveFailure(t *testing.T) {
	dir := t.TempDir()
	tok := loadTokenizer(t, "qwen3")
	m := &failingStore{Model: randomModel(t, tok.VocabSize())}
	ts := start(t, setup{tok: "qwen3", model: m, server: server.Config{SessionDir: dir}})
	conv := []chatMsg{{"user", "Count to three."}}
	r1 := chatSession(t, ts.url, "s", conv, 4, false)
	if r1.status != 200 {
		t.Fatal(r1)
	}
	path := filepath.Join(dir, "s.session")
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m.fail.Store(true)
	conv = append(conv, chatMsg{"assistant", r1.text}, chatMsg{"user", "Again."})
	r2 := chatSession(t, ts.url, "s", conv, 4, false)
	if r2.status != 200 || r2.session != "resumed" || r2.compl != 4 {
		t.Fatalf("turn 2 with a failing save: %+v", r2)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, saved) {
		t.Error("a failed save changed the session file")
	}
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Errorf("files left: %v", files)
	}
	if !strings.Contains(get(t, ts.url+"/metrics", apiKey), "lightning_session_save_errors_total 1") {
		t.Error("the save error is not counted")
	}
	m.fail.Store(false)
	r3 := chatSession(t, ts.url, "s", append(conv, chatMsg{"assistant", r2.text}, chatMsg{"user", "Once more."}), 4, false)
	if r3.status != 200 || r3.session != "resumed" || r3.cached != r1.prompt+3 {
		t.Errorf("turn 3: %+v, want %d tokens resumed from turn 1's state", r3, r1.prompt+3)
	}
}
