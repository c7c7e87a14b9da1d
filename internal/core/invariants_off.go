//go:build !invariants

package core

// Invariants is off: see invariants_on.go.
const Invariants = false
