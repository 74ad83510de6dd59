package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/lightninglm/lightning/dist"
	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// childEnv makes the test binary act as the lightning command, so that
// -local-workers (which starts os.Executable()) runs real worker processes.
const childEnv = "LIGHTNING_CLI_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stderr))
	}
	code := m.Run()
	if qwenDir != "" {
		os.RemoveAll(filepath.Dir(qwenDir)) // the shared Qwen3 model of qwenModel
	}
	os.Exit(code)
}

// TestLocalWorkersReproduceGolden runs 'logits' and 'generate' with worker
// processes on loopback for each plan and compares with the official
// reference of tiny-a: logits within 2e-4 (the golden tolerance), greedy
// tokens identical. The sp plans take p257 in one piece and also generate
// from p255, so both prompts are cut into chunks over the ranks (at least
// DefaultSPMinChunk tokens each).
func TestLocalWorkersReproduceGolden(t *testing.T) {
	t.Setenv(childEnv, "1")
	dir := filepath.Join(goldenDir, "tiny-a")
	man := readManifest(t, dir)
	ref, err := safetensors.Open(filepath.Join(dir, "prefill.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, plan := range []struct {
		plan    string
		workers string
		chunk   string // logits -chunk
		greedy  string // the greedy prompts besides p7
	}{{"pp=2", "2", "100", ""}, {"ep=2", "2", "100", ""}, {"pp=2,ep=2", "4", "100", ""}, {"sp=2", "2", "257", "p255"}, {"sp=4", "4", "257", "p255"}} {
		for _, c := range man.Cases {
			switch {
			case c.Kind == "prefill" && c.Prompt == "p257":
				out := filepath.Join(t.TempDir(), "logits.safetensors")
				_, stderr, code := runCLI(t, "logits", "-model", dir, "-ids", joinIDs(man.Prompts[c.Prompt]), "-chunk", plan.chunk,
					"-plan", plan.plan, "-local-workers", plan.workers, "-o", out)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", plan.plan, code, stderr)
				}
				f, err := safetensors.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := f.Tensor("logits")
				want, _ := ref.Tensor(c.Tensor)
				if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
					t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
				}
				var worst float64
				for i, v := range got.F32() {
					worst = max(worst, math.Abs(float64(v-want.F32()[i])))
				}
				f.Close()
				if worst > 2e-4 {
					t.Errorf("%s %s: max |Δ| %.3g against the reference", plan.plan, c.Name, worst)
				}
			case c.Kind == "greedy" && (c.Prompt == "p7" || c.Prompt == plan.greedy):
				out, stderr, code := runCLI(t, "generate", "-model", dir, "-ids", joinIDs(man.Prompts[c.Prompt]), "-n", fmt.Sprint(c.NewTokens),
					"-plan", plan.plan, "-local-workers", plan.workers, "-v")
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", plan.plan, code, stderr)
				}
				if got, want := strings.TrimSpace(out), joinIDs(c.Generated); got != want {
					t.Errorf("%s %s: got %s, want %s", plan.plan, c.Name, got, want)
				}
				if !strings.Contains(stderr, "traffic: prefill") || !strings.Contains(stderr, "listening") && !strings.Contains(stderr, "holds") {
					t.Errorf("%s: -v printed no worker memory or traffic:\n%s", plan.plan, stderr)
				}
			}
		}
	}
}

// TestLocalWorkersQuant runs 'logits' and 'generate' with -quant through
// -local-workers (which pass -quant on to the workers they start) and in one
// process: with pp=2 and one micro-batch per step the hub quantizes its LM
// head and the workers their layers exactly as the single process does, so
// the logits are bitwise the same and the greedy tokens identical. (ep and
// sp reorder float sums, which int8-rounded activations can turn into
// larger differences; dist's TestQuantizedPlansMatchSingleProcess measures
// them.) Then a hub with -quant refuses workers started without it.
func TestLocalWorkersQuant(t *testing.T) {
	t.Setenv(childEnv, "1")
	dir := filepath.Join(goldenDir, "tiny-a")
	man := readManifest(t, dir)
	logits := func(args ...string) []float32 {
		t.Helper()
		out := filepath.Join(t.TempDir(), "logits.safetensors")
		_, stderr, code := runCLI(t, append([]string{"logits", "-model", dir, "-ids", joinIDs(man.Prompts["p257"]), "-o", out}, args...)...)
		if code != 0 {
			t.Fatalf("logits %v: exit %d: %s", args, code, stderr)
		}
		f, err := safetensors.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		l, _ := f.Tensor("logits")
		return slices.Clone(l.F32()) // a view of the file, closed on return
	}
	for _, q := range []string{"q8", "q4g64"} {
		want := logits("-quant", q)
		got := logits("-quant", q, "-plan", "pp=2", "-local-workers", "2", "-micro-batches", "1")
		var worst float64
		for i, v := range got {
			worst = max(worst, math.Abs(float64(v-want[i])))
		}
		if len(got) != len(want) || worst != 0 {
			t.Errorf("-quant %s: pp=2 logits (%d) differ from one process's (%d) by up to %g", q, len(got), len(want), worst)
		}
		gen := func(args ...string) string {
			out, stderr, code := runCLI(t, append([]string{"generate", "-model", dir, "-ids", joinIDs(man.Prompts["p7"]), "-n", "16", "-quant", q}, args...)...)
			if code != 0 {
				t.Fatalf("generate %v: exit %d: %s", args, code, stderr)
			}
			return strings.TrimSpace(out)
		}
		if got, want := gen("-plan", "pp=2", "-local-workers", "2"), gen(); got != want {
			t.Errorf("-quant %s: pp=2 generates %s, one process %s", q, got, want)
		}
	}
	const tok = "quant-test-token"
	var addrs []string
	for r := range 2 {
		_, a, _ := workerChild(t, "-model", dir, "-plan", "pp=2", "-rank", fmt.Sprint(r), "-token", tok)
		addrs = append(addrs, a)
	}
	_, stderr, code := runCLI(t, "logits", "-model", dir, "-ids", "1,2,3", "-quant", "q8", "-plan", "pp=2", "-workers", strings.Join(addrs, ","),
		"-token", tok, "-o", filepath.Join(t.TempDir(), "l.safetensors"))
	if code != 1 || !strings.Contains(stderr, "has float weights, this hub quantized") || !strings.Contains(stderr, "same -quant") {
		t.Errorf("a q8 hub with float workers: exit %d: %s", code, stderr)
	}
}

// TestWireFlag runs 'logits' on p257 through pp=2 local workers with fp32
// and with bf16 on the wire: bf16 saves 2 bytes per float of each row to
// and from each stage, 2·257·64·2 = 65792 B each way on tiny-a (dim 64), and
// moves the logits (dist's TestWireBF16 checks the values).
func TestWireFlag(t *testing.T) {
	t.Setenv(childEnv, "1")
	dir := filepath.Join(goldenDir, "tiny-a")
	man := readManifest(t, dir)
	run := func(wire string) (sent, recv int64, logits []float32) {
		out := filepath.Join(t.TempDir(), "logits.safetensors")
		_, stderr, code := runCLI(t, "logits", "-model", dir, "-ids", joinIDs(man.Prompts["p257"]), "-plan", "pp=2", "-local-workers", "2",
			"-wire", wire, "-o", out)
		if code != 0 {
			t.Fatalf("-wire %s: exit %d: %s", wire, code, stderr)
		}
		if _, err := fmt.Sscanf(stderr[strings.Index(stderr, "hub sent"):], "hub sent %d B, received %d B", &sent, &recv); err != nil {
			t.Fatalf("-wire %s: no traffic line: %v\n%s", wire, err, stderr)
		}
		f, err := safetensors.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		l, _ := f.Tensor("logits")
		return sent, recv, slices.Clone(l.F32())
	}
	s32, r32, l32 := run("fp32")
	s16, r16, l16 := run("bf16")
	if s32-s16 != 65792 || r32-r16 != 65792 {
		t.Errorf("fp32 sent %d B, received %d; bf16 %d and %d: want 65792 B fewer each way", s32, r32, s16, r16)
	}
	if slices.Equal(l32, l16) {
		t.Error("bf16 on the wire gave the fp32 logits")
	}
}

func TestDistFlagErrors(t *testing.T) {
	dir := filepath.Join(goldenDir, "tiny-a")
	gguf := filepath.Join(t.TempDir(), "m.gguf")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "pp=2"}, "-plan needs -workers"},
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "pp=2", "-local-workers", "3"}, "has 2 workers"},
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "sp=2,pp=2", "-local-workers", "4"}, "not yet supported"},
		{[]string{"worker", "-model", dir, "-plan", "pp=2", "-rank", "0"}, "token is required"},
		{[]string{"worker", "-model", dir, "-plan", "pp=2", "-rank", "2", "-token", "t"}, "rank 2 outside"},
		{[]string{"worker", "-model", dir, "-plan", "pp=2", "-rank", "0", "-token", "t", "-listen", "0.0.0.0:0"}, "without TLS"},
		// A GGUF file loads whole only; the check comes before it is read.
		{[]string{"worker", "-model", gguf, "-plan", "pp=2", "-rank", "0", "-token", "t"}, "GGUF file cannot be served across processes"},
		{[]string{"logits", "-model", gguf, "-ids", "1", "-plan", "pp=2", "-local-workers", "2", "-o", gguf + ".out"}, "GGUF file cannot be served across processes"},
		{[]string{"inspect", "-model", gguf, "-plan", "pp=2"}, "GGUF file cannot be loaded in parts"},
		{[]string{"logits", "-model", dir, "-ids", "1", "-wire", "bf16", "-o", gguf + ".out"}, "-wire bf16 needs -plan"},
		{[]string{"generate", "-model", dir, "-ids", "1", "-plan", "pp=2", "-local-workers", "2", "-wire", "f16"}, "want fp32 or bf16"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
}

// TestInspectPlan checks inspect -plan's rows: the hub and one row per
// worker, each worker of pp=4 holding a quarter of the layers and every
// expert, and the rows adding up to the whole q8 model.
func TestInspectPlan(t *testing.T) {
	out, stderr, code := runCLI(t, "inspect", "-preset", "minimax-text-01", "-plan", "pp=4", "-quant", "q8", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r inspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Plan != "pp=4" || len(r.PlanMemory) != 5 || r.PlanMemory[0].Process != "hub" {
		t.Fatalf("plan %q with %d rows: %+v", r.Plan, len(r.PlanMemory), r.PlanMemory)
	}
	c, _ := minimax01.PresetConfig("minimax-text-01")
	q := minimax01.DefaultQuantSpec(quant.Q8)
	var sum int64
	for i, m := range r.PlanMemory {
		sum += m.WeightBytes
		if i > 0 && m.Holds != fmt.Sprintf("layers [%d,%d) attention experts [0,32)", (i-1)*20, i*20) {
			t.Errorf("%s holds %q", m.Process, m.Holds)
		}
	}
	if want := c.PartBytes(nil, quant.BF16, &q); sum != want {
		t.Errorf("processes hold %d B, the q8 model %d B", sum, want)
	}
	// The hub holds the ends as -quant q8 makes them: the bf16 embedding
	// (200064 × 6144 × 2 B) and the q8 LM head (a byte per weight and an F32
	// scale per row), plus the bf16 final norm.
	if got, want := r.PlanMemory[0].WeightBytes, int64(200064*6144*2+200064*6144+200064*4+6144*2); got != want {
		t.Errorf("the hub holds %d B, want %d (bf16 embedding, q8 head)", got, want)
	}
	if _, stderr, code := runCLI(t, "inspect", "-preset", "tiny", "-plan", "sp=2,ep=2"); code != 2 || !strings.Contains(stderr, "not yet supported") {
		t.Errorf("sp=2,ep=2: exit %d: %s", code, stderr)
	}
	// sp=4: every rank holds every layer and expert (a quarter of nothing:
	// the whole model less the ends), and the ring's units come from the
	// config: all lightning states per boundary, fp32 K/V per token.
	out, stderr, code = runCLI(t, "inspect", "-preset", "minimax-text-01", "-plan", "sp=4", "-json")
	if code != 0 {
		t.Fatalf("sp=4: exit %d: %s", code, stderr)
	}
	r = inspectReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	hub := dist.HubPart
	whole := c.PartBytes(nil, quant.BF16, nil) - c.PartBytes(&hub, quant.BF16, nil)
	if len(r.PlanMemory) != 5 || r.Ring == nil {
		t.Fatalf("sp=4: %d rows, ring %+v", len(r.PlanMemory), r.Ring)
	}
	for _, m := range r.PlanMemory[1:] {
		if m.WeightBytes != whole || m.Holds != "layers [0,80) attention experts [0,32)" {
			t.Errorf("sp=4: %s holds %q, %d B; want every layer, %d B", m.Process, m.Holds, m.WeightBytes, whole)
		}
	}
	// 70 lightning layers × 64 heads × 128² × 4 B; 10 softmax layers × K and V × 8 heads × 128 × 4 B.
	if r.Ring.StateBytesPerBoundary != 70*64*128*128*4 || r.Ring.KVBytesPerTokenHop != 10*2*8*128*4 {
		t.Errorf("sp=4 ring: %+v", r.Ring)
	}
}

// tinyWithTokenizer returns a model folder (in a temporary directory, by
// absolute symlinks) holding the golden tiny-a and the test tokenizer of
// train/data, so that serve can take text.
func tinyWithTokenizer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{
		filepath.Join(goldenDir, "tiny-a", "config.json"):       "config.json",
		filepath.Join(goldenDir, "tiny-a", "model.safetensors"): "model.safetensors",
		"../../train/data/testdata/tok/tokenizer.json":          "tokenizer.json",
		"../../train/data/testdata/tok/tokenizer_config.json":   "tokenizer_config.json",
	} {
		abs, err := filepath.Abs(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// serveChild runs 'lightning serve' as a child process (the test binary
// acting as the command) and returns its base URL once it is ready; the
// child is stopped with SIGTERM at cleanup, which also stops its workers.
func serveChild(t *testing.T, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"serve", "-port", "0", "-max-memory", "0", "-prefix-cache-mb", "0"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Error("serve did not stop within 20 s of SIGTERM")
		}
	})
	ready := make(chan string, 1)
	var log strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(errp)
		base := ""
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			mu.Unlock()
			if _, a, ok := strings.Cut(line, "addr=http://"); ok && base == "" {
				base = "http://" + strings.Fields(a)[0]
			}
			if strings.Contains(line, "msg=ready") {
				ready <- base
			}
		}
	}()
	select {
	case base := <-ready:
		return base
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("serve %v not ready within 60 s:\n%s", args, log.String())
	}
	return ""
}

// TestServeThroughWorkers serves tiny-a with a tokenizer through the
// OpenAI API, once in one process and once over pp=2,ep=2 worker processes,
// and checks that concurrent greedy requests (batched by the engine, one of
// them streamed) give the same text both ways.
func TestServeThroughWorkers(t *testing.T) {
	dir := tinyWithTokenizer(t)
	prompts := []string{"the cat sat on", "hello world, hello", "abc abc abc", "once upon a time there"}
	complete := func(base string) []string {
		client := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("unused"))
		out := make([]string, len(prompts))
		var wg sync.WaitGroup
		for i, p := range prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				params := openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(filepath.Base(dir)),
					Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String(p)},
					MaxTokens: openai.Int(12), Temperature: openai.Float(0)}
				if i == 0 {
					stream := client.Completions.NewStreaming(context.Background(), params)
					for stream.Next() {
						for _, c := range stream.Current().Choices {
							out[i] += c.Text
						}
					}
					if err := stream.Err(); err != nil {
						t.Errorf("stream %q: %v", p, err)
					}
					return
				}
				resp, err := client.Completions.New(context.Background(), params)
				if err != nil {
					t.Errorf("%q: %v", p, err)
					return
				}
				out[i] = resp.Choices[0].Text
			}()
		}
		wg.Wait()
		return out
	}
	want := complete(serveChild(t, "-model", dir))
	got := complete(serveChild(t, "-model", dir, "-plan", "pp=2,ep=2", "-local-workers", "4"))
	for i := range prompts {
		t.Logf("%q → %q", prompts[i], got[i])
		if got[i] != want[i] || want[i] == "" {
			t.Errorf("%q: through workers %q, one process %q", prompts[i], got[i], want[i])
		}
	}
}

// TestServeQuantThroughWorkers serves tiny-a with -quant q4g64 in one
// process and over pp=2 worker processes with one micro-batch per step (the
// workers started by -local-workers with the same -quant), and checks that
// greedy completions, one request at a time so that both engines run the
// same steps, give the same text; and /livez answers while /health lists
// the workers.
func TestServeQuantThroughWorkers(t *testing.T) {
	dir := tinyWithTokenizer(t)
	prompts := []string{"the cat sat on", "once upon a time there"}
	complete := func(base string) []string {
		client := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("unused"))
		var out []string
		for _, p := range prompts {
			resp, err := client.Completions.New(context.Background(), openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(filepath.Base(dir)),
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(p)}, MaxTokens: openai.Int(16), Temperature: openai.Float(0)})
			if err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			out = append(out, resp.Choices[0].Text)
		}
		return out
	}
	want := complete(serveChild(t, "-model", dir, "-quant", "q4g64"))
	base := serveChild(t, "-model", dir, "-quant", "q4g64", "-plan", "pp=2", "-local-workers", "2", "-micro-batches", "1")
	got := complete(base)
	for i := range prompts {
		t.Logf("%q → %q", prompts[i], got[i])
		if got[i] != want[i] || want[i] == "" {
			t.Errorf("%q: through workers %q, one process %q", prompts[i], got[i], want[i])
		}
	}
	for path, want := range map[string]string{"/livez": `"status":"alive"`, "/health": `"ready":true`} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

// workerChild starts 'lightning worker' as a child process and returns it,
// its address and its probe address (with -probe-listen).
func workerChild(t *testing.T, args ...string) (cmd *exec.Cmd, addr, probe string) {
	t.Helper()
	return workerChildIn(t, "", args...)
}

// workerChildIn is workerChild in the network namespace netns, entered by
// 'ip netns exec' (which execs the worker: cmd's process is the worker);
// "" is this process's namespace.
func workerChildIn(t *testing.T, netns string, args ...string) (cmd *exec.Cmd, addr, probe string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{exe, "worker"}, args...)
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	cmd = exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, a, ok := strings.Cut(sc.Text(), "probes on "); ok {
			probe = a
		}
		if _, a, ok := strings.Cut(sc.Text(), "listening on "); ok {
			go io.Copy(io.Discard, out)
			return cmd, a, probe
		}
	}
	t.Fatalf("worker %v exited without listening", args)
	return nil, "", ""
}

// TestServeWorkerDies kills a worker process under 'serve -workers': the
// next request fails with 503 and a clear message, and once the worker is
// restarted on its address requests succeed again, the one whose prompt
// state the prefix cache held before the restart included.
func TestServeWorkerDies(t *testing.T) {
	tmp := tinyWithTokenizer(t)
	const tok = "serve-test-token"
	wargs := func(rank int, listen string) []string {
		return []string{"-model", tmp, "-plan", "pp=2", "-rank", fmt.Sprint(rank), "-listen", listen, "-token", tok}
	}
	_, a0, probe := workerChild(t, append(wargs(0, "127.0.0.1:0"), "-probe-listen", "127.0.0.1:0")...)
	for _, path := range []string{"/healthz", "/readyz"} { // Kubernetes probes: no token needed
		resp, err := http.Get("http://" + probe + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("worker %s: %d", path, resp.StatusCode)
		}
	}
	w1, a1, _ := workerChild(t, wargs(1, "127.0.0.1:0")...)
	// The prefix cache keeps the prompt's state (on the workers): after
	// the restart it is lost, and the hub must not resume from it.
	base := serveChild(t, "-model", tmp, "-plan", "pp=2", "-workers", a0+","+a1, "-token", tok, "-worker-timeout", "5s",
		"-prefix-cache-mb", "64", "-cache-min-tokens", "1")
	client := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	var cached int64
	complete := func() error {
		resp, err := client.Completions.New(context.Background(), openai.CompletionNewParams{Model: openai.CompletionNewParamsModel(filepath.Base(tmp)),
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hello")}, MaxTokens: openai.Int(4), Temperature: openai.Float(0)})
		if err == nil {
			cached = resp.Usage.PromptTokensDetails.CachedTokens
		}
		return err
	}
	for range 2 {
		if err := complete(); err != nil {
			t.Fatal(err)
		}
	}
	if cached == 0 {
		t.Fatal("the second request reused no cached prompt state")
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/health")
	if code != 200 || strings.Count(body, `"ready":true`) != 2 {
		t.Errorf("/health with both workers up: %d %s", code, body)
	}
	_, body = get("/metrics")
	for _, want := range []string{`lightning_worker_up{rank="0",addr="` + a0 + `"} 1`, `lightning_worker_up{rank="1",addr="` + a1 + `"} 1`,
		`lightning_worker_steps_total{rank="1"`, `lightning_worker_sent_bytes_total{rank="0"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `lightning_worker_sent_bytes_total{rank="0",addr="`+a0+`"} 0`) {
		t.Error("/metrics: no bytes sent to worker 0 after a request")
	}
	w1.Process.Kill()
	w1.Wait()
	code, body = get("/health")
	if code != 503 || !strings.Contains(body, `"status":"degraded"`) || strings.Count(body, `"ready":true`) != 1 {
		t.Errorf("/health with worker 1 dead: %d %s", code, body)
	}
	if code, body := get("/livez"); code != 200 || !strings.Contains(body, `"status":"alive"`) { // the liveness probe: no restart of the hub
		t.Errorf("/livez with worker 1 dead: %d %s", code, body)
	}
	start := time.Now()
	err := complete()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !strings.Contains(apiErr.Message, "worker is unavailable") {
		t.Fatalf("request with a dead worker: %v, want 503 naming the worker", err)
	}
	t.Logf("dead worker: 503 after %v: %s", time.Since(start).Round(time.Millisecond), apiErr.Message)
	workerChild(t, wargs(1, a1)...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := complete()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 10 s after the worker restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get("/health"); code != 200 || strings.Count(body, `"ready":true`) != 2 {
		t.Errorf("/health after the restart: %d %s", code, body)
	}
}
