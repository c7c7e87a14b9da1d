// Package alert tells operators, through webhooks, when something in a
// running Annals needs them: a projection failed, parked events or fell
// behind, a persistent subscription group parked events, the disk is
// nearly full.
//
// The rules are pure: Diff compares two Snapshots and returns the alerts
// for what changed, so that a lasting condition is told once. Watch is
// the loop around it, taking a snapshot every interval. A Notifier posts
// each alert as JSON to every webhook from a bounded queue per webhook,
// retrying with backoff; it never blocks its caller, and drops alerts
// rather than grow without bound. Delivery is best effort: at most
// Options.MaxAttempts tries, nothing kept across a restart. The body and
// the rules are described in docs/alerts.md.
package alert
