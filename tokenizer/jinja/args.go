package jinja

import "strings"

// missingArg marks an optional parameter the caller did not pass.
type missingArg struct{}

var missing Value = missingArg{}

// bind matches positional and keyword arguments to params (Python-style
// names; a trailing "=" marks an optional parameter). Unpassed optional
// parameters are missing. fname is used in error messages.
func bind(fname string, params []string, args []Value, kw []kwarg) ([]Value, error) {
	out := make([]Value, len(params))
	for i := range out {
		out[i] = missing
	}
	if len(args) > len(params) {
		return nil, typeErr("%s() takes at most %d argument%s (%d given)", fname, len(params), plural(len(params)), len(args))
	}
	copy(out, args)
	for _, k := range kw {
		found := false
		for i, p := range params {
			if strings.TrimSuffix(p, "=") == k.name {
				if i < len(args) {
					return nil, typeErr("%s() got multiple values for argument '%s'", fname, k.name)
				}
				out[i] = k.val
				found = true
				break
			}
		}
		if !found {
			return nil, typeErr("%s() got an unexpected keyword argument '%s'", fname, k.name)
		}
	}
	for i, p := range params {
		if out[i] == missing && !strings.HasSuffix(p, "=") {
			return nil, typeErr("%s() missing required argument '%s' (pos %d)", fname, p, i+1)
		}
	}
	return out, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// orDefault returns v unless it is missing.
func orDefault(v, def Value) Value {
	if v == missing {
		return def
	}
	return v
}

// method builds a bound builtin method.
func method(name string, fn func(args []Value, kw []kwarg) (Value, error)) *builtin {
	return &builtin{name: name, fn: func(_ *state, args []Value, kw []kwarg) (Value, error) { return fn(args, kw) }}
}

// argInt converts an int-like argument to int.
func argInt(v Value) (int, error) {
	if i, ok := asInt64(v); ok {
		return int(i), nil
	}
	if v == nil {
		return 0, typeErr("'NoneType' object cannot be interpreted as an integer")
	}
	return 0, typeErr("'%s' object cannot be interpreted as an integer", typeName(v))
}

// argStr requires a str argument.
func argStr(fname string, v Value) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", typeErr("%s() argument must be str, not %s", fname, typeName(v))
}
