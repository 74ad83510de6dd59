package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "encode text to token ids, or decode ids to text, with a tokenizer",
		usage:   "[-tokenizer FILE|DIR|FILE.gguf] [-add-special-tokens] [-jsonl] [-decode [-skip-special-tokens]]",
		help: `Reads standard input and writes JSON to standard output.

Encoding (the default) reads all of standard input as one text, byte for byte (a trailing
newline is part of the text), and prints its ids: [1,2,3].
With -jsonl each input line is {"text": "...", "add_special_tokens": true} (the field is optional
and defaults to -add-special-tokens) and each output line is {"ids": [...]}.

With -decode, standard input is a JSON array of ids and the output is the decoded text as a JSON
string; with -jsonl each line is {"ids": [...]} and each output line is {"text": "..."}.

-tokenizer takes a tokenizer.json file, a folder with tokenizer.json, or with vocab.json and
merges.txt (GPT-2 style), or a .gguf file (its tokenizer.ggml.* section, as 'run -model FILE.gguf'
uses it); without it, the tokenizer of the built-in model mini is used.`,
		run: func(fs *flag.FlagSet, args []string) error { return runTokenize(fs, args, stdin, stdout) },
	})
}

func runTokenize(fs *flag.FlagSet, args []string, in io.Reader, out io.Writer) error {
	path := fs.String("tokenizer", "", "tokenizer.json file, a folder with tokenizer.json or vocab.json + merges.txt, or a .gguf file (default: the built-in model's)")
	addSpecial := fs.Bool("add-special-tokens", false, "let the post-processor add its special tokens (e.g. BOS)")
	jsonl := fs.Bool("jsonl", false, "one JSON object per line in and out")
	decode := fs.Bool("decode", false, "decode ids to text instead of encoding")
	skipSpecial := fs.Bool("skip-special-tokens", false, "with -decode: drop special tokens")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *skipSpecial && !*decode {
		return fmt.Errorf("%w: -skip-special-tokens needs -decode", errUsage)
	}
	tok, err := loadTokenizer(*path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	switch {
	case *jsonl && *decode:
		err = tokenizeLines(in, func(n int, line []byte) error {
			var rec struct {
				IDs *[]int `json:"ids"`
			}
			if err := json.Unmarshal(line, &rec); err != nil || rec.IDs == nil {
				return fmt.Errorf("line %d: want {\"ids\": [...]}: %v", n, err)
			}
			return tokenizeWrite(w, struct {
				Text string `json:"text"`
			}{tok.Decode(*rec.IDs, *skipSpecial)})
		})
	case *jsonl:
		err = tokenizeLines(in, func(n int, line []byte) error {
			var rec struct {
				Text       *string `json:"text"`
				AddSpecial *bool   `json:"add_special_tokens"`
			}
			if err := json.Unmarshal(line, &rec); err != nil || rec.Text == nil {
				return fmt.Errorf("line %d: want {\"text\": \"...\"}: %v", n, err)
			}
			add := *addSpecial
			if rec.AddSpecial != nil {
				add = *rec.AddSpecial
			}
			return tokenizeWrite(w, struct {
				IDs []int `json:"ids"`
			}{tok.Encode(*rec.Text, add)})
		})
	case *decode:
		var ids []int
		if err := json.NewDecoder(in).Decode(&ids); err != nil {
			return fmt.Errorf("reading ids: want a JSON array of integers: %w", err)
		}
		err = tokenizeWrite(w, tok.Decode(ids, *skipSpecial))
	default:
		var text []byte
		if text, err = io.ReadAll(in); err != nil {
			return err
		}
		err = tokenizeWrite(w, tok.Encode(string(text), *addSpecial))
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// tokenizeLines calls f for every non-blank line of r (numbered from 1).
func tokenizeLines(r io.Reader, f func(n int, line []byte) error) error {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			if ferr := f(n, line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// tokenizeWrite writes v as compact JSON (without HTML escaping) and a
// newline.
func tokenizeWrite(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
