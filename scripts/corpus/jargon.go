package main

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// jargonHeading is a top-level heading of the plain-text Jargon File: a
	// chapter of the introduction, the glossary, an appendix.
	jargonHeading = regexp.MustCompile(`^(Chapter [0-9]+\. |Appendix [A-Z]\. |Bibliography$|Glossary$)`)
	// jargonEntry starts a lexicon entry: "   :headword: pronunciation, pos".
	jargonEntry = regexp.MustCompile(`^   :([^:]+(?::[^: ][^:]*)*):`)
	// jargonLetter is a letter heading of the lexicon ("  A"), followed by a
	// list of the letter's headwords that is not copied.
	jargonLetter = regexp.MustCompile(`^  [0-9A-Z]$`)
	jargonXref   = strings.NewReplacer("{", "", "}", "")
)

// jargonFile splits the plain-text Jargon File (jargon-text's jargon.txt) into
// documents: one per lexicon entry (ID "entry/<headword>", text starting
// "headword: pronunciation, part of speech"), one per chapter of the
// introduction and per appendix. The title page, the tables of contents and
// the glossary's headword lists are dropped; {cross-reference} braces are
// removed and hard-wrapped lines are joined into paragraphs.
func jargonFile(raw string) []doc {
	var docs []doc
	var cur *doc
	var lines []string
	seen := map[string]int{}
	flush := func() {
		if cur != nil {
			cur.Text = jargonXref.Replace(unwrap(lines))
			if cur.Text != "" {
				seen[cur.ID]++
				if n := seen[cur.ID]; n > 1 {
					cur.ID = fmt.Sprintf("%s#%d", cur.ID, n)
				}
				docs = append(docs, *cur)
			}
		}
		cur, lines = nil, nil
	}
	for _, l := range strings.Split(raw, "\n") {
		switch {
		case jargonHeading.MatchString(l):
			flush()
			if !strings.HasPrefix(l, "Glossary") {
				cur = &doc{ID: "section/" + strings.TrimSpace(l)}
				lines = []string{l, ""}
			}
		case jargonLetter.MatchString(l):
			flush()
		case jargonEntry.MatchString(l):
			flush()
			cur = &doc{ID: "entry/" + jargonEntry.FindStringSubmatch(l)[1]}
			lines = []string{strings.TrimPrefix(l, "   :")}
		case cur != nil:
			lines = append(lines, dedent(l, 3))
		}
	}
	flush()
	return docs
}

// dedent removes up to n leading spaces.
func dedent(l string, n int) string {
	for i := 0; i < n && strings.HasPrefix(l, " "); i++ {
		l = l[1:]
	}
	return l
}
