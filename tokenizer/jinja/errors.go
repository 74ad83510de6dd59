package jinja

import "fmt"

// Error is a parse or render error. Type is the name of the Python exception
// Jinja2 would raise (TemplateSyntaxError, TemplateAssertionError,
// UndefinedError, TypeError, ValueError, TemplateError, SecurityError,
// ZeroDivisionError, TemplateRuntimeError, ...) and Message its text.
type Error struct {
	Type    string
	Message string
	Line    int // 1-based template line for syntax errors; 0 when unknown
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("jinja: %s: %s (line %d)", e.Type, e.Message, e.Line)
	}
	return fmt.Sprintf("jinja: %s: %s", e.Type, e.Message)
}

func newErr(typ, format string, args ...any) *Error {
	if len(args) == 0 {
		return &Error{Type: typ, Message: format}
	}
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

func typeErr(format string, args ...any) *Error { return newErr("TypeError", format, args...) }

func syntaxErr(line int, format string, args ...any) *Error {
	e := newErr("TemplateSyntaxError", format, args...)
	e.Line = line
	return e
}
