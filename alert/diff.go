package alert

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// The projection states the rules look at (package projection's names).
const (
	stateFailed  = "failed"
	stateStandby = "standby"
)

// Snapshot is what the watcher sees at one instant.
type Snapshot struct {
	// At is when the snapshot was taken; alerts carry it. Watch sets it
	// when the source leaves it zero.
	At          time.Time
	Projections []Projection
	Groups      []Group
	// Disk is nil when unknown (a store on another machine).
	Disk *Disk
	// Processes are the process managers that ran on the store.
	Processes []Process
}

// Process is one process manager's failed instances, newest first (as
// process.Report lists them, at most process.MaxReported).
type Process struct {
	Manager string
	Failed  []FailedInstance
}

// FailedInstance is one failed instance of a process manager and why.
type FailedInstance struct {
	ID, Error string
}

// Projection is one projection's state: State is one of "running",
// "rebuilding", "paused", "stopped", "standby", "failed"; Position its
// checkpoint; Lag the head minus Position; Parked the events parked since
// its last reset.
type Projection struct {
	Name, State string
	Position    uint64
	Lag         uint64
	Parked      uint64
	LastError   string
}

// Group is one persistent subscription group: Parked counts its parked
// events not yet replayed.
type Group struct {
	Stream, Group string
	Parked        int64
}

// Disk is the store's size and the free space of its filesystem
// (FreeBytes < 0: unknown).
type Disk struct {
	UsedBytes int64
	FreeBytes int64
}

// Rules are the thresholds; zero fields take the defaults.
type Rules struct {
	// LagEvents: a projection more than this many events behind the head
	// is reported (DefaultLagEvents).
	LagEvents uint64
	// DiskFreeBytes: less free space than this is reported
	// (DefaultDiskFreeBytes).
	DiskFreeBytes int64
}

func (r Rules) withDefaults() Rules {
	if r.LagEvents == 0 {
		r.LagEvents = DefaultLagEvents
	}
	if r.DiskFreeBytes <= 0 {
		r.DiskFreeBytes = DefaultDiskFreeBytes
	}
	return r
}

// Diff returns the alerts that the change from prev to cur calls for,
// sorted by kind, then subject. It reports transitions only, so that a
// condition that lasts is told once:
//
//   - projection_failed: a projection is failed in cur and was not in
//     prev (a projection first seen failed counts);
//   - projection_parked: a projection's Parked rose; a count already
//     there when the projection is first seen is not reported;
//   - projection_lag: a projection's Lag went from at most
//     rules.LagEvents to more (first seen counts as at most). It fires
//     again only after the lag has come back to the threshold. A standby
//     projection's lag is the instance holding the lease's business, so
//     it counts as at most the threshold;
//   - persistent_parked: a group's Parked rose (first seen: as for
//     projections);
//   - disk_nearly_full: FreeBytes went under rules.DiskFreeBytes; again
//     only after it has been back at or above it. An unknown reading
//     counts as not under.
//
// A projection or group missing from prev counts as first seen, even if
// it was there before. Diff is pure: the caller keeps the snapshots.
func Diff(prev, cur Snapshot, rules Rules) []Alert {
	rules = rules.withDefaults()
	at := cur.At.UTC()
	var out []Alert
	before := make(map[string]Projection, len(prev.Projections))
	for _, p := range prev.Projections {
		before[p.Name] = p
	}
	for _, p := range cur.Projections {
		old, seen := before[p.Name]
		out = append(out, projectionAlerts(old, p, seen, rules, at)...)
	}
	type key struct{ stream, group string }
	groups := make(map[key]Group, len(prev.Groups))
	for _, g := range prev.Groups {
		groups[key{g.Stream, g.Group}] = g
	}
	for _, g := range cur.Groups {
		if old, seen := groups[key{g.Stream, g.Group}]; seen && g.Parked > old.Parked {
			out = append(out, groupParked(old, g, at))
		}
	}
	if !prev.At.IsZero() {
		// On the first look (the server just started) the failed
		// instances are old news; a manager new since then is not.
		out = append(out, processAlerts(prev.Processes, cur.Processes, at)...)
	}
	if below(cur.Disk, rules) && !below(prev.Disk, rules) {
		out = append(out, diskNearlyFull(*cur.Disk, rules, at))
	}
	slices.SortStableFunc(out, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Subject, b.Subject))
	})
	return out
}

func projectionAlerts(old, p Projection, seen bool, rules Rules, at time.Time) []Alert {
	var out []Alert
	if p.State == stateFailed && (!seen || old.State != stateFailed) {
		msg := fmt.Sprintf("projection %q failed", p.Name)
		if p.LastError != "" {
			msg += ": " + p.LastError
		}
		out = append(out, Alert{Kind: ProjectionFailed, Subject: p.Name, Message: msg, At: at,
			Details: Details{Position: new(p.Position), Lag: new(p.Lag), Parked: new(p.Parked), LastError: p.LastError}})
	}
	if seen && p.Parked > old.Parked {
		n := p.Parked - old.Parked
		out = append(out, Alert{Kind: ProjectionParked, Subject: p.Name, At: at,
			Message: fmt.Sprintf("projection %q parked %s (%d since its last reset)", p.Name, events(n), p.Parked),
			Details: Details{Position: new(p.Position), Parked: new(p.Parked), NewlyParked: new(n), LastError: p.LastError}})
	}
	if lagging(p, true, rules) && !lagging(old, seen, rules) {
		out = append(out, Alert{Kind: ProjectionLag, Subject: p.Name, At: at,
			Message: fmt.Sprintf("projection %q is %s behind the head (threshold %d)", p.Name, events(p.Lag), rules.LagEvents),
			Details: Details{Position: new(p.Position), Lag: new(p.Lag), Threshold: new(rules.LagEvents)}})
	}
	return out
}

func lagging(p Projection, seen bool, rules Rules) bool {
	return seen && p.State != stateStandby && p.Lag > rules.LagEvents
}

func groupParked(old, g Group, at time.Time) Alert {
	n := uint64(g.Parked - old.Parked)
	subject := g.Stream + "/" + g.Group
	return Alert{Kind: PersistentParked, Subject: subject, At: at,
		Message: fmt.Sprintf("persistent subscription group %q on stream %q parked %s (%d not yet replayed)",
			g.Group, g.Stream, events(n), g.Parked),
		Details: Details{Parked: new(uint64(max(g.Parked, 0))), NewlyParked: new(n)}}
}

func below(d *Disk, rules Rules) bool {
	return d != nil && d.FreeBytes >= 0 && d.FreeBytes < rules.DiskFreeBytes
}

func diskNearlyFull(d Disk, rules Rules, at time.Time) Alert {
	return Alert{Kind: DiskNearlyFull, Subject: DiskSubject, At: at,
		Message: fmt.Sprintf("the disk is nearly full: %s free, under the threshold of %s (the store takes %s)",
			bytesText(d.FreeBytes), bytesText(rules.DiskFreeBytes), bytesText(d.UsedBytes)),
		Details: Details{FreeBytes: new(d.FreeBytes), UsedBytes: new(d.UsedBytes), ThresholdBytes: new(rules.DiskFreeBytes)}}
}

func events(n uint64) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

// bytesText writes n in binary units, as df -h does.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// processAlerts reports the instances failed in cur and not in prev.
func processAlerts(prev, cur []Process, at time.Time) []Alert {
	known := make(map[string]map[string]bool, len(prev))
	for _, p := range prev {
		ids := make(map[string]bool, len(p.Failed))
		for _, f := range p.Failed {
			ids[f.ID] = true
		}
		known[p.Manager] = ids
	}
	var out []Alert
	for _, p := range cur {
		before := known[p.Manager]
		for _, f := range p.Failed {
			if !before[f.ID] {
				out = append(out, Alert{Kind: ProcessFailed, Subject: p.Manager + "/" + f.ID, At: at,
					Message: fmt.Sprintf("process %s: instance %s failed: %s", p.Manager, f.ID, f.Error), Details: Details{LastError: f.Error}})
			}
		}
	}
	return out
}
