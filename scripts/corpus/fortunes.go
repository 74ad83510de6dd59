package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// skippedFortuneFiles are fortune files that are not prose.
var skippedFortuneFiles = map[string]bool{"ascii-art": true}

// readFortunes reads the fortune-mod cookie files in dir (the text files
// without extension; .dat indexes and .u8 links are skipped). A document is
// one fortune: the text between lines holding a single %.
func readFortunes(dir string) ([]doc, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("fortunes: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && !strings.Contains(n, ".") && !skippedFortuneFiles[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var docs []doc
	for _, name := range names {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("fortunes: %w", err)
		}
		for i, f := range splitFortunes(string(raw)) {
			docs = append(docs, doc{ID: fmt.Sprintf("%s/%d", name, i+1), Text: f})
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("fortunes: no cookie files in %s", dir)
	}
	return docs, nil
}

// splitFortunes splits a cookie file at lines holding only %, trims
// trailing spaces of each line, and drops empty fortunes. Layout inside a
// fortune (verse, dialogue, indented attributions) is kept.
func splitFortunes(raw string) []string {
	var out []string
	var cur []string
	flush := func() {
		text := strings.Trim(strings.Join(cur, "\n"), "\n")
		if strings.TrimSpace(text) != "" {
			out = append(out, text)
		}
		cur = nil
	}
	for _, l := range strings.Split(raw, "\n") {
		if strings.TrimSpace(l) == "%" {
			flush()
			continue
		}
		cur = append(cur, strings.TrimRight(l, " \t\r"))
	}
	flush()
	return out
}
