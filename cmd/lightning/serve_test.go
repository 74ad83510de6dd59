package main

import (
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		auto bool
		bad  bool
	}{
		{"auto", 0, true, false}, {"AUTO", 0, true, false}, {"0", 0, false, false}, {"1000", 1000, false, false},
		{"8GiB", 8 << 30, false, false}, {"512MiB", 512 << 20, false, false}, {"1.5GB", 1_500_000_000, false, false},
		{"2kb", 2000, false, false}, {"10 MiB", 10 << 20, false, false}, {"-1", 0, false, true}, {"lots", 0, false, true},
		{"GiB", 0, false, true},
	} {
		n, auto, err := parseBytes(c.in)
		if (err != nil) != c.bad || n != c.want || auto != c.auto {
			t.Errorf("parseBytes(%q) = %d, %v, %v; want %d, %v, error %v", c.in, n, auto, err, c.want, c.auto, c.bad)
		}
	}
}

func TestServeFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-port", "70000"}, "-port 70000"}, // the built-in model: flags are checked before it loads
		{[]string{"serve", "-model", "x", "-port", "70000"}, "-port 70000"},
		{[]string{"serve", "-model", "x", "-max-seqs", "8", "-batch-tokens", "8"}, "-batch-tokens > -max-seqs"},
		{[]string{"serve", "-model", "x", "-max-memory", "lots"}, "-max-memory"},
		{[]string{"serve", "-model", "x", "-log-format", "xml"}, "-log-format"},
		{[]string{"serve", "-model", "x", "-session-dir", file}, "-session-dir"},
		{[]string{"serve", "-model", "x", "-reasoning-parser", "deepseek"}, "want none, minimax_m1 or think"},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	_, stderr, code := runCLI(t, "serve", "-help")
	if code != 0 || !strings.Contains(stderr, "/v1/chat/completions") || !strings.Contains(stderr, "-prefix-cache-mb") ||
		!strings.Contains(stderr, "-session-dir") || !strings.Contains(stderr, "/v1/sessions") {
		t.Errorf("serve -help: exit %d\n%s", code, stderr)
	}
}

// TestBatchTokensDefault checks that serve steps as many tokens as run and
// chat by default (the prefill chunk measured in the README).
func TestBatchTokensDefault(t *testing.T) {
	for _, name := range []string{"serve", "run", "chat"} {
		c := commands[name]
		fs := newFlagSet(c, io.Discard)
		_ = c.run(fs, []string{"-help"})
		f := fs.Lookup("batch-tokens")
		if f == nil || f.DefValue != strconv.Itoa(defaultBatchTokens) {
			t.Errorf("%s -batch-tokens defaults to %v, want %d", name, f, defaultBatchTokens)
		}
	}
}

// TestSetMemoryLimit checks the limit's formula by hand (held + bound +
// 1/8 of it), that setMemoryLimit installs it, and that there is none
// without a bound.
func TestSetMemoryLimit(t *testing.T) {
	if got := memoryLimit(100<<20, 800<<20); got != 1000<<20 {
		t.Errorf("memoryLimit(100 MiB, 800 MiB) = %d, want %d", got, 1000<<20)
	}
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	const bound = 1 << 30
	limit := setMemoryLimit(bound)
	if got := debug.SetMemoryLimit(-1); got != limit || limit <= bound+bound/memoryLimitSlack {
		t.Errorf("limit %d, runtime says %d; want more than the bound plus slack, %d", limit, got, bound+bound/memoryLimitSlack)
	}
	if l := setMemoryLimit(0); l != 0 || debug.SetMemoryLimit(-1) != limit {
		t.Errorf("no bound: limit %d, runtime %d", l, debug.SetMemoryLimit(-1))
	}
}
