package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// readBible reads a SWORD zText module (here the World English Bible,
// engWEB2015eb, from Debian's sword-text-web) directly from its files, so no
// SWORD library is needed. The module's .conf says BlockType=BOOK and
// CompressType=ZIP: each testament's .bzz holds one zlib stream per book,
// located by 12-byte little-endian records (offset, compressed size,
// uncompressed size) in .bzs. A document is one chapter (a book's title and
// introduction go with its first chapter; front matter such as the
// translators' preface is a document of its own).
func readBible(moduleDir string) ([]doc, error) {
	var docs []doc
	for _, testament := range []string{"ot", "nt"} {
		blocks, err := readZTextBlocks(filepath.Join(moduleDir, testament))
		if err != nil {
			return nil, fmt.Errorf("bible: %w", err)
		}
		for i, blk := range blocks {
			for j, d := range osisChapters(blk) {
				if d.ID == "" {
					d.ID = fmt.Sprintf("front-%s-%d-%d", testament, i, j)
				}
				docs = append(docs, d)
			}
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("bible: no text in %s", moduleDir)
	}
	return docs, nil
}

// readZTextBlocks decompresses every block of one testament (base is the
// path without the .bzs/.bzz extension).
func readZTextBlocks(base string) ([]string, error) {
	index, err := os.ReadFile(base + ".bzs")
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(base + ".bzz")
	if err != nil {
		return nil, err
	}
	if len(index)%12 != 0 {
		return nil, fmt.Errorf("%s.bzs: size %d is not a multiple of 12", base, len(index))
	}
	var blocks []string
	for r := 0; r < len(index); r += 12 {
		off := binary.LittleEndian.Uint32(index[r:])
		size := binary.LittleEndian.Uint32(index[r+4:])
		usize := binary.LittleEndian.Uint32(index[r+8:])
		if uint64(off)+uint64(size) > uint64(len(data)) {
			return nil, fmt.Errorf("%s.bzs: block %d [%d, +%d) is past the end of .bzz (%d bytes)", base, r/12, off, size, len(data))
		}
		zr, err := zlib.NewReader(bytes.NewReader(data[off : off+size]))
		if err != nil {
			return nil, fmt.Errorf("%s.bzz block %d: %w", base, r/12, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("%s.bzz block %d: %w", base, r/12, err)
		}
		if len(raw) != int(usize) {
			return nil, fmt.Errorf("%s.bzz block %d: %d bytes, index says %d", base, r/12, len(raw), usize)
		}
		blocks = append(blocks, string(raw))
	}
	return blocks, nil
}

// noteMark stands for a dropped footnote; the module puts no space between
// the word before a note and the word after it, so noteGap restores one
// where a word or an opening quote follows.
const noteMark = "\x00"

var noteGap = regexp.MustCompile(`([^\s\x00])\x00+([\pL\pN“‘(])`)

var (
	osisTag  = regexp.MustCompile(`(?s)<(/?)([A-Za-z]+)([^>]*?)(/?)>`)
	osisAttr = regexp.MustCompile(`([A-Za-z]+)="([^"]*)"`)
)

// osisChapters turns one block of OSIS markup into plain-text documents, one
// per chapter (ID the chapter's osisID, "Gen.1"); a book's titles and
// introduction go with its first chapter, and markup outside any book (front
// matter) becomes a document with an empty ID. Footnotes are dropped; titles,
// chapter headings ("Genesis 1"), paragraphs, poetry lines and list items
// become line breaks.
func osisChapters(block string) []doc {
	var docs []doc
	cur := doc{}
	var b strings.Builder
	bookName := ""
	flush := func() {
		text := noteGap.ReplaceAllString(b.String(), "$1 $2")
		text = strings.ReplaceAll(text, noteMark, "")
		cur.Text = collapseSpaces(html.UnescapeString(text))
		if cur.Text != "" {
			docs = append(docs, cur)
		}
		cur = doc{}
		b.Reset()
	}
	inNote := 0
	pos := 0
	for _, m := range osisTag.FindAllStringSubmatchIndex(block, -1) {
		if inNote == 0 {
			b.WriteString(block[pos:m[0]])
		}
		pos = m[1]
		closing := m[3] > m[2]
		name := block[m[4]:m[5]]
		attrs := map[string]string{}
		for _, a := range osisAttr.FindAllStringSubmatch(block[m[6]:m[7]], -1) {
			attrs[a[1]] = a[2]
		}
		selfClosing := m[9] > m[8]
		if name == "note" {
			if inNote == 0 && !closing {
				b.WriteString(noteMark)
			}
			switch {
			case selfClosing:
			case closing:
				inNote--
			default:
				inNote++
			}
			continue
		}
		if inNote > 0 {
			continue
		}
		switch name {
		case "div":
			if attrs["type"] == "book" {
				flush() // the front matter or the book's last chapter
				bookName = attrs["osisID"]
				continue
			}
			b.WriteString("\n\n")
		case "milestone":
			if attrs["type"] == "x-usfm-toc2" && attrs["n"] != "" {
				bookName = attrs["n"]
			}
		case "chapter":
			if attrs["sID"] != "" {
				if cur.ID != "" {
					flush()
				}
				cur.ID = attrs["osisID"]
				fmt.Fprintf(&b, "\n\n%s %s\n\n", bookName, attrs["n"])
			}
		case "title", "lg", "p":
			b.WriteString("\n\n")
		case "l", "item":
			if closing || attrs["eID"] != "" {
				b.WriteString("\n")
			}
		case "lb", "list":
			b.WriteString("\n")
		}
	}
	if inNote == 0 {
		b.WriteString(block[pos:])
	}
	flush()
	return docs
}
