package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/train"
)

// The training tests run a 2-layer model (testdata/train/config.json: one
// lightning layer with 16-token blocks and one softmax layer, hidden 32, 4
// experts top-2, ffn 48) on testdata/train/corpus (nine short documents,
// about 700 tokens) with testdata/train/tok (a 273-id byte-level BPE; the
// vocabulary becomes 320). A step of 2 × 64 tokens takes a few
// milliseconds.
const (
	trainData   = "testdata/train/corpus"
	trainTok    = "testdata/train/tok"
	trainConfig = "testdata/train/config.json"
)

// trainArgs are the flags of the test runs, with a fixed thread count so
// runs are comparable bit for bit.
func trainArgs(out string, extra ...string) []string {
	return append([]string{"train", "-data", trainData, "-tokenizer", trainTok, "-config", trainConfig,
		"-steps", "24", "-seq-len", "64", "-batch-tokens", "128", "-lr", "3e-3", "-min-lr", "3e-4", "-warmup", "4",
		"-eval-every", "8", "-eval-frac", "0.3", "-save-every", "10", "-threads", "2", "-o", out}, extra...)
}

type metricLine struct {
	Step     int      `json:"step"`
	Tokens   int64    `json:"tokens"`
	Loss     float64  `json:"loss"`
	LR       float64  `json:"lr"`
	TokPerS  float64  `json:"tok_per_s"`
	MFU      float64  `json:"mfu"`
	EvalLoss *float64 `json:"eval_loss"`
}

func readMetrics(t *testing.T, dir string) []metricLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []metricLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m metricLine
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics.jsonl: %v in %q", err, sc.Text())
		}
		ms = append(ms, m)
	}
	return ms
}

// losses keeps what must match between runs (not the timings).
func losses(ms []metricLine) []metricLine {
	out := make([]metricLine, len(ms))
	for i, m := range ms {
		m.TokPerS, m.MFU = 0, 0
		out[i] = m
	}
	return out
}

func TestTrainLowersEvalLossAndResumesExactly(t *testing.T) {
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	_, stderr, code := runCLI(t, trainArgs(straight)...)
	if code != 0 {
		t.Fatalf("train: status %d\n%s", code, stderr)
	}
	ms := readMetrics(t, straight)
	if len(ms) != 24 {
		t.Fatalf("%d metrics lines, want 24", len(ms))
	}
	var evals []float64
	for i, m := range ms {
		if m.Step != i+1 || m.Tokens != int64(128*(i+1)) || !(m.TokPerS > 0) || !(m.MFU > 0) || !(m.LR > 0) {
			t.Errorf("metrics line %d: %+v", i, m)
		}
		if m.EvalLoss != nil {
			evals = append(evals, *m.EvalLoss)
		}
	}
	// Eval at steps 8, 16 and 24. The untrained model is near uniform over
	// 320 ids (ln 320 ≈ 5.77); 24 steps of the byte-level text must lower
	// the held-out loss at each evaluation, and by a nat overall.
	if len(evals) != 3 || !(evals[0] > evals[1] && evals[1] > evals[2]) || evals[2] > math.Log(320)-1 {
		t.Errorf("eval losses %v: want 3, falling, the last a nat below uniform (%.3f)", evals, math.Log(320))
	}
	// The eval curve starts before training, at the untrained model's loss:
	// the final RMSNorm gives unit-RMS rows and the LM head is drawn with
	// std 0.02, so logits have std ≈ 0.02·√32 ≈ 0.11, which adds about
	// var/2 ≈ 0.006 to the uniform ln 320.
	st, err := loadTrainState(straight)
	if err != nil {
		t.Fatal(err)
	}
	if ev := st.Curve.Eval; len(ev) != 4 || ev[0].Step != 0 || ev[0].Tokens != 0 || math.Abs(ev[0].Loss-math.Log(320)) > 0.05 {
		t.Errorf("eval curve %+v: want 4 points, the first at step 0 near ln 320", ev)
	}
	for _, want := range []string{"step 0  eval", "step 24/24", "loss ", "eval ", "tok/s", "MFU ", "lr ", "ETA "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Error("progress redraws with \\r on a stderr that is not a terminal")
	}
	for _, f := range []string{"loss.svg", "step-00000010/config.json", "step-00000010/model.safetensors",
		"step-00000020/tokenizer.json", "step-00000024/trainer_state.json", "step-00000024/optimizer/adamw_v.safetensors"} {
		if _, err := os.Stat(filepath.Join(straight, f)); err != nil {
			t.Error(err)
		}
	}

	// The same run sent SIGTERM at step 13: it stops after the step in
	// progress when the signal arrives (13 or a little later), saves a
	// checkpoint there and exits with status 143; then it resumes from its
	// run folder.
	resumed := filepath.Join(dir, "resumed")
	trainStepHook = func(r train.Record) {
		if r.Step == 13 {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}
	}
	_, stderr, code = runCLI(t, trainArgs(resumed)...)
	trainStepHook = nil
	if code != 128+int(syscall.SIGTERM) || !strings.Contains(stderr, "-resume "+resumed) {
		t.Fatalf("stopped run: status %d\n%s", code, stderr)
	}
	st, err = loadTrainState(resumed)
	if err != nil || st.Step < 13 || st.Step >= 24 {
		t.Fatalf("checkpoint at the stop: %v (want one of step 13 to 23)", err)
	}
	var a []byte
	// -keep 1 deletes the checkpoint the run resumed from at its next save;
	// the saves after that still carry the tokenizer.
	_, stderr, code = runCLI(t, "train", "-resume", resumed, "-keep", "1")
	if code != 0 {
		t.Fatalf("resumed run: status %d\n%s", code, stderr)
	}
	if left, _ := checkpointDirs(resumed); len(left) != 1 || filepath.Base(left[0]) != "step-00000024" {
		t.Errorf("checkpoints left with -keep 1: %v", left)
	}
	if _, err := os.Stat(filepath.Join(resumed, "step-00000024", "tokenizer.json")); err != nil {
		t.Error(err)
	}
	if got, want := losses(readMetrics(t, resumed)), losses(ms); !reflect.DeepEqual(got, want) {
		t.Errorf("resumed run's metrics differ from the uninterrupted run's:\n got %+v\nwant %+v", got, want)
	}
	a, err = os.ReadFile(filepath.Join(straight, "step-00000024", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(resumed, "step-00000024", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("resumed run's final weights differ from the uninterrupted run's")
	}
	checkCheckpointRuns(t, filepath.Join(straight, "step-00000024"))

	// -init starts a new run (step 1, fresh optimizer) from the trained
	// weights, with the checkpoint's own tokenizer: its first loss, on the
	// corpus the checkpoint was trained on, must be far below the fresh
	// run's first (the straight run's step 24 is more than a nat below it).
	initRun := filepath.Join(dir, "init")
	// It takes its eval loss from -eval-data (one file of the corpus, under
	// 64 tokens: one sequence) and trains on the whole of -data.
	_, stderr, code = runCLI(t, "train", "-data", trainData, "-init", filepath.Join(straight, "step-00000024"),
		"-steps", "2", "-seq-len", "64", "-batch-tokens", "128", "-eval-data", trainData+"/06-cat.txt", "-eval-every", "2",
		"-threads", "2", "-o", initRun)
	if code != 0 {
		t.Fatalf("train -init: status %d\n%s", code, stderr)
	}
	im := readMetrics(t, initRun)
	if len(im) != 2 || im[0].Step != 1 || im[0].Loss > ms[0].Loss-1 || im[1].EvalLoss == nil || !strings.Contains(stderr, "1 held-out sequences") {
		t.Errorf("-init run's metrics %+v; the fresh run's first loss was %v\n%s", im, ms[0].Loss, stderr)
	}
}

// checkCheckpointRuns loads a checkpoint with the inference engine and
// checks that its loss on a text equals the training model's (two
// independent implementations of the same network: the golden tests hold
// both to 2e-4 absolute on logits, so their mean cross-entropies agree to
// that), then that lightning run generates from it.
func checkCheckpointRuns(t *testing.T, dir string) {
	t.Helper()
	m, err := minimax01.Load(dir, minimax01.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tokens []int32
	for _, id := range tok.Encode("The river runs down through the woods, past the mill.", true) {
		tokens = append(tokens, int32(id))
	}
	V := m.Config.Vocab
	logits := make([]float32, len(tokens)*V)
	m.Forward([]model.Seq{{State: m.NewStateCap(len(tokens)), Tokens: tokens, Logits: model.LogitsAll}}, logits)
	ce := 0.0
	for i := 0; i+1 < len(tokens); i++ {
		row := logits[i*V : (i+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		z := 0.0
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		ce += math.Log(z) + mx - float64(row[tokens[i+1]])
	}
	ce /= float64(len(tokens) - 1)

	c, w, slab, err := minimax01.LoadF32(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm := train.NewModel(c, w, slab, len(tokens))
	l := tm.Evaluate(train.Batch{Tokens: tokens, DocStarts: []int{0}})
	if math.Abs(l.CE-ce) > 2e-4 {
		t.Errorf("loss of the checkpoint: %v in the engine, %v in the training model", ce, l.CE)
	}

	out, stderr, code := runCLI(t, "run", "-model", dir, "-raw", "-n", "8", "-temperature", "0", "The river")
	if code != 0 || out == "" {
		t.Errorf("lightning run on the checkpoint: status %d, output %q\n%s", code, out, stderr)
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	empty := filepath.Join(dir, "empty-data")
	os.MkdirAll(empty, 0o755)
	os.WriteFile(filepath.Join(empty, ".hidden.txt"), []byte("hidden"), 0o644)
	notTok := filepath.Join(dir, "no-tokenizer")
	os.MkdirAll(notTok, 0o755)
	out := filepath.Join(dir, "out")
	base := func(drop string, extra ...string) []string {
		args := []string{"train"}
		flags := [][2]string{{"-data", trainData}, {"-tokenizer", trainTok}, {"-preset", "tiny"}, {"-steps", "5"}, {"-seq-len", "32"}, {"-o", out}}
		for _, f := range flags {
			if f[0] != drop {
				args = append(args, f[0], f[1])
			}
		}
		return append(args, extra...)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{base("-data"), 2, "-data PATH is required"},
		{base("-tokenizer"), 2, "-tokenizer DIR is required"},
		{base("-preset"), 2, "exactly one of -preset NAME, -config FILE or -init DIR"},
		{base("", "-config", trainConfig), 2, "exactly one of"},
		{base("-steps"), 2, "-steps N is required"},
		{base("-seq-len", "-seq-len", "1"), 2, "-seq-len 1: need at least 2"},
		{base("", "-batch-tokens", "100"), 2, "multiple of -seq-len 32"},
		{base("", "-min-lr", "1"), 2, "0 ≤ -min-lr ≤ -lr"},
		{base("", "-lr", "0"), 2, "need -lr > 0"},
		{base("", "-eval-frac", "1"), 2, "-eval-frac 1"},
		{base("-preset", "-preset", "huge"), 2, `-preset "huge"`},
		{base("-data", "-data", filepath.Join(dir, "missing")), 2, "no such file"},
		{base("-o", "-o", full), 2, "is not empty"},
		{base("", "extra"), 2, "give each data path with its own -data"},
		{base("-tokenizer", "-tokenizer", notTok), 1, "neither tokenizer.json"},
		{base("-data", "-data", empty), 1, "no documents with text"},
		{base("", "-eval-frac", "1e-9"), 1, "no held-out documents"},
		{[]string{"train", "-resume", dir}, 1, "no trainer_state.json"},
		{base("", "-eval-data", trainData, "-eval-frac", "0.1"), 2, "-eval-data (held-out files) or -eval-frac"},
		{base("", "-eval-data", filepath.Join(dir, "missing")), 2, "-eval-data: stat"},
		{base("", "-eval-data", empty), 1, "-eval-data: no documents with text"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: status %d, stderr %q; want status %d and %q", tc.args[1:], code, stderr, tc.code, tc.want)
		}
	}
	// The real shape (456B parameters) needs terabytes; refused before any
	// allocation where the available memory can be read.
	if memAvailable() > 0 {
		_, stderr, code := runCLI(t, base("-preset", "-preset", "minimax-text-01", "-eval-frac", "0.3")...)
		if code != 1 || !strings.Contains(stderr, "AdamW moments need") {
			t.Errorf("the real shape: status %d, stderr %q", code, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a rejected run created its output folder")
	}
}

func TestTrainResumeRejectsChangedFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := trainArgs(dir)
	for i, a := range args {
		if a == "-steps" {
			args[i+1] = "2"
		}
	}
	if _, stderr, code := runCLI(t, args...); code != 0 {
		t.Fatalf("train: status %d\n%s", code, stderr)
	}
	_, stderr, code := runCLI(t, "train", "-resume", dir, "-lr", "1")
	if code != 2 || !strings.Contains(stderr, "-lr cannot change when resuming") {
		t.Errorf("resume with -lr: status %d\n%s", code, stderr)
	}
	_, stderr, code = runCLI(t, "train", "-resume", dir, "-steps", "1")
	if code != 2 || !strings.Contains(stderr, "below the checkpoint's step 2") {
		t.Errorf("resume with fewer steps: status %d\n%s", code, stderr)
	}
}

// TestTrainMetricsAndCheckpointFiles checks the bookkeeping around a run
// without a model: metrics.jsonl keeps only the records up to the step a
// run resumes from, and -keep deletes all but the newest checkpoints.
func TestTrainMetricsAndCheckpointFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.jsonl")
	lines := ""
	for s := 1; s <= 7; s++ {
		lines += fmt.Sprintf("{\"step\":%d,\"loss\":1}\n", s)
	}
	os.WriteFile(path, []byte(lines+"{\"step\":8,\"lo"), 0o644) // a line cut by a crash
	m, err := openMetrics(path, 5)
	if err != nil {
		t.Fatal(err)
	}
	m.write(train.Record{Step: 6, Loss: math.NaN()})
	m.Close()
	got := readMetrics(t, dir)
	if len(got) != 6 || got[4].Step != 5 || got[5].Step != 6 || got[5].Loss != 0 {
		t.Errorf("metrics after resuming at step 5: %+v", got)
	}

	for _, s := range []int{5, 10, 15, 20} {
		d := checkpointDir(dir, s)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "trainer_state.json"), []byte("{}"), 0o644)
	}
	os.MkdirAll(checkpointDir(dir, 25)+".partial", 0o755)
	os.MkdirAll(filepath.Join(dir, ".step-00000025.partial.tmp123"), 0o755)
	if err := pruneCheckpoints(dir, 2); err != nil {
		t.Fatal(err)
	}
	left, err := checkpointDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{checkpointDir(dir, 15), checkpointDir(dir, 20)}; !reflect.DeepEqual(left, want) {
		t.Errorf("after -keep 2: %v, want %v", left, want)
	}
	if err := removePartialSaves(dir); err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"metrics.jsonl", "step-00000015", "step-00000020"}; !reflect.DeepEqual(names, want) {
		t.Errorf("after removing partial saves: %v, want %v", names, want)
	}
}
