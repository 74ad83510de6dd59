package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithField(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`{}`, `{"answer":"a \"b\" <c> & d\n"}`},
		{`{ }`, `{"answer":"a \"b\" <c> & d\n"}`},
		{`{"x": [1, {"y": null}] , "z":"é"}`, `{"x": [1, {"y": null}] , "z":"é","answer":"a \"b\" <c> & d\n"}`},
	} {
		if got := string(withField([]byte(c.line), "answer", "a \"b\" <c> & d\n")); got != c.want+"\n" {
			t.Errorf("withField(%s) = %s, want %s", c.line, got, c.want)
		}
	}
}

// TestRunJSONL answers a 3-line file with a tiny random model: the output
// keeps the count, the order and every other field byte for byte, and each
// reply is what 'run' gives for that prompt alone.
func TestRunJSONL(t *testing.T) {
	dir := qwenModel(t)
	tmp := t.TempDir()
	long := "Define abolish." + strings.Repeat(" Words and more words.", 400) // read after line 2 is done
	in := []string{
		`{"messages":[{"role":"user","content":"` + long + `"},{"role":"assistant","content":"Abolish, a verb: do away with."}],"kind":"word","entity":"abolish","template":2}`,
		`{"prompt":"Once upon a time","id":7,"extra":[1,{"y":null}]}`,
		`{"kind":"devil","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is a bore?"}],"entity":"bore <&>"}`,
	}
	inPath, outPath := filepath.Join(tmp, "in.jsonl"), filepath.Join(tmp, "out.jsonl")
	os.WriteFile(inPath, []byte(in[0]+"\n\n"+in[1]+"\r\n"+in[2]), 0o644) // a blank line and a CRLF on the way
	_, stderr, code := runCLI(t, "run", "-model", dir, "-jsonl", inPath, "-drop-reply", "-n", "6", "-parallel", "2", "-o", outPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(out) != 3 {
		t.Fatalf("%d output lines, want 3:\n%s", len(out), b)
	}
	alone := []string{ // each prompt run on its own, greedy
		runAlone(t, "run", "-model", dir, "-temperature", "0", "-n", "6", long),
		runAlone(t, "run", "-model", dir, "-temperature", "0", "-n", "6", "-raw", "Once upon a time"),
		runAlone(t, "run", "-model", dir, "-temperature", "0", "-n", "6", "-system", "Be brief.", "What is a bore?"),
	}
	for i, line := range out {
		if !strings.HasPrefix(line, in[i][:len(in[i])-1]+`,"answer":`) {
			t.Errorf("line %d does not keep the input:\n%s\n%s", i+1, line, in[i])
		}
		var got struct{ Answer *string }
		if err := json.Unmarshal([]byte(line), &got); err != nil || got.Answer == nil {
			t.Fatalf("line %d: %v %s", i+1, err, line)
		}
		if *got.Answer != alone[i] {
			t.Errorf("line %d: answer %q, alone %q", i+1, *got.Answer, alone[i])
		}
	}
	// stdin to stdout, sampled with a seed: reproducible.
	a, stderr, code := runCLIStdin(t, in[1]+"\n", "run", "-model", dir, "-jsonl", "-", "-n", "5", "-temperature", "1", "-seed", "3")
	again, _, _ := runCLIStdin(t, in[1]+"\n", "run", "-model", dir, "-jsonl", "-", "-n", "5", "-temperature", "1", "-seed", "3")
	if code != 0 || a != again || !strings.HasPrefix(a, `{"prompt":"Once upon a time","id":7,"extra":[1,{"y":null}],"answer":`) {
		t.Errorf("stdin: exit %d %q %q %s", code, a, again, stderr)
	}
}

func runAlone(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%v: %s", args, stderr)
	}
	return strings.TrimSuffix(out, "\n")
}

func TestRunJSONLErrors(t *testing.T) {
	dir := qwenModel(t)
	good := `{"prompt":"hi"}`
	for _, c := range []struct {
		input, want string
		args        []string
	}{
		{good + "\n{\"prompt\": \"x\"\n" + good, "line 2: not a JSON object", nil},
		{good + "\n\n[1, 2]", "line 3: not a JSON object", nil},
		{good + "\n" + `{"prompt":"a","messages":[]}`, `line 2: want exactly one of "messages" and "prompt"`, nil},
		{`{"id":1}`, `line 1: want exactly one of`, nil},
		{good + "\n" + `{"prompt":3}`, `line 2: "prompt" is not a string`, nil},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, "line 1: the conversation ends with an assistant message\nHINT: -drop-reply", nil},
		{`{"messages":[{"role":"assistant","content":"a"}]}`, `line 1: "messages" is empty`, []string{"-drop-reply"}},
		{`{"messages":"hello"}`, `line 1: "messages" is not a list`, nil},
		{good + "\n" + `{"prompt":"x","answer":"old"}`, `line 2: already has a field "answer"`, nil},
		{"\n\n", "has no lines", nil},
	} {
		args := append([]string{"run", "-model", dir, "-jsonl", "-", "-n", "2"}, c.args...)
		out, stderr, code := runCLIStdin(t, c.input, args...)
		if code != 1 || !strings.Contains(stderr, c.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 with %q", c.input, code, out, stderr, c.want)
		}
	}
	for _, args := range [][]string{
		{"-jsonl", "-", "a prompt"},
		{"-jsonl", "-", "-system", "x"},
		{"-drop-reply", "a prompt"},
		{"-o", "x.jsonl", "a prompt"},
	} {
		if _, stderr, code := runCLIStdin(t, good, append([]string{"run", "-model", dir}, args...)...); code != 2 {
			t.Errorf("%v: exit %d, %s", args, code, stderr)
		}
	}
}
