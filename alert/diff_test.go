package alert

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func proj(name, state string, lag, parked uint64) Projection {
	return Projection{Name: name, State: state, Lag: lag, Parked: parked}
}

func snap(ps ...Projection) Snapshot { return Snapshot{Projections: ps} }

func groups(gs ...Group) Snapshot { return Snapshot{Groups: gs} }

// procs is a snapshot, taken at minute m, of process managers' failed
// instances: "manager:id,id".
func procs(m int, managers ...string) Snapshot {
	s := Snapshot{At: time.Date(2026, 12, 3, 8, m, 0, 0, time.UTC)}
	for _, spec := range managers {
		name, ids, _ := strings.Cut(spec, ":")
		p := Process{Manager: name}
		for id := range strings.SplitSeq(ids, ",") {
			if id != "" {
				p.Failed = append(p.Failed, FailedInstance{ID: id, Error: "boom"})
			}
		}
		s.Processes = append(s.Processes, p)
	}
	return s
}

func disk(free int64) Snapshot { return Snapshot{Disk: &Disk{UsedBytes: 1 << 20, FreeBytes: free}} }

// kinds writes alerts as "kind subject", the shape the table compares.
func kinds(alerts []Alert) []string {
	out := []string{}
	for _, a := range alerts {
		out = append(out, string(a.Kind)+" "+a.Subject)
	}
	return out
}

const (
	lag = DefaultLagEvents
	gib = DefaultDiskFreeBytes
)

var none = []string{}

// diffCases are runs of snapshots and the alerts each step calls for.
var diffCases = []struct {
	name  string
	rules Rules
	steps []Snapshot
	want  [][]string
}{
	{"nothing", Rules{}, []Snapshot{{}, {}}, [][]string{none, none}},
	{"first seen failed", Rules{}, []Snapshot{snap(proj("p", "failed", 0, 0))},
		[][]string{{"projection_failed p"}}},
	{"failed once, again after running", Rules{},
		[]Snapshot{snap(proj("p", "running", 0, 0)), snap(proj("p", "failed", 0, 0)),
			snap(proj("p", "failed", 0, 0)), snap(proj("p", "running", 0, 0)), snap(proj("p", "failed", 0, 0))},
		[][]string{none, {"projection_failed p"}, none, none, {"projection_failed p"}}},
	{"other states do not fire", Rules{},
		[]Snapshot{snap(proj("p", "running", 0, 0)), snap(proj("p", "paused", 0, 0)),
			snap(proj("p", "stopped", 0, 0)), snap(proj("p", "rebuilding", 0, 0)), snap(proj("p", "standby", 0, 0))},
		[][]string{none, none, none, none, none}},
	{"parked: first seen counts are history", Rules{},
		[]Snapshot{snap(proj("p", "running", 0, 5)), snap(proj("p", "running", 0, 5)),
			snap(proj("p", "running", 0, 7)), snap(proj("p", "running", 0, 0)), snap(proj("p", "running", 0, 1))},
		[][]string{none, none, {"projection_parked p"}, none, {"projection_parked p"}}},
	{"lag fires once until it recovers", Rules{},
		[]Snapshot{snap(proj("p", "running", 0, 0)), snap(proj("p", "running", lag+1, 0)),
			snap(proj("p", "running", 2*lag, 0)), snap(proj("p", "running", lag, 0)),
			snap(proj("p", "running", lag+1, 0))},
		[][]string{none, {"projection_lag p"}, none, none, {"projection_lag p"}}},
	{"lag: first seen behind fires, at the threshold does not", Rules{},
		[]Snapshot{snap(proj("a", "running", lag, 0), proj("b", "rebuilding", lag+1, 0))},
		[][]string{{"projection_lag b"}}},
	{"lag: standby does not count", Rules{},
		[]Snapshot{snap(proj("p", "standby", 5*lag, 0)), snap(proj("p", "running", 5*lag, 0)),
			snap(proj("p", "standby", 5*lag, 0)), snap(proj("p", "running", 5*lag, 0))},
		[][]string{none, {"projection_lag p"}, none, {"projection_lag p"}}},
	{"lag: own threshold", Rules{LagEvents: 10},
		[]Snapshot{snap(proj("p", "running", 10, 0)), snap(proj("p", "running", 11, 0))},
		[][]string{none, {"projection_lag p"}}},
	{"group parked", Rules{},
		[]Snapshot{groups(Group{"s", "g", 3}), groups(Group{"s", "g", 4}), groups(Group{"s", "g", 4}),
			groups(Group{"s", "g", 0}), groups(Group{"s", "g", 2})},
		[][]string{none, {"persistent_parked s/g"}, none, none, {"persistent_parked s/g"}}},
	{"groups are told apart by stream", Rules{},
		[]Snapshot{groups(Group{"a", "g", 1}, Group{"b", "g", 1}), groups(Group{"a", "g", 1}, Group{"b", "g", 2})},
		[][]string{none, {"persistent_parked b/g"}}},
	{"disk once until it recovers", Rules{},
		[]Snapshot{disk(2 * gib), disk(gib / 2), disk(gib / 4), disk(gib), disk(gib - 1)},
		[][]string{none, {"disk_nearly_full store"}, none, none, {"disk_nearly_full store"}}},
	{"disk: first snapshot already under", Rules{}, []Snapshot{disk(0)}, [][]string{{"disk_nearly_full store"}}},
	{"disk: unknown counts as not under", Rules{},
		[]Snapshot{{}, disk(-1), disk(gib / 2), {}, disk(gib / 2)},
		[][]string{none, none, {"disk_nearly_full store"}, none, {"disk_nearly_full store"}}},
	{"disk: own threshold", Rules{DiskFreeBytes: 100},
		[]Snapshot{disk(100), disk(99)}, [][]string{none, {"disk_nearly_full store"}}},
	{"projection disappears and comes back: first seen", Rules{},
		[]Snapshot{snap(proj("p", "failed", lag+1, 1)), snap(), snap(proj("p", "failed", lag+1, 3))},
		[][]string{{"projection_failed p", "projection_lag p"}, none, {"projection_failed p", "projection_lag p"}}},
	{"group disappears and comes back: first seen", Rules{},
		[]Snapshot{groups(Group{"s", "g", 1}), groups(), groups(Group{"s", "g", 5}), groups(Group{"s", "g", 6})},
		[][]string{none, none, none, {"persistent_parked s/g"}}},
	{"sorted by kind, then subject", Rules{},
		[]Snapshot{
			{Projections: []Projection{proj("b", "running", 0, 0), proj("a", "running", 0, 0)}, Groups: []Group{{"s", "g", 0}}},
			{Projections: []Projection{proj("b", "failed", lag+1, 1), proj("a", "failed", lag+1, 1)},
				Groups: []Group{{"s", "g", 1}}, Disk: &Disk{FreeBytes: 1}}},
		[][]string{none, {"disk_nearly_full store", "persistent_parked s/g", "projection_failed a", "projection_failed b",
			"projection_lag a", "projection_lag b", "projection_parked a", "projection_parked b"}}},
}

func init() {
	diffCases = append(diffCases, struct {
		name  string
		rules Rules
		steps []Snapshot
		want  [][]string
	}{"process failures: not the old ones at the start, then each new one, of a new manager too", Rules{},
		[]Snapshot{procs(0, "m:a"), procs(1, "m:b,a"), procs(2, "m:b,a", "n:x"), procs(3, "m:b", "n:x")},
		[][]string{none, {"process_failed m/b"}, {"process_failed n/x"}, none}})
}

// TestDiff runs each case's snapshots in turn, the first against an
// empty one (the watcher's start), and compares the alerts of each step.
func TestDiff(t *testing.T) {
	for _, c := range diffCases {
		t.Run(c.name, func(t *testing.T) {
			var prev Snapshot
			for i, cur := range c.steps {
				if got := kinds(Diff(prev, cur, c.rules)); !slices.Equal(got, c.want[i]) {
					t.Errorf("step %d: got %q, want %q", i, got, c.want[i])
				}
				prev = cur
			}
		})
	}
}

// TestDiffBodies checks each kind's message and details, and that the
// alerts carry the snapshot's time in UTC.
func TestDiffBodies(t *testing.T) {
	at := time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	prev := Snapshot{
		Projections: []Projection{{Name: "orders", State: "running", Position: 90, Lag: 10, Parked: 1}},
		Groups:      []Group{{Stream: "payments", Group: "mailer", Parked: 2}},
		Disk:        &Disk{UsedBytes: 5 << 30, FreeBytes: 3 << 30},
	}
	cur := Snapshot{
		At: at,
		Projections: []Projection{{Name: "orders", State: "failed", Position: 100, Lag: 20_000, Parked: 3,
			LastError: "handler: boom"}},
		Groups: []Group{{Stream: "payments", Group: "mailer", Parked: 3}},
		Disk:   &Disk{UsedBytes: 6 << 30, FreeBytes: 512 << 20},
	}
	utc := at.UTC()
	want := []Alert{
		{Kind: DiskNearlyFull, Subject: "store", At: utc,
			Message: "the disk is nearly full: 512.0 MiB free, under the threshold of 1.0 GiB (the store takes 6.0 GiB)",
			Details: Details{FreeBytes: new(int64(512 << 20)), UsedBytes: new(int64(6 << 30)), ThresholdBytes: new(int64(1 << 30))}},
		{Kind: PersistentParked, Subject: "payments/mailer", At: utc,
			Message: `persistent subscription group "mailer" on stream "payments" parked 1 event (3 not yet replayed)`,
			Details: Details{Parked: new(uint64(3)), NewlyParked: new(uint64(1))}},
		{Kind: ProjectionFailed, Subject: "orders", At: utc, Message: `projection "orders" failed: handler: boom`,
			Details: Details{Position: new(uint64(100)), Lag: new(uint64(20_000)), Parked: new(uint64(3)), LastError: "handler: boom"}},
		{Kind: ProjectionLag, Subject: "orders", At: utc,
			Message: `projection "orders" is 20000 events behind the head (threshold 10000)`,
			Details: Details{Position: new(uint64(100)), Lag: new(uint64(20_000)), Threshold: new(uint64(10_000))}},
		{Kind: ProjectionParked, Subject: "orders", At: utc,
			Message: `projection "orders" parked 2 events (3 since its last reset)`,
			Details: Details{Position: new(uint64(100)), Parked: new(uint64(3)), NewlyParked: new(uint64(2)), LastError: "handler: boom"}},
	}
	got := Diff(prev, cur, Rules{})
	if len(got) != len(want) {
		t.Fatalf("got %d alerts %q, want %d", len(got), kinds(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("alert %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestBytesText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		1 << 30: "1.0 GiB", 1<<62 + 1<<61: "6.0 EiB"} {
		if got := bytesText(n); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", n, got, want)
		}
	}
}
