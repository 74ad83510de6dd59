package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chatGolden is the chat-template golden set copied into tokenizer/chat.
const chatGolden = "../../tokenizer/chat/testdata"

// runWithStdin runs the command line in-process with the given standard
// input and returns stdout, stderr and the exit status.
func runWithStdin(t *testing.T, input string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	oldIn, oldOut := stdin, stdout
	stdin, stdout = strings.NewReader(input), &out
	defer func() { stdin, stdout = oldIn, oldOut }()
	code := run(args, &errb)
	return out.String(), errb.String(), code
}

type templateCase struct {
	ID           string
	Conversation string
	Rendered     *string
	Error        *struct{ Type, Message string }
}

func readGoldenLines(t *testing.T, name string) (string, []templateCase) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chatGolden, name, "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []templateCase
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var c templateCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	return string(data), cases
}

// checkTemplateOutput compares 'lightning template -jsonl' output lines
// with golden cases (the error type and message too).
func checkTemplateOutput(t *testing.T, out string, cases []templateCase, skip func(templateCase) bool) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d output lines for %d cases", len(lines), len(cases))
	}
	n := 0
	for i, c := range cases {
		if skip != nil && skip(c) {
			continue
		}
		var got templateCase
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if got.ID != c.ID {
			t.Fatalf("line %d: id %q, want %q", i+1, got.ID, c.ID)
		}
		switch {
		case c.Error != nil:
			if got.Error == nil || *got.Error != *c.Error {
				t.Errorf("%s: got %s, want error %+v", c.ID, lines[i], *c.Error)
			}
		case got.Rendered == nil || *got.Rendered != *c.Rendered:
			t.Errorf("%s: got %s", c.ID, lines[i])
		}
		n++
	}
	return n
}

// TestTemplateCommandGolden feeds golden cases.jsonl files to 'lightning
// template -jsonl' and checks every output line.
func TestTemplateCommandGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"minimax_m1", []string{"-config", filepath.Join(chatGolden, "minimax_m1", "tokenizer_config.json")}},
		{"minimax_text01", []string{"-config", filepath.Join(chatGolden, "minimax_text01", "tokenizer_config.json")}},
		{"qwen3", []string{"-config", filepath.Join(chatGolden, "qwen3", "tokenizer_config.json")}},
		// vLLM's template with MiniMax-M1's special tokens.
		{"vllm_minimax_m1_tool", []string{"-config", filepath.Join(chatGolden, "minimax_m1", "tokenizer_config.json"),
			"-template", filepath.Join(chatGolden, "vllm_minimax_m1_tool", "template.jinja")}},
		{"hf_features", []string{"-template", filepath.Join(chatGolden, "hf_features", "template.jinja")}},
	} {
		input, cases := readGoldenLines(t, tc.name)
		args := append([]string{"template", "-jsonl", "-now", "2025-07-01T09:30:00"}, tc.args...)
		out, errOut, code := runWithStdin(t, input, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, errOut)
		}
		if n := checkTemplateOutput(t, out, cases, nil); n != 78 {
			t.Errorf("%s: %d cases checked", tc.name, n)
		}
	}
}

// TestTemplateCommandNormalize feeds the OpenAI-style conversations to
// MiniMax-M1's own template with -normalize auto: the output must equal the
// golden rendered from the parts-shaped messages.
func TestTemplateCommandNormalize(t *testing.T) {
	raw, _ := readGoldenLines(t, "vllm_minimax_m1_tool")
	_, cases := readGoldenLines(t, "minimax_m1")
	out, errOut, code := runWithStdin(t, raw, "template", "-jsonl", "-normalize", "auto",
		"-config", filepath.Join(chatGolden, "minimax_m1", "tokenizer_config.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rawConv := map[string]bool{"parts_text": true, "parts_with_image": true, "string_content_raw": true,
		"none_user_content": true, "missing_content": true, "numeric_content": true}
	n := checkTemplateOutput(t, out, cases, func(c templateCase) bool { return rawConv[c.Conversation] })
	if n < 60 {
		t.Errorf("only %d cases checked", n)
	}
}

// TestTemplateCommandSingle renders one object to plain text, and reports
// a template error with its Python type.
func TestTemplateCommandSingle(t *testing.T) {
	cfg := filepath.Join(chatGolden, "minimax_m1", "tokenizer_config.json")
	in := `{"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": true}`
	out, errOut, code := runWithStdin(t, in, "template", "-config", cfg, "-normalize", "auto")
	_, cases := readGoldenLines(t, "minimax_m1")
	if cases[0].ID != "single_user/agp=true" {
		t.Fatalf("first golden case is %s", cases[0].ID)
	}
	want := *cases[0].Rendered
	if code != 0 || out != want {
		t.Fatalf("exit %d, out %q (stderr %s), want %q", code, out, errOut, want)
	}
	_, errOut, code = runWithStdin(t, in, "template", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "UndefinedError: 'str object' has no attribute 'text'") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	_, _, code = runWithStdin(t, in, "template")
	if code != 2 {
		t.Errorf("no -config/-template: exit %d, want 2", code)
	}
	_, errOut, code = runWithStdin(t, "{not json\n", "template", "-jsonl", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "input line 1") {
		t.Errorf("bad input: exit %d, stderr %q", code, errOut)
	}
}
