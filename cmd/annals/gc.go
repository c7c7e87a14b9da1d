package main

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the GOGC that serve and bench run with unless the
// GOGC environment variable says otherwise. A server's live heap is small
// (the engine's caches live outside it) while every gRPC call allocates
// ~13 KB, so at Go's default of 100 the collector runs dozens of times a
// second and took 15-20% of the CPU; at 400 appends over gRPC ran 35-50%
// faster (docs/benchmarks.md). The price: the heap may grow to five times
// the live heap instead of two. GOMEMLIMIT caps it where memory is tight.
const serverGCPercent = 400

// tuneGC applies serverGCPercent unless the user chose a GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}
