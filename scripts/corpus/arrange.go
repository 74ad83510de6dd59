package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// runArrange orders two sets of documents into one JSONL file so that,
// packed back to back into sequences of -seq-len tokens the way `lightning
// train -shuffle 0` packs them, no -whole document is cut by a sequence
// boundary, and -whole documents make up about -share of the tokens. Fill
// documents go where a whole document would not fit and may be cut. Token
// counts come from `lightning tokenize -jsonl -add-special-tokens` output
// (one {"ids": [...]} line per input line) plus -eos tokens per document.
func runArrange(args []string) error {
	fs := flag.NewFlagSet("arrange", flag.ContinueOnError)
	out := fs.String("o", "", "output .jsonl file")
	seqLen := fs.Int("seq-len", 0, "tokens per packed training sequence (lightning train -seq-len)")
	share := fs.Float64("share", 0.4, "fraction of the output's tokens that are -whole documents")
	eos := fs.Int("eos", 1, "tokens the trainer appends to each document (its EOS)")
	whole := fs.String("whole", "", "DOCS.jsonl:IDS.jsonl of the documents never to cut")
	fill := fs.String("fill", "", "DOCS.jsonl:IDS.jsonl of the documents that fill around them")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: corpus arrange -seq-len N -whole DOCS:IDS -fill DOCS:IDS [-share F] [-eos N] -o OUT.jsonl")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *seqLen < 2 || *whole == "" || *fill == "" || !(*share > 0 && *share < 1) || *eos < 0 {
		fs.Usage()
		return errors.New("arrange: need -o, -seq-len ≥ 2, -whole, -fill, 0 < -share < 1 and -eos ≥ 0")
	}
	w, err := readCounted(*whole, *eos)
	if err != nil {
		return err
	}
	f, err := readCounted(*fill, *eos)
	if err != nil {
		return err
	}
	order, err := arrange(w, f, *seqLen, *share)
	if err != nil {
		return err
	}
	file, err := os.Create(*out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(file)
	var tokens, wholeTokens int
	for _, d := range order {
		bw.WriteString(d.line)
		bw.WriteByte('\n')
		tokens += d.tokens
		if d.whole {
			wholeTokens += d.tokens
		}
	}
	if err := bw.Flush(); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d documents, %d tokens (%.1f sequences of %d), whole documents %d (%.1f%% of tokens)\n",
		*out, len(order), tokens, float64(tokens)/float64(*seqLen), *seqLen, len(w), 100*float64(wholeTokens)/float64(tokens))
	return nil
}

// countedDoc is one input line with its token count in training.
type countedDoc struct {
	line   string // the JSONL line as read
	tokens int
	whole  bool
}

// readCounted reads "DOCS.jsonl:IDS.jsonl": the documents and, line for
// line, their token ids; each document counts its ids plus eos.
func readCounted(spec string, eos int) ([]countedDoc, error) {
	docsPath, idsPath, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, fmt.Errorf("arrange: %q: want DOCS.jsonl:IDS.jsonl", spec)
	}
	lines, err := readLines(docsPath)
	if err != nil {
		return nil, err
	}
	idLines, err := readLines(idsPath)
	if err != nil {
		return nil, err
	}
	if len(idLines) != len(lines) {
		return nil, fmt.Errorf("arrange: %s has %d lines but %s has %d", docsPath, len(lines), idsPath, len(idLines))
	}
	docs := make([]countedDoc, len(lines))
	for i, l := range idLines {
		var o struct{ IDs []int32 }
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", idsPath, i+1, err)
		}
		docs[i] = countedDoc{line: lines[i], tokens: len(o.IDs) + eos}
	}
	return docs, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	r := bufio.NewReader(f)
	for {
		l, err := r.ReadString('\n')
		if l = strings.TrimRight(l, "\n"); l != "" {
			lines = append(lines, l)
		}
		if err == io.EOF {
			return lines, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
}

// arrange interleaves whole and fill documents, each in its own order: a
// whole document comes next while whole tokens are under share of the
// total, and only where it fits before the next boundary of seqLen tokens;
// fill documents go in front of it until it does. It ends after the last
// whole document.
func arrange(whole, fill []countedDoc, seqLen int, share float64) ([]countedDoc, error) {
	var out []countedDoc
	pos, wholeTokens, fi := 0, 0, 0
	for wi := 0; wi < len(whole); {
		d := whole[wi]
		if d.tokens > seqLen {
			return nil, fmt.Errorf("arrange: whole document %d has %d tokens, more than a %d-token sequence", wi+1, d.tokens, seqLen)
		}
		room := seqLen - pos%seqLen
		if float64(wholeTokens) <= share*float64(pos) && d.tokens <= room {
			d.whole = true
			out = append(out, d)
			pos += d.tokens
			wholeTokens += d.tokens
			wi++
			continue
		}
		if fi == len(fill) {
			return nil, fmt.Errorf("arrange: the fill documents ran out after %d tokens, before whole document %d of %d", pos, wi+1, len(whole))
		}
		out = append(out, fill[fi])
		pos += fill[fi].tokens
		fi++
	}
	return out, nil
}
