package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
)

// parseIDs reads "1,2,3" (spaces allowed) into token ids.
func parseIDs(s string) ([]int32, error) {
	var ids []int32
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%w: -ids: %q is not a token id (want comma-separated non-negative integers)", errUsage, f)
		}
		ids = append(ids, int32(v))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: -ids is empty", errUsage)
	}
	return ids, nil
}

// checkIDs rejects ids outside the model's vocabulary.
func checkIDs(ids []int32, vocab int) error {
	for i, id := range ids {
		if int(id) >= vocab {
			return fmt.Errorf("%w: token id %d (position %d) is outside the vocabulary [0, %d)", errUsage, id, i, vocab)
		}
	}
	return nil
}

// loadModel opens a checkpoint folder or GGUF file, or the built-in model
// when dir is "" (saying so on stderr), printing any load warnings.
func loadModel(dir string, opt minimax01.Options, stderr io.Writer) (*minimax01.Model, error) {
	if dir == "" {
		announceBuiltin(stderr)
	}
	m, err := loadModelAt(dir, opt)
	if err != nil {
		return nil, err
	}
	for _, w := range m.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return m, nil
}

// nonFinite is the error for a sequence whose logits came out NaN or
// infinite: where the model first produced such a value, and how to find the
// damaged tensors.
func nonFinite(m model.Model, s model.Seq, dir string) error {
	check := "lightning inspect -check"
	if dir != "" {
		check += " -model " + dir
	}
	return fmt.Errorf("%w\n(run '%s' to find the tensors that hold them)", model.NonFiniteError(m, s), check)
}

// progress draws a one-line progress bar, redrawn in place with a carriage
// return, on a terminal. Into a file or a pipe (logs) it writes no frames:
// a plain line at the start, every 10 s and at completion.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	start time.Time
	last  time.Time
	unit  string
}

func newProgress(w io.Writer, label, unit string) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && isTerminal(f), label: label, unit: unit, start: time.Now()}
}

// update redraws at most every 200 ms on a terminal (every 10 s
// elsewhere), and always at completion.
func (p *progress) update(done, total int64) {
	now := time.Now()
	every := 200 * time.Millisecond
	if !p.tty {
		every = 10 * time.Second
	}
	if done < total && now.Sub(p.last) < every {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	frac := float64(done) / float64(max(total, 1))
	const width = 30
	bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
	rate, eta := "", ""
	if el > 0 && done > 0 {
		r := float64(done) / el
		rate = fmt.Sprintf(" %s/s", human(r, p.unit))
		eta = fmt.Sprintf(" ETA %s", time.Duration(float64(total-done)/r*float64(time.Second)).Round(time.Second))
	}
	line := fmt.Sprintf("%s [%s] %5.1f%% %s/%s%s%s", p.label, bar, 100*frac, human(float64(done), p.unit), human(float64(total), p.unit), rate, eta)
	switch {
	case !p.tty:
		fmt.Fprintln(p.w, line)
	case done >= total:
		fmt.Fprintf(p.w, "\r%s \n", line)
	default:
		fmt.Fprintf(p.w, "\r%s ", line)
	}
}

// human formats a count with SI prefixes; unit "B" means bytes (powers of 1024).
func human(v float64, unit string) string {
	base, prefixes := 1000.0, []string{"", "k", "M", "G", "T"}
	if unit == "B" {
		base, prefixes = 1024, []string{"", "Ki", "Mi", "Gi", "Ti"}
	}
	i := 0
	for v >= base && i < len(prefixes)-1 {
		v /= base
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", v, unit)
	}
	return fmt.Sprintf("%.1f %s%s", v, prefixes[i], unit)
}

// readAll reads r to the end with a 1 GiB cap.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<30+1))
	if err == nil && len(b) > 1<<30 {
		return nil, fmt.Errorf("input exceeds 1 GiB")
	}
	return b, err
}
