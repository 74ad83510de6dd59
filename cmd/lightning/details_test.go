package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestVersion checks --version and the version command.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		out, stderr, code := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "lightning ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
	}
}

// TestGenerateHelpPromisesOnlyItsFlags checks that generate's help does not
// mention sampling flags it does not have.
func TestGenerateHelpPromisesOnlyItsFlags(t *testing.T) {
	_, stderr, code := runCLI(t, "generate", "-help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(stderr, "sampling flags") && !strings.Contains(stderr, "-temperature") {
		t.Errorf("generate -help promises sampling flags, but generate has no -temperature:\n%s", stderr)
	}
}

// TestBadFlagPrintsOneMessage checks that a bad flag gives one error line
// and the hint, not the error twice and the whole usage.
func TestBadFlagPrintsOneMessage(t *testing.T) {
	_, stderr, code := runCLI(t, "generate", "-bogus")
	if code != 2 || strings.Count(stderr, "-bogus") != 1 || strings.Contains(stderr, "Usage:") ||
		!strings.Contains(stderr, "Run 'lightning generate -help'") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestRunFinishAndInterrupt checks that run reports a stop string as
// "finish stop" and exits 130 when interrupted.
func TestRunFinishAndInterrupt(t *testing.T) {
	dir := qwenModel(t)
	out, stderr, code := runCLI(t, "run", "-model", dir, "-raw", "-temperature", "0", "-n", "12", "Hello there")
	if code != 0 || len(strings.TrimSpace(out)) < 2 {
		t.Fatalf("exit %d, out %q: %s", code, out, stderr)
	}
	stop := string([]rune(strings.TrimSpace(out))[1]) // a string the greedy answer is sure to reach
	_, stderr, code = runCLI(t, "run", "-model", dir, "-raw", "-temperature", "0", "-n", "12", "-v", "-stop", stop, "Hello there")
	if code != 0 || !strings.Contains(stderr, "finish stop") {
		t.Errorf("stop string: exit %d, stderr %q; want finish stop", code, stderr)
	}
	old := interruptContext
	defer func() { interruptContext = old }()
	interruptContext = func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // as if Ctrl-C came at once
		return ctx, cancel
	}
	_, stderr, code = runCLI(t, "run", "-model", dir, "-raw", "-n", "12", "Hello there")
	if code != 130 {
		t.Errorf("interrupted run: exit %d, stderr %q; want 130", code, stderr)
	}
}

// TestTemplateJSONLKeepsRenderedLines checks that a malformed line after
// good ones leaves the good results on stdout and names the bad line.
func TestTemplateJSONLKeepsRenderedLines(t *testing.T) {
	cfg := "../../tokenizer/chat/testdata/qwen3/tokenizer_config.json"
	good := `{"id": "a", "messages": [{"role": "user", "content": "Hi"}]}`
	out, stderr, code := runCLIStdin(t, good+"\n"+good+"\n{broken\n"+good+"\n", "template", "-jsonl", "-config", cfg)
	if code != 1 || strings.Count(out, `"rendered"`) != 2 || !strings.Contains(stderr, "input line 3") {
		t.Errorf("exit %d, stdout %q, stderr %q; want the 2 results before line 3, then an error naming line 3", code, out, stderr)
	}
}

// TestProgressOffTerminal checks that progress bars write no carriage
// returns into a file or pipe, and that /dev/null is not a terminal.
func TestProgressOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, "weights", "B")
	for i := int64(0); i <= 10; i++ {
		p.last = p.last.Add(-time.Hour) // let every update through
		p.update(i*100, 1000)
	}
	if strings.Contains(buf.String(), "\r") || !strings.Contains(buf.String(), "weights") || !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("progress to a buffer: %q", buf.String())
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Errorf("%s is reported as a terminal", os.DevNull)
	}
}

// TestServeRefusesTinyBudget checks that a -max-memory too small for one
// sequence is refused instead of starting a server that can run nothing.
func TestServeRefusesTinyBudget(t *testing.T) {
	dir := qwenModel(t)
	_, stderr, code := runCLI(t, "serve", "-model", dir, "-port", "0", "-max-memory", "1KiB")
	if code != 1 || !strings.Contains(stderr, "-max-memory") || !strings.Contains(stderr, "1.0 KiB") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
