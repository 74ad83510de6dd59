package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// wordnetPOS lists WordNet's data files in order, with the synset type
// letters they hold and the part of speech's name and sense-key number.
var wordnetPOS = []struct {
	file, name string
	keyNumber  int
}{
	{"noun", "noun", 1},
	{"verb", "verb", 2},
	{"adj", "adjective", 3},
	{"adv", "adverb", 4},
}

// synset is one WordNet synonym set.
type synset struct {
	Offset  string   // byte offset in its data file, the synset's id there
	POS     string   // noun, verb, adjective, adverb
	LexFile int      // lexicographer file number
	Words   []string // lemmas with spaces for underscores, adjective markers removed
	LexIDs  []int    // lexical id of each word (for sense keys)
	Gloss   string   // definition(s) and example sentences, as in WordNet
}

// Definition is the gloss without its quoted example sentences.
func (s synset) Definition() string {
	var defs []string
	for _, part := range strings.Split(s.Gloss, "; ") {
		if p := strings.TrimSpace(part); p != "" && !strings.HasPrefix(p, `"`) {
			defs = append(defs, p)
		}
	}
	return strings.Join(defs, "; ")
}

// Examples are the gloss's quoted example sentences, without quotes.
func (s synset) Examples() []string {
	var ex []string
	for _, part := range strings.Split(s.Gloss, "; ") {
		p := strings.TrimSpace(part)
		if len(p) >= 2 && p[0] == '"' {
			ex = append(ex, strings.Trim(p, `"`))
		}
	}
	return ex
}

// Text is the synset as a document: "w1, w2 (noun): gloss".
func (s synset) Text() string {
	return fmt.Sprintf("%s (%s): %s", strings.Join(s.Words, ", "), s.POS, s.Gloss)
}

// readWordNetData parses one WordNet data file (data.noun, …). Lines starting
// with two spaces are the licence header.
func readWordNetData(path, pos string) ([]synset, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wordnet: %w", err)
	}
	var out []synset
	for n, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "  ") {
			continue
		}
		s, err := parseSynset(line, pos)
		if err != nil {
			return nil, fmt.Errorf("wordnet: %s:%d: %w", path, n+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseSynset parses one data line: offset lex_filenum ss_type w_cnt(hex)
// {word lex_id(hex)} p_cnt {pointer} [frames] | gloss.
func parseSynset(line, pos string) (synset, error) {
	head, gloss, ok := strings.Cut(line, " | ")
	if !ok {
		return synset{}, fmt.Errorf("no gloss")
	}
	f := strings.Fields(head)
	if len(f) < 4 {
		return synset{}, fmt.Errorf("short line")
	}
	lexFile, err := strconv.Atoi(f[1])
	if err != nil {
		return synset{}, err
	}
	n, err := strconv.ParseInt(f[3], 16, 32)
	if err != nil {
		return synset{}, err
	}
	if len(f) < 4+2*int(n) {
		return synset{}, fmt.Errorf("%d words announced, line too short", n)
	}
	s := synset{Offset: f[0], POS: pos, LexFile: lexFile, Gloss: strings.TrimSpace(gloss)}
	for i := 0; i < int(n); i++ {
		w := f[4+2*i]
		if j := strings.IndexByte(w, '('); j > 0 && strings.HasSuffix(w, ")") {
			w = w[:j] // adjective position marker: (a), (p), (ip)
		}
		id, err := strconv.ParseInt(f[5+2*i], 16, 32)
		if err != nil {
			return synset{}, err
		}
		s.Words = append(s.Words, strings.ReplaceAll(w, "_", " "))
		s.LexIDs = append(s.LexIDs, int(id))
	}
	return s, nil
}

// wordNet is the parsed database: synsets by part of speech and offset, each
// lemma's senses per part of speech in WordNet's order (most frequent first),
// and sense tag counts from cntlist.rev.
type wordNet struct {
	Synsets []synset
	byKey   map[string]*synset    // pos + "/" + offset
	senses  map[string][][]string // lemma -> per wordnetPOS index, synset keys in sense order
	counts  map[string]int        // "lemma%n:lexfile:lexid" -> tag count
}

func readWordNet(dir string) (*wordNet, error) {
	wn := &wordNet{byKey: map[string]*synset{}, senses: map[string][][]string{}, counts: map[string]int{}}
	for pi, p := range wordnetPOS {
		ss, err := readWordNetData(filepath.Join(dir, "data."+p.file), p.name)
		if err != nil {
			return nil, err
		}
		wn.Synsets = append(wn.Synsets, ss...)
		idx, err := os.ReadFile(filepath.Join(dir, "index."+p.file))
		if err != nil {
			return nil, fmt.Errorf("wordnet: %w", err)
		}
		for _, line := range strings.Split(string(idx), "\n") {
			if line == "" || strings.HasPrefix(line, "  ") {
				continue
			}
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			nSyn, err1 := strconv.Atoi(f[2])
			nPtr, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || len(f) < 6+nPtr+nSyn {
				return nil, fmt.Errorf("wordnet: index.%s: bad line %q", p.file, line)
			}
			lemma := strings.ReplaceAll(f[0], "_", " ")
			if wn.senses[lemma] == nil {
				wn.senses[lemma] = make([][]string, len(wordnetPOS))
			}
			for _, off := range f[len(f)-nSyn:] {
				wn.senses[lemma][pi] = append(wn.senses[lemma][pi], p.name+"/"+off)
			}
		}
	}
	for i := range wn.Synsets {
		s := &wn.Synsets[i]
		wn.byKey[s.POS+"/"+s.Offset] = s
	}
	cnt, err := os.ReadFile(filepath.Join(dir, "cntlist.rev"))
	if err != nil {
		return nil, fmt.Errorf("wordnet: %w", err)
	}
	for _, line := range strings.Split(string(cnt), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if k := senseKeyPrefix(f[0]); k != "" {
			wn.counts[k] += n
		}
	}
	return wn, nil
}

// senseKeyPrefix shortens a sense key lemma%ss:lexfile:lexid:head:headid to
// lemma%ss:lexfile:lexid, with adjective satellites (5) counted as
// adjectives (3).
func senseKeyPrefix(key string) string {
	lemma, rest, ok := strings.Cut(key, "%")
	if !ok {
		return ""
	}
	f := strings.Split(rest, ":")
	if len(f) < 3 {
		return ""
	}
	ss, _ := strconv.Atoi(f[0])
	file, _ := strconv.Atoi(f[1])
	id, _ := strconv.Atoi(f[2])
	if ss == 5 {
		ss = 3
	}
	return fmt.Sprintf("%s%%%d:%d:%d", strings.ReplaceAll(lemma, "_", " "), ss, file, id)
}

// commonestSense returns the lemma's most frequent sense: among the first
// (most frequent) sense of each part of speech, the one tagged most often in
// WordNet's semantic concordance (cntlist.rev), and that count. Ties go to
// noun, verb, adjective, adverb in that order.
func (wn *wordNet) commonestSense(lemma string) (*synset, int) {
	var best *synset
	bestCount := -1
	for pi, keys := range wn.senses[lemma] {
		if len(keys) == 0 {
			continue
		}
		s := wn.byKey[keys[0]]
		if s == nil {
			continue
		}
		count := 0
		for i, w := range s.Words {
			if strings.EqualFold(w, lemma) {
				count = wn.counts[fmt.Sprintf("%s%%%d:%d:%d", strings.ToLower(w), wordnetPOS[pi].keyNumber, s.LexFile, s.LexIDs[i])]
				break
			}
		}
		if count > bestCount {
			best, bestCount = s, count
		}
	}
	return best, bestCount
}
