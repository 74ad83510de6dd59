package main

import (
	"fmt"
	"regexp"
	"sort"
)

// austenChapter matches a chapter heading line of janeaustenr's texts
// ("CHAPTER I", "Chapter 12"), the same rule janeaustenr's own documentation
// uses to count chapters.
var austenChapter = regexp.MustCompile(`(?i)^chapter [0-9ivxlc]+\b`)

// readAusten reads Jane Austen's six novels from the R package janeaustenr's
// lazy-load data (one character vector of lines per novel). A document is one
// chapter; the title lines before a novel's first chapter go with that
// chapter. Hard-wrapped lines are joined into paragraphs.
func readAusten(dataBase string) ([]doc, error) {
	novels, err := readRData(dataBase)
	if err != nil {
		return nil, fmt.Errorf("austen: %w", err)
	}
	names := make([]string, 0, len(novels))
	for name := range novels {
		names = append(names, name)
	}
	sort.Strings(names)
	var docs []doc
	for _, name := range names {
		chapters := splitChapters(novels[name])
		for i, lines := range chapters {
			docs = append(docs, doc{ID: fmt.Sprintf("%s/%d", name, i+1), Text: unwrap(lines)})
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("austen: no novels in %s", dataBase)
	}
	return docs, nil
}

// splitChapters cuts a novel's lines at chapter headings; lines before the
// first heading are kept with the first chapter.
func splitChapters(lines []string) [][]string {
	var out [][]string
	start := 0
	seen := false
	for i, l := range lines {
		if austenChapter.MatchString(l) {
			if seen {
				out = append(out, lines[start:i])
				start = i
			}
			seen = true
		}
	}
	return append(out, lines[start:])
}
