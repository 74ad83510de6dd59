// Package strings is a test fixture.
package strings

// Fields splits the string s around each instance of one or more consecutive white space
// characters. It returns an empty slice if s contains only white space.
func Fields(s string) []string { return nil }

// Builder is used to efficiently build a [string] with [Builder.WriteString]. The zero value is ready to use.
type Builder struct{}

// WriteString appends the contents of s to b's buffer.
func (b *Builder) WriteString(s string) (int, error) { return 0, nil }

// unexported has a doc comment but is not exported.
func unexported() {}

func Undocumented() {}

// Old does something.
//
// Deprecated: use Fields.
func Old() {}
