package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPlotComparesRuns draws two runs' metrics and checks the table against
// values worked out by hand from the records written here.
func TestPlotComparesRuns(t *testing.T) {
	dir := t.TempDir()
	// Run a: 25 steps of loss 5 (steps 1–5) then 3; eval 4.5 at step 10, 3.25 at step 20.
	// Run b: 10 steps of loss 6 with a record of step 10 written twice (a resumed run's
	// repeated step: the last one counts), eval 5.5 at step 10.
	var a, b strings.Builder
	for s := 1; s <= 25; s++ {
		loss := "3"
		if s <= 5 {
			loss = "5"
		}
		eval := ""
		switch s {
		case 10:
			eval = `,"eval_loss":4.5`
		case 20:
			eval = `,"eval_loss":3.25`
		}
		a.WriteString(`{"step":` + strconv.Itoa(s) + `,"tokens":` + strconv.Itoa(100*s) + `,"loss":` + loss + eval + "}\n")
	}
	for s := 1; s <= 10; s++ {
		b.WriteString(`{"step":` + strconv.Itoa(s) + `,"tokens":` + strconv.Itoa(100*s) + `,"loss":7}` + "\n")
	}
	b.WriteString(`{"step":10,"tokens":1000,"loss":6,"eval_loss":5.5}` + "\n")
	for s := 1; s <= 9; s++ {
		b.WriteString(`{"step":` + strconv.Itoa(s) + `,"tokens":` + strconv.Itoa(100*s) + `,"loss":6}` + "\n")
	}
	runA := filepath.Join(dir, "runA")
	os.Mkdir(runA, 0o755)
	os.WriteFile(filepath.Join(runA, "metrics.jsonl"), []byte(a.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "b.jsonl"), []byte(b.String()), 0o644)
	svgPath := filepath.Join(dir, "cmp.svg")

	out, errs, code := runCLI(t, "plot", "-o", svgPath, runA, filepath.Join(dir, "b.jsonl")+"=softmax <only>")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	fields := func(line string) string { return strings.Join(strings.Fields(line), " ") }
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, fields(l))
	}
	want := []string{
		"eval loss at step runA softmax <only>",
		"10 4.5000 5.5000",
		"20 3.2500 -",
		"",
		"run steps tokens training loss (last 20 steps)",
		"runA 25 2500 3.0000", // steps 6–25 all have loss 3
		"softmax <only> 10 1000 6.0000",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if st, err := os.Stat(svgPath); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the picture's mode: %v %v, want -rw-r--r-- like any written file", st.Mode(), err)
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	polylines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	if polylines != 4 {
		t.Errorf("%d polylines, want training and eval of two runs", polylines)
	}
	if !strings.Contains(string(svg), "softmax &lt;only&gt;: training") {
		t.Error("legend lacks the escaped run name")
	}

	out, errs, code = runCLI(t, "plot", "-o", svgPath, "-steps", "12", runA)
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "runA 12 1200 3.8333") { // steps 1–12: five of loss 5, seven of 3
		t.Errorf("-steps 12: exit %d, %s%s", code, out, errs)
	}
	for _, bad := range [][]string{{"plot"}, {"plot", filepath.Join(dir, "missing")}} {
		if _, _, code := runCLI(t, bad...); code == 0 {
			t.Errorf("%v: exit 0, want an error", bad)
		}
	}
	os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte("{\"step\":1,\"loss\":2}\nnot json\n"), 0o644)
	if _, errs, code := runCLI(t, "plot", "-o", svgPath, filepath.Join(dir, "bad.jsonl")); code == 0 || !strings.Contains(errs, "bad.jsonl:2") {
		t.Errorf("a bad line: exit %d, %q; want an error naming line 2", code, errs)
	}
}
