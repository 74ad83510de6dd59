package main

import (
	"strings"
	"unicode"
)

// unwrap joins hard-wrapped lines into paragraphs: a blank line ends a
// paragraph, consecutive lines are joined with one space, and a line that
// starts with whitespace (verse, quoted code, signatures) keeps its own line.
// Paragraphs are separated by one blank line; the result has no trailing
// newline.
func unwrap(lines []string) string {
	var paras []string
	var cur []string // lines of the current paragraph, already joined where prose
	var prose strings.Builder
	flushProse := func() {
		if prose.Len() > 0 {
			cur = append(cur, prose.String())
			prose.Reset()
		}
	}
	flushPara := func() {
		flushProse()
		if len(cur) > 0 {
			paras = append(paras, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	for _, l := range lines {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		switch {
		case l == "":
			flushPara()
		case l[0] == ' ' || l[0] == '\t':
			flushProse()
			cur = append(cur, strings.TrimRightFunc(l, unicode.IsSpace))
		default:
			if prose.Len() > 0 {
				prose.WriteByte(' ')
			}
			prose.WriteString(l)
		}
	}
	flushPara()
	return strings.Join(paras, "\n\n")
}

// collapseSpaces replaces every run of spaces and tabs inside each line by one
// space, trims the lines, and collapses runs of blank lines into one.
func collapseSpaces(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := true // drop leading blank lines
	for _, l := range lines {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n")
}
