// Package persistent runs persistent subscriptions (competing consumers)
// over any annals.Store: named groups on a stream or on $all whose events
// are shared among the consumers connected to the group, acknowledged one
// by one, retried on timeout or on request, parked after too many retries
// and replayed on request. A group remembers how far it got in the store
// itself, so a restarted process resumes where the group left off.
//
// Delivery is at least once. An event is handed to one consumer at a time;
// it goes to another (or the same) consumer again when its message timeout
// passes, when the consumer asks for a retry, or when the consumer
// disconnects. A group's checkpoint is the first event not yet finished
// (acknowledged, skipped or parked): after a restart every event from the
// checkpoint on is delivered again, including ones that had been
// acknowledged after it.
//
// What the store holds, per group (names as KurrentDB's):
//
//	$persistentSubscriptionConfig                  every group's definition
//	$persistentsubscription-<stream>::<group>-checkpoint  where to resume
//	$persistentsubscription-<stream>::<group>-parked      links ($>) to parked events
//
// The store must allow system streams (annals.Limits.AllowSystemStreams).
//
// Invariants (checked by the tests in core_test.go):
//
//   - A message is in exactly one place: the read buffer, the retry queue,
//     in flight to exactly one consumer, waiting to be parked, or finished.
//   - A consumer never has more messages in flight than its buffer size.
//   - The checkpoint never passes an unfinished message: every event read
//     from the store before the checkpoint is finished.
//   - Memory is bounded: the group stops reading from the store while its
//     read buffer is full, its unfinished window holds MaxWindowMessages, or
//     the payloads it holds reach MaxGroupBufferedBytes; consumers, groups,
//     buffers and replays are capped by the constants in limits.go.
//   - The delivery logic (core.go) does no I/O and reads no clock: the
//     caller passes the time, so it is tested without a store.
package persistent
