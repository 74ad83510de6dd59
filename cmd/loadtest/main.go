// Command loadtest drives a Lightning server on loopback with concurrent
// streaming chat clients for a fixed time, cancelling some requests at
// random, and checks that the server stays healthy: no 5xx and no leaked
// sequences (running and queued back to zero, every submitted sequence
// finished, read from /metrics). It prints throughput and time-to-first-token
// percentiles and exits with status 1 if a check fails.
//
// It either starts the server itself (-bin and -model; the server listens on
// 127.0.0.1 on a free port and is stopped with SIGTERM at the end) or talks
// to one already running (-url, which must be a loopback address).
//
//	go build -o /tmp/lightning ./cmd/lightning
//	go run ./cmd/loadtest -bin /tmp/lightning -model /tmp/tiny -clients 32 -duration 30s
//
// It imports only the standard library: it sees the server exactly as any
// HTTP client does.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

type options struct {
	url, apiKey string
	clients     int
	duration    time.Duration
	cancelRate  float64
	maxTokens   int
	seed        uint64
}

func run() int {
	var o options
	bin := flag.String("bin", "", "lightning binary to start (with -model)")
	modelDir := flag.String("model", "", "model folder to serve (with -bin)")
	serveArgs := flag.String("serve-args", "-max-seqs 8 -batch-tokens 256", "extra flags for 'lightning serve'")
	flag.StringVar(&o.url, "url", "", "base URL of a running server on loopback, e.g. http://127.0.0.1:8080")
	flag.StringVar(&o.apiKey, "api-key", os.Getenv("LIGHTNING_API_KEY"), "API key, if the server needs one")
	flag.IntVar(&o.clients, "clients", 32, "concurrent streaming clients")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long clients keep sending requests")
	flag.Float64Var(&o.cancelRate, "cancel-rate", 0.2, "fraction of requests the client abandons at a random moment")
	flag.IntVar(&o.maxTokens, "max-tokens", 64, "largest max_tokens of a request (each picks 8…this)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the clients' random choices")
	flag.Parse()
	if (o.url == "") == (*modelDir == "") || (*modelDir != "") != (*bin != "") {
		fmt.Fprintln(os.Stderr, "loadtest: give either -url, or -bin and -model")
		flag.Usage()
		return 2
	}
	if o.clients < 1 || o.duration <= 0 || o.cancelRate < 0 || o.cancelRate > 1 || o.maxTokens < 8 {
		fmt.Fprintln(os.Stderr, "loadtest: need -clients ≥ 1, -duration > 0, -cancel-rate in [0, 1], -max-tokens ≥ 8")
		return 2
	}
	if *bin != "" {
		stop, u, err := startServer(*bin, *modelDir, strings.Fields(*serveArgs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			return 1
		}
		defer stop()
		o.url = u
	}
	if err := checkLoopback(o.url); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 2
	}
	ok, err := loadTest(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// checkLoopback refuses anything but a loopback server.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address; this tool only loads local servers", raw)
}

var listenRe = regexp.MustCompile(`msg=listening addr=(http://[^ ]+)`)

// startServer runs 'lightning serve' on a free loopback port and waits until
// it reports ready. stop sends SIGTERM and waits for the drain.
func startServer(bin, dir string, extra []string) (stop func(), base string, err error) {
	// The server logs at info (its "listening" line carries the port); only
	// warnings and errors are forwarded.
	args := append([]string{"serve", "-model", dir, "-host", "127.0.0.1", "-port", "0"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	found := make(chan string, 1)
	exited := make(chan struct{}) // closed once the server process has ended
	var mu sync.Mutex
	var tail []string // the server's last lines, for the error if it dies
	var waitErr error
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
			mu.Unlock()
			if m := listenRe.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				fmt.Fprintln(os.Stderr, "server:", line)
			}
		}
		waitErr = cmd.Wait() // after the last read, as os/exec requires
		close(exited)
	}()
	died := func() error {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Errorf("server exited (%v):\n  %s", waitErr, strings.Join(tail, "\n  "))
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	select {
	case base = <-found:
	case <-exited:
		return nil, "", died()
	case <-time.After(60 * time.Second):
		stop()
		return nil, "", errors.New("server did not start listening within 60s")
	}
	// Wait for the model.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return stop, base, nil
			}
		}
		select {
		case <-exited:
			return nil, "", died()
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", errors.New("server not ready within 10 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// result is one request's outcome.
type result struct {
	status    int           // HTTP status (0: transport error before a response)
	ttft      time.Duration // to the first content token; 0 if none
	tokens    int           // content chunks received (≈ tokens)
	cancelled bool          // abandoned by the client
	streamErr string        // an error event inside the stream
}

func loadTest(o options) (bool, error) {
	model, err := modelName(o)
	if err != nil {
		return false, err
	}
	system := "You are a helpful assistant. " + strings.Repeat("Answer briefly and precisely. ", 20)
	words := strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards quietly pack boxes of liquor jugs near the river bank at dawn")
	var mu sync.Mutex
	var results []result
	start := time.Now()
	end := start.Add(o.duration)
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(o.seed, uint64(c)))
			for time.Now().Before(end) {
				n := 3 + r.IntN(40)
				q := make([]string, n)
				for i := range q {
					q[i] = words[r.IntN(len(words))]
				}
				msgs := []map[string]string{{"role": "user", "content": strings.Join(q, " ") + "?"}}
				if r.IntN(2) == 0 { // half share a long system prompt (prefix reuse)
					msgs = append([]map[string]string{{"role": "system", "content": system}}, msgs...)
				}
				body, _ := json.Marshal(map[string]any{
					"model": model, "messages": msgs, "stream": true, "stream_options": map[string]bool{"include_usage": true},
					"max_tokens": 8 + r.IntN(o.maxTokens-7), "temperature": 0.8, "seed": r.Int64(),
				})
				var cancelAfter time.Duration
				if r.Float64() < o.cancelRate {
					cancelAfter = time.Duration(r.Int64N(int64(1500 * time.Millisecond)))
				}
				res := oneRequest(o, body, cancelAfter)
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				if res.status == http.StatusTooManyRequests {
					time.Sleep(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	leak, leakMsg, m := checkIdle(o)
	return report(o, results, elapsed, leak, leakMsg, m), nil
}

func modelName(o options) (string, error) {
	req, _ := http.NewRequest("GET", o.url+"/v1/models", nil)
	if o.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Data []struct{ ID string } `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Data) == 0 {
		return "", fmt.Errorf("GET /v1/models: status %d, %v", resp.StatusCode, err)
	}
	return v.Data[0].ID, nil
}

// oneRequest streams one chat completion, abandoning it after cancelAfter
// if that is positive.
func oneRequest(o options, body []byte, cancelAfter time.Duration) result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if cancelAfter > 0 {
		time.AfterFunc(cancelAfter, cancel)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", o.url+"/v1/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if o.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.apiKey)
	}
	t0 := time.Now()
	var res result
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		res.cancelled = ctx.Err() != nil
		return res
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return res
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			return res
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Error *struct{ Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &chunk); err != nil {
			res.streamErr = "bad chunk: " + err.Error()
			return res
		}
		if chunk.Error != nil {
			res.streamErr = chunk.Error.Message
			return res
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != nil && *c.Delta.Content != "" {
				if res.tokens == 0 {
					res.ttft = time.Since(t0)
				}
				res.tokens++
			}
		}
	}
	res.cancelled = ctx.Err() != nil
	return res
}

// checkIdle waits for the server to return to idle and compares the
// engine's counters: a leaked sequence keeps running/queued above zero or
// submitted above finished.
func checkIdle(o options) (bool, string, map[string]float64) {
	deadline := time.Now().Add(30 * time.Second)
	var m map[string]float64
	for {
		var err error
		m, err = scrape(o)
		if err == nil && m["lightning_running_sequences"] == 0 && m["lightning_queue_depth"] == 0 &&
			m["lightning_sequences_submitted_total"] == m["lightning_sequences_finished_total"] {
			return false, fmt.Sprintf("running 0, queued 0, submitted %.0f = finished %.0f", m["lightning_sequences_submitted_total"], m["lightning_sequences_finished_total"]), m
		}
		if time.Now().After(deadline) {
			return true, fmt.Sprintf("after 30s: running %.0f, queued %.0f, submitted %.0f, finished %.0f (err %v)",
				m["lightning_running_sequences"], m["lightning_queue_depth"], m["lightning_sequences_submitted_total"], m["lightning_sequences_finished_total"], err), m
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape reads the unlabelled samples of /metrics.
func scrape(o options) (map[string]float64, error) {
	req, _ := http.NewRequest("GET", o.url+"/metrics", nil)
	if o.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && !strings.HasPrefix(f[0], "#") && !strings.Contains(f[0], "{") {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out, sc.Err()
}

func report(o options, results []result, elapsed time.Duration, leak bool, leakMsg string, m map[string]float64) bool {
	statuses := map[int]int{}
	var ttfts []time.Duration
	tokens, completed, cancelled, streamErrs, server5xx := 0, 0, 0, 0, 0
	for _, r := range results {
		statuses[r.status]++
		tokens += r.tokens
		if r.status >= 500 {
			server5xx++
		}
		switch {
		case r.streamErr != "":
			streamErrs++
			fmt.Fprintln(os.Stderr, "stream error:", r.streamErr)
		case r.cancelled:
			cancelled++
		case r.status == 200:
			completed++
		}
		if r.ttft > 0 {
			ttfts = append(ttfts, r.ttft)
		}
	}
	sort.Slice(ttfts, func(i, j int) bool { return ttfts[i] < ttfts[j] })
	pct := func(p float64) time.Duration {
		if len(ttfts) == 0 {
			return 0
		}
		return ttfts[min(len(ttfts)-1, int(p*float64(len(ttfts))))]
	}
	fmt.Printf("loadtest: %d clients for %v against %s (cancel rate %.2f, max_tokens 8…%d)\n", o.clients, o.duration, o.url, o.cancelRate, o.maxTokens)
	fmt.Printf("requests: %d (completed %d, cancelled by client %d, stream errors %d); status counts %v\n",
		len(results), completed, cancelled, streamErrs, statuses)
	fmt.Printf("throughput: %d streamed tokens in %v = %.1f tok/s; %.2f requests/s\n",
		tokens, elapsed.Round(time.Millisecond), float64(tokens)/elapsed.Seconds(), float64(len(results))/elapsed.Seconds())
	fmt.Printf("TTFT: p50 %v, p90 %v, p99 %v, max %v (%d requests with a first token)\n",
		pct(0.50).Round(time.Millisecond), pct(0.90).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond), len(ttfts))
	if p := m["lightning_prompt_tokens_total"]; p > 0 {
		fmt.Printf("server: %.0f prompt tokens, %.0f (%.0f%%) restored from the prefix cache; %.0f sequences cancelled; %.0f engine steps\n",
			p, m["lightning_prompt_tokens_cached_total"], 100*m["lightning_prompt_tokens_cached_total"]/p, m["lightning_sequences_cancelled_total"], m["lightning_engine_steps_total"])
	}
	fmt.Printf("server 5xx: %d; leaked sequences: %v (%s)\n", server5xx, leak, leakMsg)
	ok := server5xx == 0 && !leak && streamErrs == 0
	if ok {
		fmt.Println("PASS")
	} else {
		fmt.Println("FAIL")
	}
	return ok
}
