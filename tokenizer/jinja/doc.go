// Package jinja is a Jinja2 interpreter for chat templates, written to render
// Hugging Face chat templates byte for byte as Python Jinja2 3.1 renders them
// under transformers' settings: an ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks, the loopcontrols extension (break/continue), a
// pass-through {% generation %} block, keep_trailing_newline=False, autoescape
// off and the default Undefined.
//
// Values follow Python's data model (see Value): None, bool, int (int64,
// promoted to *big.Int on overflow), float, str, list, tuple, ordered dict,
// namespace, macro, Undefined. Printing uses Python's str(), arithmetic and
// comparison follow Python, and an Undefined prints as "", is false and
// iterates as empty, while any other use raises UndefinedError as Jinja does.
//
// Errors are *Error values carrying the Python exception type name
// (TemplateSyntaxError, UndefinedError, TypeError, TemplateError, ...) and
// Python's message where practical.
//
// Supported: {{ }}, {% %}, {# #} with "-"/"+" whitespace control, raw, if/
// elif/else, for (else, inline if filter, recursive, loop.*), break,
// continue, set (incl. namespace attributes, tuple targets and block set),
// macro, call, filter, with, print, generation; the builtin filters, tests
// and globals of Jinja 3.1 except those that need HTML or randomness
// (escape-related filters render without Markup), the str/dict/list methods
// chat templates use, and transformers' globals raise_exception and
// strftime_now. Template inheritance and includes (extends, block, include,
// import) are not supported.
package jinja
