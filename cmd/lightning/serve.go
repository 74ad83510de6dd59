package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/server"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "serve a model over an OpenAI-compatible HTTP API (chat, completions, streaming)",
		usage:   "[-model DIR] [-quant FMT] [-host 127.0.0.1] [-port 8080] [-api-key KEY] [-session-dir DIR] [-plan PLAN (-workers ADDR,… | -local-workers N)] [flags]",
		help: `Serves POST /v1/chat/completions and /v1/completions (streaming with "stream": true), GET /v1/models,
GET /health (200 when ready: loaded, not draining, every worker answering), GET /livez (200 while the process
answers at all: for liveness probes) and GET /metrics (Prometheus). Existing OpenAI clients work unchanged: point their base URL at
http://HOST:PORT/v1 and use the model name from /v1/models (the model folder's name unless -model-name).

The tokenizer (tokenizer.json or vocab.json + merges.txt) and chat template (tokenizer_config.json or
chat_template.jinja) are read from the model folder unless -tokenizer names another one. Without -model
it serves the built-in model mini (embedded in this binary) under the name "mini".

Concurrent requests are batched: every engine step runs all running sequences through one forward pass,
so the weights stream from memory once per step however many clients decode. Long prompts are prefilled
in chunks between decode steps: what a step's -batch-tokens leaves after the decoding streams is shared
equally between the prompts being read, so a short request behind a long prompt starts at the next step
(lightning_prefill_wait_seconds in /metrics is the time requests wait for their first prompt chunk). Requests beyond -max-seqs wait in a
queue of -max-queue; beyond that the server answers 429 with Retry-After. Each sequence reserves its
state memory (fixed part plus KV cache for prompt + max_tokens) against -max-memory before it starts.
The budget holds for the process: the Go memory limit (debug.SetMemoryLimit) is set to what the runtime
holds after loading plus the engine's bound (-max-memory, the prefix cache, spare states) plus 1/8, so the
garbage collector's headroom cannot double it; /metrics shows lightning_process_resident_bytes beside
lightning_memory_accounted_bytes, lightning_memory_bound_bytes and lightning_go_memory_limit_bytes
(-max-memory 0: no limit).
A prompt that cannot be read within -request-timeout at the measured prefill rate (less what the prefix
cache holds) is refused with 413 prompt_too_long_for_timeout, saying how long it would take; the rate is
measured at the contexts served so far, which long prompts only slow down, so the estimate errs on the
fast side and nothing that could finish is refused. A prompt that arrives before any rate is measured
is checked again at every step of its prefill and ended the same way as soon as it cannot finish.

Prefix reuse: states are snapshotted at the end of prompts, of shared system prompts and of each
conversation turn into a cache of -prefix-cache-mb; a request that extends a cached prefix (the next turn
of a chat, the same system prompt) skips prefilling it. "usage.prompt_tokens_details.cached_tokens"
reports how many prompt tokens were reused. A snapshot inside or at the end of a prompt copies the state,
so it is taken only from -cache-min-tokens (32) tokens on: a shorter prefix is cheaper to read again. The
state a finished answer leaves is handed to the cache without a copy, so the next turn of even a short
chat starts after the previous reply.

Sessions (-session-dir DIR, off by default) keep a conversation's model state on disk, so its next turn
reads only the new messages, even after a restart (the prefix cache lives in memory only). A chat request
names one with the extension field "session": "NAME" (1-128 of A-Z a-z 0-9 _ . -, not starting with
'.'); it is stored as DIR/NAME.session, rewritten atomically after every answer that ends with a stop
token or max_tokens. The next request naming it resumes from the saved state if its rendered conversation
extends the text the state absorbed (the model keeps seeing its own generated tokens); otherwise the
whole prompt is read and the session replaced. The response header X-Lightning-Session says "resumed",
"new" or "mismatch", and cached_tokens counts the tokens not re-read. One request at a time per session
(else 409 session_busy). A file saved by "lightning chat -session FILE" can be copied in as
DIR/NAME.session: it is read as well and saved back in the server's format. A corrupt, truncated or
other model's file gives 409 session_invalid, saying which kind of file it was read as; nothing
is overwritten until DELETE. GET /v1/sessions lists them (id, tokens, bytes, created_at, modified_at),
GET /v1/sessions/NAME checks one and shows its conversation, DELETE /v1/sessions/NAME removes it.
repetition_penalty sees only the tokens read by the request. One server per folder.

Security: with -api-key (or $LIGHTNING_API_KEY) every endpoint except /health and /livez needs
"Authorization: Bearer KEY". Bodies over -max-body-mb are refused with 413. The server binds to
127.0.0.1 by default; use -host 0.0.0.0 to listen on every interface.

Tools: MiniMax's <tool_calls> output becomes OpenAI "tool_calls". tool_choice "required" or
{"type": "function", "function": {"name": ...}} forces a call: sampling is constrained to the tool-call
format with the allowed names and a JSON object for the arguments, with at most one whitespace byte in a
row, and the block is closed before max_tokens runs out: the reply is "tool_calls" with finish_reason
"tool_calls" (unless max_tokens is too small for any call). Calls are read in any JSON layout
(one per line, as MiniMax writes them, or pretty-printed). An assistant message with "content": null
and tool_calls (OpenAI's tool-call turn) reaches the template as vLLM passes it: "" for string-content
templates, an empty part list for MiniMax's. response_format {"type": "json_object"}
constrains the reply to one JSON object.

Reasoning: MiniMax-M1 thinks before it answers, in <think>…</think> at the start of its reply. With
-reasoning-parser minimax_m1 that part goes to the message's "reasoning_content" (streamed as its own
deltas) and only the answer to "content", as vLLM's reasoning parsers do; a reply cut off while thinking
is all reasoning. A recurrent state cannot forget tokens it has read, so a session resumes the next turn
only if the client sends the reply back whole, thinking included; otherwise the turn re-reads the
conversation. The prefix cache still skips everything up to the previous reply.

Across processes: with -plan and -workers ADDR,… (or -local-workers N, which starts the workers on this
machine) the model's layers and experts run on 'lightning worker' processes and this process keeps the
embedding and LM head; the API is the same. -quant quantizes the LM head here as one process would; the
workers need the same -quant (-local-workers passes it on; workers quantized otherwise are refused). When a
worker fails, the requests of that step get 503 and the prefix cache is emptied (a restarted worker has lost
the states it held). -wire bf16 sends the hidden states to and from the workers as bf16, half the bytes, at
the cost of a bf16 rounding of each stage's input and output (docs/distributed.md measures it). Sessions
need the model in this process.

SIGINT/SIGTERM drain the server: /health turns to "draining", new requests get 503, requests in flight
finish for up to -drain-timeout, then the rest are aborted.

Example:
  lightning random-model -preset tiny -tokenizer /path/to/qwen3-tokenizer -o /tmp/tiny
  lightning serve -model /tmp/tiny -port 8080
  lightning serve -model /tmp/tiny -quant q8 -plan pp=2 -local-workers 2
  curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}'`,
		run: runServe,
	})
}

func runServe(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", modelFlagHelp)
	tokDir := fs.String("tokenizer", "", "tokenizer folder (default: the model folder)")
	name := fs.String("model-name", "", "model id for clients (default: the model folder's name)")
	host := fs.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	port := fs.Int("port", 8080, "TCP port (0 picks a free one, printed at startup)")
	apiKey := fs.String("api-key", "", "require 'Authorization: Bearer KEY' (default $LIGHTNING_API_KEY)")
	maxMem := fs.String("max-memory", "auto", "memory budget for sequence states, e.g. 8GiB, 512MiB or bytes; auto = 70% of available memory minus the weights; 0 = unlimited")
	maxSeqs := fs.Int("max-seqs", 8, "sequences decoding at once (the batch size of a decode step)")
	maxQueue := fs.Int("max-queue", 64, "requests that may wait for a slot; beyond it the server answers 429")
	batchTokens := fs.Int("batch-tokens", defaultBatchTokens, "tokens per engine step (decode tokens + prefill chunks); smaller steps shorten the pauses of decoding streams while a long prompt is read, larger ones read prompts faster")
	prefixMB := fs.Int64("prefix-cache-mb", 1024, "prefix cache budget in MiB (0 turns prefix reuse off)")
	ckEvery := fs.Int("checkpoint-every", 2048, "also snapshot long prompts every this many tokens")
	cacheMin := fs.Int("cache-min-tokens", 32, "shortest prompt prefix the prefix cache copies a state for (a finished turn is kept whatever its length)")
	maxTokens := fs.Int("max-tokens", 4096, "largest max_tokens a request may ask for (and the default)")
	timeout := fs.Duration("request-timeout", 10*time.Minute, "longest time a request may take (0 = no limit)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may finish")
	bodyMB := fs.Int64("max-body-mb", 8, "largest request body in MiB")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	sessionDir := fs.String("session-dir", "", "save chat sessions (\"session\": NAME) in this folder, created if missing (default: sessions off)")
	profile := fs.Duration("profile", 0, "log the op-by-op profile of the prefill and decode steps of each such period (e.g. 1m; 0 = off)")
	quantFmt := fs.String("quant", "", "quantize the weights at load to this format (q8, q8b32, q4g64, …; see 'lightning quantize'); with -plan, the hub's LM head and the workers' layers alike")
	reasoning := fs.String("reasoning-parser", "none", "minimax_m1 (or think): send a chat reply's leading <think>…</think> as reasoning_content; none: leave it in content")
	df := addDistFlags(fs, true)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	switch {
	case *port < 0 || *port > 65535:
		return fmt.Errorf("%w: -port %d outside 0…65535", errUsage, *port)
	case *maxSeqs < 1 || *maxQueue < 0 || *batchTokens <= *maxSeqs:
		return fmt.Errorf("%w: need -max-seqs ≥ 1, -max-queue ≥ 0 and -batch-tokens > -max-seqs", errUsage)
	case *prefixMB < 0 || *bodyMB < 1 || *maxTokens < 1 || *ckEvery < 1 || *cacheMin < 1:
		return fmt.Errorf("%w: -prefix-cache-mb ≥ 0, -max-body-mb ≥ 1, -max-tokens ≥ 1, -checkpoint-every ≥ 1 and -cache-min-tokens ≥ 1 required", errUsage)
	case *profile < 0:
		return fmt.Errorf("%w: -profile %v: want a period such as 1m, or 0 for off", errUsage, *profile)
	case *profile > 0 && df.enabled():
		return fmt.Errorf("%w: -profile times the steps of a model run in this process, not with workers", errUsage)
	}
	switch *reasoning {
	case "none", "minimax_m1", "think":
	default:
		return fmt.Errorf("%w: -reasoning-parser %q, want none, minimax_m1 or think", errUsage, *reasoning)
	}
	if *sessionDir != "" {
		if err := os.MkdirAll(*sessionDir, 0o700); err != nil {
			return fmt.Errorf("%w: -session-dir: %v", errUsage, err)
		}
	}
	spec, err := quantOption(*quantFmt)
	if err != nil {
		return err
	}
	budget, auto, err := parseBytes(*maxMem)
	if err != nil {
		return fmt.Errorf("%w: -max-memory: %v", errUsage, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: -log-level: %v", errUsage, err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch *logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(fs.Output(), hopts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(fs.Output(), hopts))
	default:
		return fmt.Errorf("%w: -log-format %q, want text or json", errUsage, *logFormat)
	}
	if *apiKey == "" {
		*apiKey = os.Getenv("LIGHTNING_API_KEY")
	}
	if *tokDir == "" {
		*tokDir = *dir
	}
	if *name == "" {
		*name = servedName(*dir)
	}

	// Listen first, so /health answers "loading" while the model loads.
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		ModelName: *name, APIKey: *apiKey, MaxBodyBytes: *bodyMB << 20, MaxTokens: *maxTokens,
		RequestTimeout: *timeout, Logger: logger, SessionDir: *sessionDir, SplitReasoning: *reasoning != "none",
	})
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("listening", "addr", "http://"+ln.Addr().String(), "auth", *apiKey != "")

	start := time.Now()
	var m model.Model
	opt := minimax01.Options{MaxBatchTokens: *batchTokens, Quant: spec}
	if df.enabled() {
		var closeModel func()
		m, _, closeModel, err = openModel(*dir, opt, df, fs)
		if err != nil {
			hs.Close()
			return err
		}
		defer closeModel()
	} else {
		if err := df.checkSingle(); err != nil {
			hs.Close()
			return err
		}
		if *dir == "" {
			logger.Info("model", "using", builtin.Describe())
		}
		mm, err := loadModelAt(*dir, opt)
		if err != nil {
			hs.Close()
			return err
		}
		defer mm.Close()
		for _, w := range mm.Warnings {
			logger.Warn("model", "warning", w)
		}
		if *profile > 0 {
			stop := logProfiles(mm, *profile, logger)
			defer stop()
		}
		m = mm
	}
	tok, err := loadTokenizer(*tokDir)
	if err != nil {
		hs.Close()
		return fmt.Errorf("%w (pass -tokenizer DIR if the tokenizer lives elsewhere)", err)
	}
	info := m.Info()
	if tok.VocabSize() > info.VocabSize {
		hs.Close()
		return fmt.Errorf("tokenizer uses %d ids but the model's vocabulary has %d", tok.VocabSize(), info.VocabSize)
	}
	chatCfg, err := loadChatConfig(*tokDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		chatCfg = nil
	case err != nil:
		hs.Close()
		return err
	case len(chatCfg.Templates) == 0:
		chatCfg = nil
	}
	if chatCfg == nil {
		logger.Warn("no chat template: /v1/chat/completions is off, /v1/completions works")
	}
	if auto {
		budget, err = autoBudget(info.WeightBytes, *prefixMB<<20)
		if err != nil {
			hs.Close()
			return err
		}
	}
	perSeq := info.StateBytes + info.BytesPerTok*int64(*maxTokens)
	if budget > 0 && budget < info.StateBytes+info.BytesPerTok {
		hs.Close()
		return fmt.Errorf("-max-memory %s is less than one sequence's state (%s): no request could run; give at least %s (%s fits one sequence at -max-tokens %d)",
			memString(budget), human(float64(info.StateBytes), "B"), human(float64(info.StateBytes+info.BytesPerTok), "B"), human(float64(perSeq), "B"), *maxTokens)
	}
	if budget > 0 && budget < perSeq {
		logger.Warn("-max-memory fits no sequence of -max-tokens; requests with a long prompt or max_tokens will be refused",
			"max_memory", memString(budget), "per_seq_at_max_tokens", human(float64(perSeq), "B"), "max_tokens", *maxTokens)
	}
	queue := *maxQueue
	if queue == 0 {
		queue = -1 // engine.Config's 0 means its default; -max-queue 0 means no waiting
	}
	eng, err := engine.New(m, engine.Config{
		MaxSeqs: *maxSeqs, MaxQueue: queue, BatchTokens: *batchTokens, MaxMemory: budget,
		PrefixCacheBytes: *prefixMB << 20, CheckpointEvery: *ckEvery, CacheMinTokens: *cacheMin,
	})
	if err != nil {
		hs.Close()
		return err
	}
	if err := srv.Attach(server.Backend{Engine: eng, Tokenizer: tok, Chat: chatCfg, StopTokens: server.DefaultStopTokens(tok)}); err != nil {
		eng.Close()
		hs.Close()
		return err
	}
	goLimit := setMemoryLimit(eng.MemoryBound())
	logger.Info("ready", "model", *name, "load", time.Since(start).Round(time.Millisecond), "weights", human(float64(info.WeightBytes), "B"),
		"state_per_seq", human(float64(info.StateBytes), "B"), "kv_per_token", human(float64(info.BytesPerTok), "B"),
		"max_memory", memString(budget), "seqs_fitting_at_max_tokens", fitting(budget, perSeq), "max_seqs", *maxSeqs,
		"go_memory_limit", memString(goLimit))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err := <-served:
		eng.Close()
		return err
	case s := <-sig:
		logger.Info("draining", "signal", s.String(), "deadline", *drain)
	}
	// Keep listening while draining: new requests get 503 with Retry-After
	// and /health says "draining", so clients and load balancers move on.
	srv.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	go func() { // a second signal stops at once
		<-sig
		cancel()
	}()
	if err := eng.Wait(ctx); err != nil {
		logger.Warn("drain deadline passed; aborting the remaining requests")
	}
	// Abort whatever is left: each handler then sends its client an error
	// (503) and returns, which Shutdown waits for.
	eng.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := hs.Shutdown(ctx2); err != nil {
		hs.Close()
	}
	st := eng.Stats()
	logger.Info("stopped", "finished", st.Finished, "aborted", st.Aborted, "generated_tokens", st.GeneratedTokens)
	return nil
}

// memoryLimitSlack is the share of the engine's memory bound added to the
// Go memory limit for what the engine does not account for: request
// buffers, token texts, allocator fragmentation.
const memoryLimitSlack = 8 // 1/8

// setMemoryLimit makes the memory budget hold for the process: a soft Go
// memory limit of what the runtime holds now (after loading the model: any
// weight copies, the step's scratch) plus the engine's bound (budget, spare
// states, prefix cache) plus 1/memoryLimitSlack of it. Without it, the
// garbage collector's headroom (GOGC=100) lets the heap grow to about twice
// what the budget counts. It returns the limit, 0 for none (no bound).
func setMemoryLimit(bound int64) int64 {
	if bound <= 0 {
		return 0
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := memoryLimit(int64(ms.Sys-ms.HeapReleased), bound)
	debug.SetMemoryLimit(limit)
	return limit
}

// memoryLimit is the Go memory limit for a runtime holding held bytes and
// an engine bound: held + bound + bound/memoryLimitSlack.
func memoryLimit(held, bound int64) int64 {
	return held + bound + bound/memoryLimitSlack
}

// parseBytes reads a size: "auto", a plain byte count, or a number with a
// unit (KB, MB, GB, KiB, MiB, GiB, TB, TiB).
func parseBytes(s string) (n int64, auto bool, err error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "auto") {
		return 0, true, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1}}
	num, mult := strings.ToLower(s), 1.0
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("%q is not a size (want e.g. 8GiB, 512MiB, 1000000 or auto)", s)
	}
	return int64(v * mult), false, nil
}

// autoBudget is 70% of the available memory (Linux /proc/meminfo) after the
// weights and the prefix cache.
func autoBudget(weights, cache int64) (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("-max-memory auto needs /proc/meminfo (%v); pass a size", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				break
			}
			b := int64(float64(kb<<10-weights-cache) * 0.7)
			if b <= 0 {
				return 0, fmt.Errorf("-max-memory auto: %d MiB available is not enough for the weights (%d MiB) and prefix cache; pass a size", kb>>10, weights>>20)
			}
			return b, nil
		}
	}
	return 0, errors.New("-max-memory auto: no MemAvailable in /proc/meminfo; pass a size")
}

func memString(b int64) string {
	if b == 0 {
		return "unlimited"
	}
	return human(float64(b), "B")
}

func fitting(budget, perSeq int64) string {
	if budget == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(budget/perSeq, 10)
}

// logProfiles measures the machine's limits, turns the model's profile on
// and logs the prefill and decode steps of every period that had some; the
// returned function stops it.
func logProfiles(m *minimax01.Model, every time.Duration, logger *slog.Logger) (stop func()) {
	fma, bw := quickLimits()
	logger.Info("profiling", "every", every, "fma_peak_gflops", fmt.Sprintf("%.1f", fma), "read_bandwidth_gbs", fmt.Sprintf("%.1f", bw))
	m.SetProfile(&trace.Profile{})
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			phases := m.TakeProfile()
			for ph := range trace.NumPhases {
				sp := newStepProfile("serve", ph, &phases[ph], 0, fma, bw)
				if sp == nil {
					continue
				}
				logger.Info("profile", "phase", sp.Phase, "steps", sp.Steps, "tokens_per_step", fmt.Sprintf("%.1f", sp.TokensPerStep),
					"step_ms", fmt.Sprintf("%.3f", sp.StepMs), "top", sp.summary())
			}
		}
	}()
	return func() { close(done) }
}
