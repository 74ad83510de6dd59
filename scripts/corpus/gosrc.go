package main

import (
	"fmt"
	"go/ast"
	godoc "go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// docLink matches a doc comment link such as [Stream] or [io.Reader], whose
// brackets are dropped in chat answers.
var docLink = regexp.MustCompile(`\[(\*?[A-Za-z_][A-Za-z0-9_./]*)\]`)

// generatedGo matches Go's marker of generated files.
var generatedGo = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// readGoSource reads the Go files of a Go source tree (GOROOT/src). A document
// is one file, ID its path below src. Tests (_test.go), testdata and vendor
// directories, and generated files (tables, syscall constants) are skipped.
func readGoSource(src string) ([]doc, error) {
	var docs []doc
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != src && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if generatedGo.Match(raw) || !utf8.Valid(raw) {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		docs = append(docs, doc{ID: filepath.ToSlash(rel), Text: string(raw)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("go source: %w", err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("go source: no Go files in %s", src)
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].ID < docs[j].ID })
	return docs, nil
}

// goAPI is one documented exported function or type of a public standard
// library package.
type goAPI struct {
	ImportPath string // "encoding/json"
	Package    string // "json"
	Name       string // "Marshal"
	Kind       string // "func" or "type"
	Synopsis   string // the doc comment's first sentence
	File       string // the source document it comes from (its ID)
}

// publicStdPackage reports whether an import path below GOROOT/src is a
// public standard-library package (not a command, internal or vendored).
func publicStdPackage(importPath string) bool {
	if importPath == "cmd" || strings.HasPrefix(importPath, "cmd/") || importPath == "builtin" {
		return false
	}
	for _, el := range strings.Split(importPath, "/") {
		if el == "internal" || el == "vendor" || el == "testdata" {
			return false
		}
	}
	return true
}

// goAPIs extracts the documented exported top-level functions and types of
// the public packages among files (documents of readGoSource). For a name
// declared in several files (one per GOOS), the first file in path order
// wins. Deprecated names are skipped.
func goAPIs(files []doc) []goAPI {
	var out []goAPI
	seen := map[string]bool{}
	var p godoc.Package // only for its Synopsis method
	add := func(api goAPI, comment *ast.CommentGroup) {
		if comment == nil || !token.IsExported(api.Name) || seen[api.ImportPath+"."+api.Name] {
			return
		}
		text := comment.Text()
		if strings.HasPrefix(text, "Deprecated:") || strings.Contains(text, "\nDeprecated:") {
			return
		}
		api.Synopsis = docLink.ReplaceAllString(p.Synopsis(text), "$1")
		if api.Synopsis == "" {
			return
		}
		seen[api.ImportPath+"."+api.Name] = true
		out = append(out, api)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		importPath := path.Dir(f.ID)
		if !publicStdPackage(importPath) {
			continue
		}
		file, err := parser.ParseFile(fset, f.ID, f.Text, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil || file.Name.Name == "main" || file.Name.Name == "documentation" {
			continue
		}
		for _, decl := range file.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					add(goAPI{ImportPath: importPath, Package: file.Name.Name, Name: d.Name.Name, Kind: "func", File: f.ID}, d.Doc)
				}
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, spec := range d.Specs {
					ts := spec.(*ast.TypeSpec)
					comment := ts.Doc
					if comment == nil && len(d.Specs) == 1 {
						comment = d.Doc
					}
					add(goAPI{ImportPath: importPath, Package: file.Name.Name, Name: ts.Name.Name, Kind: "type", File: f.ID}, comment)
				}
			}
		}
	}
	return out
}
