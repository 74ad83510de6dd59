package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// dictdAlphabet is the base-64 digit order of dictd index offsets.
const dictdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// dictdNumber decodes a dictd base-64 number.
func dictdNumber(s string) (int, error) {
	n := 0
	for _, c := range s {
		d := strings.IndexRune(dictdAlphabet, c)
		if d < 0 {
			return 0, fmt.Errorf("bad dictd number %q", s)
		}
		n = n*64 + d
	}
	return n, nil
}

// devilEntry is one article of The Devil's Dictionary.
type devilEntry struct {
	ID       string // the headword, with "#2", "#3" … for later articles of the same headword
	Headword string // as in the index, lower case
	Text     string // the article, unwrapped, starting "HEADWORD, n. …"
}

// readDevil reads The Devil's Dictionary from dict-devil's dictd database
// (devil.index, devil.dict.dz; dictzip is gzip-compatible). A document is one
// article; the database's own 00database* entries are skipped, and an article
// reached from several headwords is kept once.
func readDevil(index, dict string) ([]devilEntry, error) {
	idx, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("devil: %w", err)
	}
	f, err := os.Open(dict)
	if err != nil {
		return nil, fmt.Errorf("devil: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("devil: %s: %w", dict, err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("devil: %s: %w", dict, err)
	}
	type loc struct{ off, n int }
	var entries []devilEntry
	var locs []loc
	seen := map[loc]bool{}
	for _, line := range strings.Split(string(idx), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || strings.HasPrefix(f[0], "00database") || strings.HasPrefix(f[0], "00-database") {
			continue
		}
		off, err := dictdNumber(f[1])
		if err != nil {
			return nil, fmt.Errorf("devil: %s: %w", index, err)
		}
		n, err := dictdNumber(f[2])
		if err != nil {
			return nil, fmt.Errorf("devil: %s: %w", index, err)
		}
		if off+n > len(body) {
			return nil, fmt.Errorf("devil: %s: entry %q past the end of the dictionary", index, f[0])
		}
		l := loc{off, n}
		if seen[l] {
			continue
		}
		seen[l] = true
		locs = append(locs, l)
		entries = append(entries, devilEntry{Headword: f[0], Text: unwrap(strings.Split(string(body[off:off+n]), "\n"))})
	}
	// Keep the dictionary's own order (by offset).
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return locs[order[a]].off < locs[order[b]].off })
	out := make([]devilEntry, 0, len(entries))
	count := map[string]int{}
	for _, i := range order {
		e := entries[i]
		if e.Text == "" {
			continue
		}
		count[e.Headword]++
		e.ID = e.Headword
		if n := count[e.Headword]; n > 1 {
			e.ID = fmt.Sprintf("%s#%d", e.Headword, n)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("devil: no entries in %s", index)
	}
	return out, nil
}

// devilDefinition returns an article's definition for the chat set: the
// prose after the heading "HEADWORD, pos.  " up to the end of the first
// paragraph, with runs of spaces collapsed; "" when the article has no prose
// definition on its first line (it starts with verse, or the heading has no
// part of speech).
func devilDefinition(text string) string {
	first, _, _ := strings.Cut(text, "\n\n")
	first, _, _ = strings.Cut(first, "\n") // verse follows on its own lines
	i := strings.Index(first, ".  ")
	if i < 0 || i > 40 || !strings.Contains(first[:i], ", ") {
		return ""
	}
	return strings.Join(strings.Fields(first[i+3:]), " ")
}
