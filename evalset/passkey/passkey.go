// Package passkey defines the passkey retrieval task of the MiniMax-01
// report's long-context evaluation ("needle in a haystack"): a five-digit
// pass key hidden at a chosen depth in repetitive filler text, with the
// question at the end. The corpus builder (scripts/corpus) writes training
// documents from it and 'lightning needle' measures a model on it, so both
// use exactly this text.
package passkey

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The parts of a prompt, in order: Intro, filler groups with the needle
// among them, Question.
const (
	// Intro tells the model what to look for.
	Intro = "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about it.\n\n"
	// Filler is one group of filler sentences (90 bytes); a haystack is a
	// whole number of them.
	Filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
	// Needle is the sentence that carries the key (both %d are the key).
	Needle = "The pass key is %d. Remember it. %d is the pass key. "
	// Question ends every prompt; the key is its natural continuation.
	Question = "\n\nWhat is the pass key? The pass key is"
)

// MinKey and MaxKey bound the keys: every key has five digits.
const (
	MinKey = 10000
	MaxKey = 99999
)

// Key draws a key uniformly from [MinKey, MaxKey] with r.
func Key(r *rand.Rand) int { return MinKey + r.IntN(MaxKey-MinKey+1) }

// NeedleAfter is the number of filler groups before the needle in a
// haystack of groups filler groups with the needle at depth (0 = before all
// of them, 1 = after all of them): round(depth·groups).
func NeedleAfter(depth float64, groups int) int { return int(depth*float64(groups) + 0.5) }

// Prompt builds the task's text: Intro, groups filler groups with the needle
// for key after NeedleAfter(depth, groups) of them, and Question (the space
// before it trimmed). It panics on a depth outside [0, 1] or negative groups.
func Prompt(key int, depth float64, groups int) string {
	if depth < 0 || depth > 1 || groups < 0 {
		panic("passkey: depth outside [0, 1] or negative length")
	}
	at := NeedleAfter(depth, groups)
	var b strings.Builder
	b.WriteString(Intro)
	b.WriteString(strings.Repeat(Filler, at))
	fmt.Fprintf(&b, Needle, key, key)
	b.WriteString(strings.Repeat(Filler, groups-at))
	return strings.TrimRight(b.String(), " ") + Question
}

// Answer is the text that completes a prompt for key: " 12345.".
func Answer(key int) string { return " " + strconv.Itoa(key) + "." }

// FirstNumber returns the first run of ASCII digits in s, or "" if there is
// none.
func FirstNumber(s string) string {
	i := strings.IndexFunc(s, isDigit)
	if i < 0 {
		return ""
	}
	j := strings.IndexFunc(s[i:], func(r rune) bool { return !isDigit(r) })
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// Hit reports whether a model's continuation of a prompt retrieves key: its
// first number is the key, digit for digit.
func Hit(continuation string, key int) bool { return FirstNumber(continuation) == strconv.Itoa(key) }
