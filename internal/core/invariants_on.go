//go:build invariants

package core

import "strings"

// Invariants turns on the writers' assertions of their invariants (the
// numbered lists in embedded/writer.go and postgres/writer.go). Built with
// -tags invariants, as CI's race run is; without the tag the checks are
// constant-false branches the compiler removes.
const Invariants = true

// Broken runs fn and returns the message of the invariant it broke, or ""
// if it broke none: for the tests that show an assertion fires.
func Broken(fn func()) (msg string) {
	defer func() {
		r := recover()
		if s, ok := r.(string); ok && strings.HasPrefix(s, brokenPrefix) {
			msg = s
		} else if r != nil {
			panic(r)
		}
	}()
	fn()
	return ""
}
