package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/server"
	"github.com/lightninglm/lightning/tokenizer"
)

// benchModel loads the random BF16 m300 model from the system temp folder,
// writing it on first use (the folder the engine's and model's benchmarks
// share).
func benchModel(b *testing.B, batchTokens int) *minimax01.Model {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "lightning-bench-m300-bf16-seed1")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		c, err := minimax01.PresetConfig("m300")
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		if err := minimax01.WriteRandom(dir, c, minimax01.RandomOptions{DType: quant.BF16, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	m, err := minimax01.Load(dir, minimax01.Options{MaxBatchTokens: batchTokens})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// longText returns deterministic prose of about n tokens.
func longText(tok *tokenizer.Tokenizer, n int) string {
	words := strings.Fields("the a of river mountain engine quietly seven blue under history market " +
		"winter garden letter orbit signal copper lantern morning argue build carry describe")
	r := rand.New(rand.NewPCG(3, 4))
	var sb strings.Builder
	for len(tok.Encode(sb.String(), false)) < n {
		for range 200 {
			sb.WriteString(words[r.IntN(len(words))])
			sb.WriteByte(' ')
		}
		sb.WriteString(".\n")
	}
	return sb.String()
}

// timedChat streams a greedy chat request and returns the time to its first
// generated text, the whole request's time, the answer and its usage.
func timedChat(b *testing.B, url, session string, msgs []chatMsg, maxTokens int) (ttft, total time.Duration, text string, prompt, cached int) {
	b.Helper()
	body := map[string]any{"model": modelName, "messages": msgs, "max_tokens": maxTokens, "temperature": 0,
		"stream": true, "stream_options": map[string]any{"include_usage": true}}
	if session != "" {
		body["session"] = session
	}
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	t0 := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		ev, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || ev == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			}
			Usage *struct {
				PromptTokens        int `json:"prompt_tokens"`
				PromptTokensDetails struct {
					CachedTokens int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			}
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			b.Fatal(err)
		}
		for _, ch := range c.Choices {
			if ttft == 0 && (ch.Delta.Content != "" || ch.FinishReason != nil) {
				ttft = time.Since(t0)
			}
			text += ch.Delta.Content
		}
		if c.Usage != nil {
			prompt, cached = c.Usage.PromptTokens, c.Usage.PromptTokensDetails.CachedTokens
		}
	}
	return ttft, time.Since(t0), text, prompt, cached
}

// metricValue reads one sample of /metrics.
func metricValue(b *testing.B, url, name string) float64 {
	for _, line := range strings.Split(get(b, url+"/metrics", apiKey), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}

// BenchmarkSessionTTFT measures the time to first token of turn 2 of a
// conversation whose first user message is ~8K tokens (m300, BF16), four
// ways: read in full (no session, no prefix cache), resumed from the
// in-memory prefix cache, resumed from a session file, and resumed from the
// session file by a restarted server (turn 3).
//
//	go test -run '^$' -bench SessionTTFT -benchtime 1x ./server
func BenchmarkSessionTTFT(b *testing.B) {
	m := benchModel(b, 512)
	tok := loadTokenizer(b, "llama2") // the m300 vocabulary is 32000, like Llama 2's
	history := longText(tok, 8000)
	ec := engine.Config{BatchTokens: 512}
	for range b.N {
		dir := b.TempDir()
		sessionOn := func() *testServer {
			return start(b, setup{model: m, template: "qwen3", engine: ec, server: server.Config{SessionDir: dir}})
		}
		turn1 := []chatMsg{{"user", history}}
		next := func(conv []chatMsg, answer, question string) []chatMsg {
			return append(append([]chatMsg(nil), conv...), chatMsg{"assistant", answer}, chatMsg{"user", question})
		}

		// Sessions: turn 1 reads everything and saves; turn 2 resumes.
		ts := sessionOn()
		cold, _, a1, p1, _ := timedChat(b, ts.url, "bench", turn1, 16)
		turn2 := next(turn1, a1, "Summarise that in one line.")
		warm, total, a2, p2, c2 := timedChat(b, ts.url, "bench", turn2, 16)
		if c2 == 0 {
			b.Fatalf("turn 2 did not resume (%d prompt tokens)", p2)
		}
		save := metricValue(b, ts.url, "lightning_session_save_seconds_sum") / metricValue(b, ts.url, "lightning_session_save_seconds_count")
		load := metricValue(b, ts.url, "lightning_session_load_seconds_sum")
		var list struct{ Data []sessionObject }
		json.Unmarshal([]byte(get(b, ts.url+"/v1/sessions", apiKey)), &list)

		// No session, no prefix cache: turn 2 is read in full.
		plain := start(b, setup{model: m, template: "qwen3", engine: ec})
		full, _, _, pf, _ := timedChat(b, plain.url, "", turn2, 16)

		// No session, prefix cache (in memory): turn 1 then turn 2.
		pc := ec
		pc.PrefixCacheBytes, pc.CacheMinTokens = 1<<30, 32
		cached := start(b, setup{model: m, template: "qwen3", engine: pc})
		timedChat(b, cached.url, "", turn1, 16)
		prefix, _, _, pp, cp := timedChat(b, cached.url, "", turn2, 16)

		// A restarted server resumes turn 3 from the file.
		ts2 := sessionOn()
		restart, _, _, p3, c3 := timedChat(b, ts2.url, "bench", next(turn2, a2, "Thanks."), 16)
		if c3 == 0 {
			b.Fatal("turn 3 after a restart did not resume")
		}
		b.Logf("turn 1: %d prompt tokens, TTFT %v (full read)", p1, cold.Round(time.Millisecond))
		b.Logf("turn 2 without session or cache: %d prompt tokens read, TTFT %v", pf, full.Round(time.Millisecond))
		b.Logf("turn 2 with the prefix cache: %d of %d cached, TTFT %v", cp, pp, prefix.Round(time.Millisecond))
		b.Logf("turn 2 with the session: %d of %d resumed, TTFT %v (load %.0f ms), request %v (save %.0f ms); file %d bytes",
			c2, p2, warm.Round(time.Millisecond), load*1e3, total.Round(time.Millisecond), save*1e3, list.Data[0].Bytes)
		b.Logf("turn 3 after a restart: %d of %d resumed, TTFT %v", c3, p3, restart.Round(time.Millisecond))
		b.ReportMetric(full.Seconds(), "full-ttft-s")
		b.ReportMetric(prefix.Seconds(), "prefix-ttft-s")
		b.ReportMetric(warm.Seconds(), "session-ttft-s")
		b.ReportMetric(restart.Seconds(), "restart-ttft-s")
		b.ReportMetric(full.Seconds()/warm.Seconds(), "speedup")
	}
}
