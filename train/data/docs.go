// Package data reads training documents, tokenizes them as a stream and packs
// them into fixed-length sequences for the trainer (train), with a held-out
// split by document and a position that can be saved and restored.
//
// It knows text and token ids; it knows nothing of the model.
package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Doc is one document read from the data paths.
type Doc struct {
	// Source is the file the document came from, as reached from the path
	// given (a folder's files are joined onto the folder's path).
	Source string
	// Name is Source relative to the path it was found under: the path
	// inside a folder given, or the base name of a file given. It does not
	// change when the same data is given by another path (absolute,
	// relative, moved), so the held-out split and the saved data position
	// use Name and Index, not Source.
	Name string
	// Index is the document's 0-based line number in a JSONL file, and 0
	// for a text file.
	Index int
	// Text is the document's text: a text file's whole contents (after a
	// leading UTF-8 byte-order mark, if any) or a JSONL line's "text" field.
	Text string
}

// binarySniffLen is how much of a file is checked for a NUL byte when
// deciding whether a file in a folder is binary (git's heuristic and length).
const binarySniffLen = 8000

// ReadDocs calls fn for every document under paths, in order: the paths in
// the order given; a folder's files recursively in lexical order of their
// paths, skipping hidden entries (names starting with ".") and binary files
// (a NUL byte in the first 8000 bytes, or invalid UTF-8); a file ending in
// ".jsonl" gives one document per non-blank line, each a JSON object with a
// string "text" field; any other file is one document. A file ending in
// ".gz" is read through gzip, as the file its name has without ".gz". Documents whose text
// is empty are skipped. A path named directly is read even if hidden, but a
// binary file named directly is an error.
//
// ReadDocs stops at the first error from fn and returns it unwrapped, so a
// caller can stop early with a sentinel error. Errors in the data name the
// file, and the line for JSONL.
func ReadDocs(paths []string, fn func(Doc) error) error {
	if len(paths) == 0 {
		return errors.New("no data paths given")
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			if err := readFile(p, filepath.Base(p), true, fn); err != nil {
				return err
			}
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil // folders are walked into; sockets, devices and symlinks are not data
			}
			rel, err := filepath.Rel(p, path)
			if err != nil {
				return err
			}
			return readFile(path, filepath.ToSlash(rel), false, fn)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Docs is ReadDocs as an iterator: it yields each document with a nil
// error, or a zero Doc with the error that ended the reading.
func Docs(paths []string) iter.Seq2[Doc, error] {
	return func(yield func(Doc, error) bool) {
		stopped := errors.New("stopped")
		err := ReadDocs(paths, func(d Doc) error {
			if !yield(d, nil) {
				return stopped
			}
			return nil
		})
		if err != nil && err != stopped {
			yield(Doc{}, err)
		}
	}
}

// readFile reads one file as JSONL or as one text document.
func readFile(path, name string, named bool, fn func(Doc) error) error {
	if strings.HasSuffix(strings.TrimSuffix(path, ".gz"), ".jsonl") {
		return readJSONL(path, name, fn)
	}
	f, err := openData(path)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b = bytes.TrimPrefix(b, utf8BOM)
	if isBinary(b) {
		if named {
			return fmt.Errorf("%s: binary file (a NUL byte or invalid UTF-8), not text", path)
		}
		return nil
	}
	if len(b) == 0 {
		return nil
	}
	return fn(Doc{Source: path, Name: name, Text: string(b)})
}

var utf8BOM = []byte("\xef\xbb\xbf")

func isBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), binarySniffLen)], 0) >= 0 || !utf8.Valid(b)
}

// openData opens a file for reading, through gzip if its name ends in
// ".gz".
func openData(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil || !strings.HasSuffix(path, ".gz") {
		return f, err
	}
	z, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return gzipFile{z, f}, nil
}

// gzipFile closes both the decompressor and the file under it.
type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}

// readJSONL streams a JSONL file line by line, so a large file is never held
// in memory at once.
func readJSONL(path, name string, fn func(Doc) error) error {
	f, err := openData(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 0; ; line++ {
		b, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s:%d: %w", path, line+1, err)
		}
		if line == 0 {
			b = bytes.TrimPrefix(b, utf8BOM)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			text, perr := jsonlText(b)
			if perr != nil {
				return fmt.Errorf("%s:%d: %v", path, line+1, perr)
			}
			if text != "" {
				if ferr := fn(Doc{Source: path, Name: name, Index: line, Text: text}); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// jsonlText returns the "text" field of one JSONL line. The key is matched
// exactly (encoding/json's struct decoding would also accept "Text").
func jsonlText(line []byte) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return "", errors.New("line is not a JSON object")
		}
		return "", fmt.Errorf("invalid JSON: %v", err)
	}
	raw, ok := obj["text"]
	if !ok {
		return "", errors.New(`no "text" field`)
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil || string(raw) == "null" {
		return "", fmt.Errorf(`"text" is not a string: %s`, truncate(string(raw), 40))
	}
	return text, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
