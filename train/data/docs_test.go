package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFiles creates files (path relative to dir → contents) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, paths ...string) []Doc {
	t.Helper()
	var docs []Doc
	if err := ReadDocs(paths, func(d Doc) error { docs = append(docs, d); return nil }); err != nil {
		t.Fatal(err)
	}
	return docs
}

func TestReadDocsFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"b.txt":              "second file",
		"a.txt":              "\xef\xbb\xbffirst file",
		"sub/c.md":           "# nested\n",
		"sub/d.jsonl":        "{\"text\": \"line one\"}\n\n{\"text\": \"\", \"id\": 3}\r\n{\"id\": 1, \"text\": \"line four\"}",
		".hidden.txt":        "hidden file",
		".git/config":        "hidden folder",
		"sub/image.bin":      "PNG\x00\x01\x02",
		"sub/latin1.txt":     "caf\xe9",
		"sub/empty.txt":      "",
		"sub/zz/.keep/e.txt": "inside a hidden folder",
	})
	got := readAll(t, dir)
	want := []Doc{
		{filepath.Join(dir, "a.txt"), "a.txt", 0, "first file"},
		{filepath.Join(dir, "b.txt"), "b.txt", 0, "second file"},
		{filepath.Join(dir, "sub/c.md"), "sub/c.md", 0, "# nested\n"},
		{filepath.Join(dir, "sub/d.jsonl"), "sub/d.jsonl", 0, "line one"},
		{filepath.Join(dir, "sub/d.jsonl"), "sub/d.jsonl", 3, "line four"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestReadDocsPathsInOrder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"x.txt": "x", "y/z.txt": "z", ".h.txt": "named hidden file"})
	got := readAll(t, filepath.Join(dir, "y"), filepath.Join(dir, "x.txt"), filepath.Join(dir, ".h.txt"))
	var texts, names []string
	for _, d := range got {
		texts, names = append(texts, d.Text), append(names, d.Name)
	}
	if want := []string{"z", "x", "named hidden file"}; !reflect.DeepEqual(texts, want) {
		t.Errorf("texts %q, want %q", texts, want)
	}
	if want := []string{"z.txt", "x.txt", ".h.txt"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
}

func TestReadDocsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bad.jsonl":     "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n",
		"missing.jsonl": "{\"text\": \"ok\"}\n\n{\"body\": \"no text\"}\n",
		"number.jsonl":  "{\"text\": 12}\n",
		"null.jsonl":    "{\"text\": null}\n",
		"array.jsonl":   "[\"text\"]\n",
		"case.jsonl":    "{\"Text\": \"wrong case\"}\n",
		"blob.dat":      "\x00\x01",
	})
	for _, tc := range []struct{ file, want string }{
		{"bad.jsonl", "bad.jsonl:2: invalid JSON"},
		{"missing.jsonl", `missing.jsonl:3: no "text" field`},
		{"number.jsonl", `number.jsonl:1: "text" is not a string: 12`},
		{"null.jsonl", `null.jsonl:1: "text" is not a string: null`},
		{"array.jsonl", "array.jsonl:1: line is not a JSON object"},
		{"case.jsonl", `case.jsonl:1: no "text" field`},
		{"blob.dat", "blob.dat: binary file"},
		{"absent.txt", "no such file"},
	} {
		err := ReadDocs([]string{filepath.Join(dir, tc.file)}, func(Doc) error { return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.file, err, tc.want)
		}
	}
	if err := ReadDocs(nil, func(Doc) error { return nil }); err == nil {
		t.Error("no paths: no error")
	}
}

func TestReadDocsStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.jsonl": "{\"text\":\"1\"}\n{\"text\":\"2\"}\n", "b.txt": "3"})
	stop := errors.New("stop")
	n := 0
	err := ReadDocs([]string{dir}, func(Doc) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("err %v after %d documents, want the callback's error after 2", err, n)
	}
}

func TestDocsIterator(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "1", "b.txt": "2", "c.jsonl": "{\"text\":\"3\"}\nnot json\n"})
	var texts []string
	var last error
	for d, err := range Docs([]string{dir}) {
		if err != nil {
			last = err
			break
		}
		texts = append(texts, d.Text)
	}
	if !reflect.DeepEqual(texts, []string{"1", "2", "3"}) || last == nil || !strings.Contains(last.Error(), "c.jsonl:2: invalid JSON") {
		t.Errorf("texts %q, error %v", texts, last)
	}
	n := 0
	for range Docs([]string{dir}) {
		n++
		break // an early break must not panic or run on
	}
	if n != 1 {
		t.Errorf("%d documents after break", n)
	}
}

// TestReadDocsGzip reads gzip-compressed text and JSONL, in a folder and
// named, and reports a file that is not gzip.
func TestReadDocsGzip(t *testing.T) {
	dir := t.TempDir()
	gz := func(name, body string) {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		z.Write([]byte(body))
		z.Close()
		writeFiles(t, dir, map[string]string{name: b.String()})
	}
	gz("a.txt.gz", "compressed text")
	gz("b.jsonl.gz", "{\"text\": \"one\"}\n{\"text\": \"two\"}\n")
	gz("c.bin.gz", "\x00\x01binary inside")
	got := readAll(t, dir)
	want := []Doc{
		{filepath.Join(dir, "a.txt.gz"), "a.txt.gz", 0, "compressed text"},
		{filepath.Join(dir, "b.jsonl.gz"), "b.jsonl.gz", 0, "one"},
		{filepath.Join(dir, "b.jsonl.gz"), "b.jsonl.gz", 1, "two"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	writeFiles(t, dir, map[string]string{"d.txt.gz": "this is plainly not a gzip stream"})
	err := ReadDocs([]string{filepath.Join(dir, "d.txt.gz")}, func(Doc) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "d.txt.gz: gzip: invalid header") {
		t.Errorf("a file that is not gzip: %v", err)
	}
}
