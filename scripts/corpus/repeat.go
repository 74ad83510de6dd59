package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
)

// runRepeat writes synthetic copying documents: a list of random words and
// numbers, then the same list again. Every token of the second copy can be
// predicted only by looking it up in the first, which is the skill passkey
// retrieval needs (an induction head) and which ordinary text rarely rewards.
func runRepeat(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("repeat", flag.ContinueOnError)
	train := fs.String("words", "", "a corpus .jsonl file (\"text\" lines) whose words are drawn from")
	n := fs.Int("n", 1000, "documents to write")
	minItems := fs.Int("min", 8, "fewest items in a list")
	maxItems := fs.Int("max", 64, "most items in a list")
	numbers := fs.Float64("numbers", 0.3, "share of the items that are random numbers of 1 to 5 digits instead of words")
	seed := fs.Uint64("seed", 5, "random seed")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: corpus repeat -words train.jsonl [-n N] [-min N] [-max N] [-numbers F] [-seed S] > repeat.jsonl")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *train == "" || *n < 1 || *minItems < 1 || *maxItems < *minItems || *numbers < 0 || *numbers > 1 {
		fs.Usage()
		return errors.New("repeat: need -words, -n ≥ 1, 1 ≤ -min ≤ -max and 0 ≤ -numbers ≤ 1")
	}
	texts, err := readMixInput(*train)
	if err != nil {
		return err
	}
	words := distinctWords(texts)
	if len(words) == 0 {
		return fmt.Errorf("repeat: no words in %s", *train)
	}
	r := rand.New(rand.NewPCG(*seed, 0x51ed270b7a3f6c2d))
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, d := range repeatDocs(r, words, *n, *minItems, *maxItems, *numbers) {
		if err := enc.Encode(map[string]string{"text": d, "source": "repeat"}); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// distinctWords returns the lower-case alphabetic words of the texts, each
// once, sorted (so the draw depends on the seed only).
func distinctWords(texts []string) []string {
	seen := map[string]bool{}
	for _, t := range texts {
		for _, f := range strings.Fields(t) {
			f = strings.ToLower(strings.Trim(f, ".,;:!?\"'()[]{}“”‘’"))
			if len(f) >= 2 && len(f) <= 12 && strings.Trim(f, "abcdefghijklmnopqrstuvwxyz") == "" {
				seen[f] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for w := range seen {
		out = append(out, w)
	}
	sort.Strings(out)
	return out
}

// repeatDocs draws n documents "Repeat the list.\n\nL\n\nL\n" where L is a
// list of min to max items, each a word or, with probability numbers, a
// number of 1 to 5 digits.
func repeatDocs(r *rand.Rand, words []string, n, minItems, maxItems int, numbers float64) []string {
	out := make([]string, n)
	for i := range out {
		items := make([]string, minItems+r.IntN(maxItems-minItems+1))
		for j := range items {
			if r.Float64() < numbers {
				items[j] = fmt.Sprint(r.IntN(100000 / pow10(r.IntN(5))))
			} else {
				items[j] = words[r.IntN(len(words))]
			}
		}
		list := strings.Join(items, " ")
		out[i] = "Repeat the list.\n\n" + list + "\n\n" + list + "\n"
	}
	return out
}

func pow10(k int) int {
	p := 1
	for ; k > 0; k-- {
		p *= 10
	}
	return p
}
