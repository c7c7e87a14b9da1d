// Package process runs process managers: work that spans many aggregates
// (purge the completed todos of every user; reserve seats, await the
// payment, confirm or release), driven by events, surviving crashes, and
// saying when it fails.
//
// An instance of a process keeps its own stream. Each input (an event of
// $all, or a timer it set) is decided by the process into commands to
// aggregates, timers, and whether it is over; the decision is appended to
// the instance's stream before any command is sent, and each command's
// answer is appended after it. Folding the stream gives the instance
// back after a crash: commands decided and not answered are sent again
// with the same idempotency key, so none is applied twice.
//
// A command that fails is sent again after Policy.RetryAfter, up to
// Policy.Retries times, unless the aggregate refused it for good. Then the
// instance either stops (Policy.OnFailure Stop) or compensates: it first
// asks the aggregates whether the commands it gives up were taken (one
// may have been sent just before a crash), then sends the undo of every
// step done, the last first, one at a time, and ends failed with the
// step's error.
//
// The instance's core (core.go, records.go, transitions.go) is
// deterministic: no I/O, no clock, table-tested; Manager.Run is the I/O
// around it. Inspect, InspectInstance, Retry and Abandon read and control
// a manager from any process. docs/process-managers.md is the user's
// guide.
package process
