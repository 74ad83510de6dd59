// Package x is internal.
package x

// Hidden is in an internal package: a corpus document, but not asked about.
func Hidden() {}
