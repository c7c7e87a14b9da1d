// Package boundaries holds, in its test, the rule of which package of the
// module may import which (docs/design.md, "Packages"): go test checks
// every package's imports and dependencies against it, so that a serving
// package does not grow a storage engine and nothing ships an example.
package boundaries
