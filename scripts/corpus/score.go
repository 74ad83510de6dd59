package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
)

// answer is one line of the file of model answers that `corpus score` reads:
// the kind and entity of a held-out conversation and the model's reply.
type answer struct {
	Kind   string `json:"kind"`
	Entity string `json:"entity"`
	Answer string `json:"answer"`
}

// normalizedWords lower-cases s and splits it into words of letters and
// digits.
func normalizedWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// answerRight reports whether the reply carries the reference: every word of
// the reference appears in the reply, in order and adjacent (the reference
// is a contiguous phrase of the reply once case and punctuation are ignored).
func answerRight(reference, reply string) bool {
	ref, got := strings.Join(normalizedWords(reference), " "), " "+strings.Join(normalizedWords(reply), " ")+" "
	return ref != "" && strings.Contains(got, " "+ref+" ")
}

// tokenF1 is the F1 score of the reply's words against the reference's
// words, counted as multisets (SQuAD's token F1).
func tokenF1(reference, reply string) float64 {
	ref, got := normalizedWords(reference), normalizedWords(reply)
	counts := map[string]int{}
	for _, w := range ref {
		counts[w]++
	}
	common := 0
	for _, w := range got {
		if counts[w] > 0 {
			counts[w]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	p, r := float64(common)/float64(len(got)), float64(common)/float64(len(ref))
	return 2 * p * r / (p + r)
}

// runScore compares model answers with the held-out chat set's references
// and prints, per kind, how many answers are right and the mean token F1.
func runScore(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	heldOutPath := fs.String("heldout", "", "chat-heldout.jsonl")
	answersPath := fs.String("answers", "", "JSONL of {kind, entity, answer}, one per held-out conversation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	refs := map[string]string{}
	if err := eachJSONL(*heldOutPath, func(dec func(any) error) error {
		var c conversation
		if err := dec(&c); err != nil {
			return err
		}
		refs[c.Kind+"\x00"+c.Entity] = c.Reference
		return nil
	}); err != nil {
		return err
	}
	type tally struct {
		n, right int
		f1       float64
	}
	byKind := map[string]*tally{}
	if err := eachJSONL(*answersPath, func(dec func(any) error) error {
		var a answer
		if err := dec(&a); err != nil {
			return err
		}
		ref, ok := refs[a.Kind+"\x00"+a.Entity]
		if !ok {
			return fmt.Errorf("answer for unknown held-out entity %s %q", a.Kind, a.Entity)
		}
		t := byKind[a.Kind]
		if t == nil {
			t = &tally{}
			byKind[a.Kind] = t
		}
		t.n++
		if answerRight(ref, a.Answer) {
			t.right++
		}
		t.f1 += tokenF1(ref, a.Answer)
		return nil
	}); err != nil {
		return err
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "%-8s %6s %6s %7s %7s\n", "kind", "asked", "right", "right%", "meanF1")
	for _, k := range kinds {
		t := byKind[k]
		fmt.Fprintf(w, "%-8s %6d %6d %6.1f%% %7.3f\n", k, t.n, t.right, 100*float64(t.right)/float64(t.n), t.f1/float64(t.n))
	}
	return nil
}

// eachJSONL calls f once per line of a JSONL file with a decoder for it.
func eachJSONL(path string, f func(dec func(any) error) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if err := f(func(v any) error { return json.Unmarshal(line, v) }); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}
