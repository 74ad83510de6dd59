package jinja

import (
	"strings"
	"time"
)

// Template is a parsed template. It is immutable and safe for concurrent
// use by multiple goroutines.
type Template struct {
	body []node
}

// Parse parses template source. A syntax error is an *Error of type
// TemplateSyntaxError (or TemplateAssertionError for an unknown filter or
// test outside an if).
func Parse(source string) (*Template, error) {
	toks, err := tokenize(source)
	if err != nil {
		return nil, err
	}
	body, err := parseTemplate(toks)
	if err != nil {
		return nil, err
	}
	return &Template{body: body}, nil
}

// Options configure one rendering.
type Options struct {
	// Now is the clock behind strftime_now; nil means time.Now.
	Now func() time.Time
}

// maxDepth bounds macro and recursive-loop nesting (Python would raise
// RecursionError).
const maxDepth = 400

// state is the per-rendering interpreter state.
type state struct {
	out   *strings.Builder
	now   func() time.Time
	depth int
}

// Render renders the template with vars as the template context. Values
// must be of the types documented on Value (see also FromGo and
// DecodeJSON). A render error is an *Error.
func (t *Template) Render(vars map[string]Value, opts *Options) (string, error) {
	st := &state{out: &strings.Builder{}, now: time.Now}
	if opts != nil && opts.Now != nil {
		st.now = opts.Now
	}
	root := &scope{vars: make(map[string]Value, len(vars)), parent: globalScope}
	for k, v := range vars {
		root.vars[k] = v
	}
	if _, err := st.exec(t.body, root); err != nil {
		return "", err
	}
	return st.out.String(), nil
}

// scope is one variable frame; lookups fall back to the parent.
type scope struct {
	vars   map[string]Value
	parent *scope
}

func newScope(parent *scope) *scope { return &scope{vars: map[string]Value{}, parent: parent} }

func (s *scope) lookup(name string) (Value, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

func (s *scope) set(name string, v Value) { s.vars[name] = v }

// capture runs f with output redirected and returns what it wrote.
func (st *state) capture(f func() error) (string, error) {
	saved := st.out
	st.out = &strings.Builder{}
	err := f()
	s := st.out.String()
	st.out = saved
	return s, err
}
