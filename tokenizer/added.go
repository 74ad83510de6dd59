package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AddedToken is a token matched in the text before the model runs (chat
// markers, special tokens). Its fields mirror the entries of tokenizer.json's
// "added_tokens".
type AddedToken struct {
	ID         int    // its id (see Tokenizer docs for how ids are assigned)
	Content    string // the exact text that produces it
	Special    bool   // dropped by Decode with skipSpecial
	SingleWord bool   // only matches when not inside a word
	LStrip     bool   // also swallows the white space on its left
	RStrip     bool   // also swallows the white space on its right
	Normalized bool   // matched in the normalized text instead of the raw text
}

// addedVocab is the reference's AddedVocabulary: the added tokens, by id and
// by content, and two matchers: one over the raw text (tokens with
// normalized false) and one over the normalized text (normalized true).
type addedVocab struct {
	byID      map[int]AddedToken
	byContent map[string]int
	special   map[string]bool // contents of special tokens
	// form is what decoding uses for a token with normalized true when the
	// normalizer changes its content: the normalized content (the
	// reference's normalized_cache), so the decoder can undo the
	// normalization. Only tokens whose form differs are present.
	form      map[int]string
	raw, norm *tokenTrie
}

// newAddedVocab registers tokens in order the way the reference's
// AddedVocabulary::add_tokens does when it loads a tokenizer.json: a token
// whose content is already known (an added token or a model token) takes
// that id; a new one takes the next id after the model's vocabulary and the
// added tokens so far. With keepIDs, a new token whose ID is not negative
// keeps that ID instead (loaders whose files state ids authoritatively).
func newAddedVocab(tokens []AddedToken, modelID func(string) (int, bool), modelSize int, n normalizer, keepIDs bool) *addedVocab {
	v := &addedVocab{byID: map[int]AddedToken{}, byContent: map[string]int{}, special: map[string]bool{}, form: map[int]string{}}
	var specials, others []AddedToken
	idOf := func(content string) (int, bool) {
		if id, ok := v.byContent[content]; ok {
			return id, true
		}
		return modelID(content)
	}
	seen := map[AddedToken]bool{} // tokens registered so far, ids zeroed
	maxID := -1
	for _, t := range tokens {
		given := t.ID
		t.ID = 0
		if t.Special && t.Content != "" && !v.special[t.Content] {
			specials = append(specials, t)
			v.special[t.Content] = true
		}
		if t.Content == "" || seen[t] {
			continue
		}
		seen[t] = true
		id, ok := idOf(t.Content)
		switch {
		case ok:
		case keepIDs && given >= 0:
			id = given
		default:
			id = modelSize
			if maxID >= 0 && (maxID >= modelSize || modelSize == 0) {
				id = maxID + 1
			}
		}
		maxID = max(maxID, id)
		if t.Normalized && n != nil {
			if f := n.normalize(t.Content); f != t.Content {
				v.form[id] = f
			}
		}
		v.byContent[t.Content] = id
		t.ID = id
		v.byID[id] = t
		if !v.special[t.Content] {
			others = append(others, t)
		}
	}
	var rawPats, normPats []string
	var rawIDs, normIDs []int
	for _, t := range append(specials, others...) {
		id, _ := idOf(t.Content)
		if t.Normalized {
			c := t.Content
			if n != nil {
				c = n.normalize(c)
			}
			normPats, normIDs = append(normPats, c), append(normIDs, id)
		} else {
			rawPats, rawIDs = append(rawPats, t.Content), append(rawIDs, id)
		}
	}
	v.raw = newTokenTrie(rawPats, rawIDs)
	v.norm = newTokenTrie(normPats, normIDs)
	return v
}

// tokens returns the added tokens sorted by id.
func (v *addedVocab) tokens() []AddedToken {
	out := make([]AddedToken, 0, len(v.byID))
	for _, t := range v.byID {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// tokenTrie finds added tokens in text: leftmost-longest, non-overlapping
// matches, as the reference's Aho-Corasick automaton (MatchKind
// LeftmostLongest) reports them.
type tokenTrie struct {
	first [256]bool // bytes that start some pattern
	nodes []trieNode
	ids   []int // pattern index -> token id
}

type trieNode struct {
	edges []trieEdge
	pat   int // index of the pattern ending here, or -1
}

type trieEdge struct {
	b    byte
	next int32
}

func newTokenTrie(pats []string, ids []int) *tokenTrie {
	t := &tokenTrie{nodes: []trieNode{{pat: -1}}, ids: ids}
	for pi, p := range pats {
		if p == "" {
			continue
		}
		t.first[p[0]] = true
		cur := 0
		for i := 0; i < len(p); i++ {
			nxt := -1
			for _, e := range t.nodes[cur].edges {
				if e.b == p[i] {
					nxt = int(e.next)
					break
				}
			}
			if nxt < 0 {
				nxt = len(t.nodes)
				t.nodes = append(t.nodes, trieNode{pat: -1})
				t.nodes[cur].edges = append(t.nodes[cur].edges, trieEdge{p[i], int32(nxt)})
			}
			cur = nxt
		}
		if t.nodes[cur].pat < 0 { // the first of duplicate patterns wins
			t.nodes[cur].pat = pi
		}
	}
	return t
}

func (t *tokenTrie) empty() bool { return len(t.nodes) == 1 }

// longestAt returns the end and pattern index of the longest pattern that
// starts at s[i], or -1.
func (t *tokenTrie) longestAt(s string, i int) (int, int) {
	end, pat, cur := -1, -1, 0
	for j := i; j < len(s); j++ {
		nxt := -1
		for _, e := range t.nodes[cur].edges {
			if e.b == s[j] {
				nxt = int(e.next)
				break
			}
		}
		if nxt < 0 {
			break
		}
		cur = nxt
		if p := t.nodes[cur].pat; p >= 0 {
			end, pat = j+1, p
		}
	}
	return end, pat
}

// addedSplit is a part of a text: an added token (id >= 0) or text to
// normalize and tokenize (id < 0).
type addedSplit struct {
	start, end int
	id         int
}

// split cuts s at the added tokens t finds, following the reference's
// AddedVocabulary::find_matches, including its single_word, lstrip and
// rstrip rules. The parts cover s in order.
func (v *addedVocab) split(t *tokenTrie, s string, dst []addedSplit) []addedSplit {
	if t.empty() {
		return append(dst, addedSplit{0, len(s), -1})
	}
	startOffset := 0
	for i := 0; i < len(s); {
		if !t.first[s[i]] {
			i++
			continue
		}
		end, pat := t.longestAt(s, i)
		if end < 0 {
			i++
			continue
		}
		start, stop := i, end
		i = end
		id := t.ids[pat]
		tok := v.byID[id]
		if tok.SingleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if tok.LStrip {
			start = max(len(strings.TrimRightFunc(s[:start], unicode.IsSpace)), startOffset)
		}
		if tok.RStrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
		}
		if startOffset < start {
			dst = append(dst, addedSplit{startOffset, start, -1})
		}
		dst = append(dst, addedSplit{start, stop, id})
		startOffset = stop
	}
	if startOffset != len(s) {
		dst = append(dst, addedSplit{startOffset, len(s), -1})
	}
	return dst
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordRune(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordRune(r)
}
