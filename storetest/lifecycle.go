package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

func exerciseLifecycle(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"DeleteHidesStream", testDeleteHidesStream},
		{"DeleteWrongExpected", testDeleteWrongExpected},
		{"DeleteNeverExisted", testDeleteNeverExisted},
		{"RecreateAfterDelete", testRecreateAfterDelete},
		{"Tombstone", testTombstone},
		{"TombstoneWrongExpected", testTombstoneWrongExpected},
	})
}

func testDeleteHidesStream(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	in := evs(3, "Doomed")
	res := mustAppend(t, ctx, s, "del-1", annals.NoStream, in...)
	mustAppend(t, ctx, s, "keep-1", annals.NoStream, ev("Kept"))
	dr, err := s.Delete(ctx, "del-1", annals.Exact(2))
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if dr.Position <= res.LastPosition+1 || dr.Position > annals.Position(len(all)) {
		t.Fatalf("Delete: position %d, want a new position in $all (after %d, at most %d)", dr.Position, res.LastPosition+1, len(all))
	}
	wantReadErr(t, ctx, s, "del-1", annals.ErrStreamNotFound)
	got, err := readStream(ctx, s, "del-1", annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End})
	wantErrIs(t, "ReadStream backwards of a deleted stream", err, annals.ErrStreamNotFound)
	if len(got) != 0 {
		t.Fatalf("ReadStream of a deleted stream yielded %d events", len(got))
	}
	// $all keeps the record.
	if !slices.Equal(ids(all[:3]), dataIDs(in)) {
		t.Fatalf("$all lost the events of the deleted stream")
	}
	// Other streams are untouched.
	if n := len(mustReadStream(t, ctx, s, "keep-1", annals.ReadStreamOptions{})); n != 1 {
		t.Fatalf("keep-1: %d events, want 1", n)
	}
	// A deleted stream is "no stream" to expectations.
	_, err = s.Append(ctx, "del-1", annals.StreamExists, ev("X"))
	wantWrongExpected(t, err, "del-1", annals.StreamExists, annals.NoStream)
	if _, err := s.Append(ctx, "del-1", annals.NoStream); err != nil {
		t.Fatalf("zero-event append with NoStream on a deleted stream: %v", err)
	}
}

func testDeleteWrongExpected(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "del-2", annals.NoStream, evs(3, "Kept")...)
	before := countAll(t, ctx, s)
	for _, exp := range []annals.ExpectedRevision{annals.Exact(1), annals.Exact(5), annals.NoStream} {
		_, err := s.Delete(ctx, "del-2", exp)
		wantWrongExpected(t, err, "del-2", exp, annals.Exact(2))
	}
	_, err := s.Delete(ctx, "missing-1", annals.StreamExists)
	wantWrongExpected(t, err, "missing-1", annals.StreamExists, annals.NoStream)
	_, err = s.Delete(ctx, "missing-1", annals.Exact(0))
	wantWrongExpected(t, err, "missing-1", annals.Exact(0), annals.NoStream)
	unchanged(t, s, before)
	wantRevisions(t, "del-2", mustReadStream(t, ctx, s, "del-2", annals.ReadStreamOptions{}), seq(0, 2))
}

// KurrentDB refuses to soft-delete a stream that never existed (no events,
// no metadata) whatever the expectation, and tombstones one with Any or
// NoStream.
func testDeleteNeverExisted(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	for _, exp := range []annals.ExpectedRevision{annals.Any, annals.NoStream, annals.StreamExists, annals.Exact(0)} {
		_, err := s.Delete(ctx, "never-1", exp)
		wantWrongExpected(t, err, "never-1", exp, annals.NoStream)
	}
	unchanged(t, s, 0)
	// A stream with metadata but no events has existed: it can be deleted.
	if _, err := s.SetStreamMetadata(ctx, "meta-only-1", annals.NoStream, annals.StreamMetadata{MaxCount: 3}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	if _, err := s.Delete(ctx, "meta-only-1", annals.Any); err != nil {
		t.Fatalf("Delete of a stream with only metadata: %v", err)
	}
	for i, exp := range []annals.ExpectedRevision{annals.NoStream, annals.Any} {
		name := "never-tomb-" + strconv.Itoa(i)
		if _, err := s.Tombstone(ctx, name, exp); err != nil {
			t.Fatalf("Tombstone of a stream that never existed with %v: %v", exp, err)
		}
		wantReadErr(t, ctx, s, name, annals.ErrStreamDeleted)
	}
	for _, exp := range []annals.ExpectedRevision{annals.StreamExists, annals.Exact(0)} {
		_, err := s.Tombstone(ctx, "never-2", exp)
		wantWrongExpected(t, err, "never-2", exp, annals.NoStream)
	}
}

func testRecreateAfterDelete(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	old := evs(3, "Old")
	mustAppend(t, ctx, s, "re-1", annals.NoStream, old...)
	if _, err := s.Delete(ctx, "re-1", annals.StreamExists); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	fresh := evs(2, "New")
	res, err := s.Append(ctx, "re-1", annals.NoStream, fresh...)
	if err != nil {
		t.Fatalf("append with NoStream after Delete: %v", err)
	}
	if res.NextExpected != annals.Exact(4) {
		t.Fatalf("append after Delete: NextExpected %v, want 4 (revisions continue)", res.NextExpected)
	}
	got := mustReadStream(t, ctx, s, "re-1", annals.ReadStreamOptions{})
	wantRevisions(t, "re-1 after re-creation", got, seq(3, 4))
	if !slices.Equal(ids(got), dataIDs(fresh)) {
		t.Fatalf("re-1 after re-creation shows events other than the new ones")
	}
	got = mustReadStream(t, ctx, s, "re-1", annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End})
	wantRevisions(t, "re-1 backwards", got, rseq(4, 3))
	got = mustReadStream(t, ctx, s, "re-1", annals.ReadStreamOptions{From: 1})
	wantRevisions(t, "re-1 From 1", got, seq(3, 4))

	// The stream lives again: the usual expectations apply.
	mustAppend(t, ctx, s, "re-1", annals.Exact(4), ev("Newer"))
	_, err = s.Append(ctx, "re-1", annals.NoStream, ev("X"))
	wantWrongExpected(t, err, "re-1", annals.NoStream, annals.Exact(5))

	// $all has everything, old and new.
	var user []uuid.UUID
	for _, e := range mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: annals.ExcludeSystemEventsFilter()}) {
		user = append(user, e.ID)
	}
	if len(user) != 6 || !slices.Equal(user[:3], dataIDs(old)) || !slices.Equal(user[3:5], dataIDs(fresh)) {
		t.Fatalf("$all user events: %v, want the 3 old, 2 new and 1 newer", user)
	}
}

func testTombstone(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "tomb-1", annals.NoStream, evs(2, "Gone")...)
	dr, err := s.Tombstone(ctx, "tomb-1", annals.Exact(1))
	if err != nil {
		t.Fatalf("Tombstone: %v", err)
	}
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if dr.Position != 3 || len(all) != 3 {
		t.Fatalf("Tombstone: position %d and $all of %d events, want 3 and 3", dr.Position, len(all))
	}
	ts := all[2]
	if ts.Stream != "tomb-1" || ts.Type != annals.EventTypeStreamDeleted || ts.Revision != annals.RevisionTombstone || ts.Position != dr.Position {
		t.Fatalf("$all has %+v at the tombstone's position, want a %s event of tomb-1 at revision %d",
			ts, annals.EventTypeStreamDeleted, annals.RevisionTombstone)
	}

	wantReadErr(t, ctx, s, "tomb-1", annals.ErrStreamDeleted)
	_, err = readStream(ctx, s, "tomb-1", annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End})
	wantErrIs(t, "ReadStream backwards of a tombstoned stream", err, annals.ErrStreamDeleted)
	for _, exp := range []annals.ExpectedRevision{annals.Any, annals.NoStream, annals.StreamExists, annals.Exact(1), annals.Exact(2)} {
		_, err := s.Append(ctx, "tomb-1", exp, ev("Again"))
		wantErrIs(t, "append to a tombstoned stream with "+exp.String(), err, annals.ErrStreamDeleted)
		_, err = s.Append(ctx, "tomb-1", exp)
		wantErrIs(t, "zero-event append to a tombstoned stream with "+exp.String(), err, annals.ErrStreamDeleted)
	}
	_, err = s.Delete(ctx, "tomb-1", annals.Any)
	wantErrIs(t, "Delete of a tombstoned stream", err, annals.ErrStreamDeleted)
	_, err = s.Tombstone(ctx, "tomb-1", annals.Any)
	wantErrIs(t, "Tombstone of a tombstoned stream", err, annals.ErrStreamDeleted)
	unchanged(t, s, 3)
}

func testTombstoneWrongExpected(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "tomb-2", annals.NoStream, evs(2, "Kept")...)
	for _, exp := range []annals.ExpectedRevision{annals.Exact(0), annals.Exact(7), annals.NoStream} {
		_, err := s.Tombstone(ctx, "tomb-2", exp)
		wantWrongExpected(t, err, "tomb-2", exp, annals.Exact(1))
	}
	unchanged(t, s, 2)
	wantRevisions(t, "tomb-2", mustReadStream(t, ctx, s, "tomb-2", annals.ReadStreamOptions{}), seq(0, 1))
	mustAppend(t, ctx, s, "tomb-2", annals.Exact(1), ev("Still"))
}

func exerciseMetadata(t *testing.T, newStore func(t *testing.T) annals.Store) {
	runAll(t, newStore, []storeTest{
		{"RoundTrip", testMetadataRoundTrip},
		{"ExpectedAppliesToMetastream", testMetadataExpected},
		{"MaxCount", testMetadataMaxCount},
		{"TruncateBefore", testMetadataTruncateBefore},
		{"MaxAge", testMetadataMaxAge},
		{"BadACLRefused", testMetadataBadACL},
	})
}

// An ACL that KurrentDB's StreamAcl cannot read would leave the official
// clients unable to read the stream's metadata at all: refused on write.
func testMetadataBadACL(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "acl-1", annals.NoStream, ev("Stuff"))
	for _, acl := range []string{
		`{"$w":7}`, `{"$r":["alice",3]}`, `{"$d":null}`, `{"$mr":[null]}`, `{"$mw":{"a":"b"}}`,
		`{"$x":"alice"}`, `"$userStreamAcl"`, `["alice"]`, `7`, `null`,
	} {
		_, err := s.SetStreamMetadata(ctx, "acl-1", annals.Any, annals.StreamMetadata{ACL: json.RawMessage(acl)})
		wantErrIs(t, "SetStreamMetadata with $acl "+acl, err, annals.ErrInvalidInput)
	}
	unchanged(t, s, 1)
	if _, rev, err := s.StreamMetadata(ctx, "acl-1"); err != nil || rev != annals.NoStream {
		t.Fatalf("StreamMetadata after refused writes: revision %v, error %v; want no metadata", rev, err)
	}
	good := annals.StreamMetadata{ACL: json.RawMessage(`{"$r":"$all","$w":["alice","bob"],"$d":[],"$mr":"$admins","$mw":"$admins"}`)}
	if _, err := s.SetStreamMetadata(ctx, "acl-1", annals.NoStream, good); err != nil {
		t.Fatalf("SetStreamMetadata with a valid $acl: %v", err)
	}
	md, _, err := s.StreamMetadata(ctx, "acl-1")
	if err != nil {
		t.Fatal(err)
	}
	sameMetadata(t, "a valid $acl", md, good)
}

func sameMetadata(t *testing.T, what string, got, want annals.StreamMetadata) {
	t.Helper()
	norm := func(m annals.StreamMetadata) map[string]any {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("%s: marshal metadata: %v", what, err)
		}
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: unmarshal metadata: %v", what, err)
		}
		return out
	}
	if got.MaxCount != want.MaxCount || got.MaxAge != want.MaxAge || got.TruncateBefore != want.TruncateBefore ||
		got.CacheControl != want.CacheControl || !reflect.DeepEqual(norm(got), norm(want)) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("%s: metadata %s, want %s", what, g, w)
	}
}

func testMetadataRoundTrip(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	md, rev, err := s.StreamMetadata(ctx, "meta-1")
	if err != nil {
		t.Fatalf("StreamMetadata of a stream without metadata: %v", err)
	}
	if rev != annals.NoStream {
		t.Fatalf("StreamMetadata of a stream without metadata: revision %v, want NoStream", rev)
	}
	sameMetadata(t, "no metadata", md, annals.StreamMetadata{})

	mustAppend(t, ctx, s, "meta-1", annals.NoStream, evs(3, "Stuff")...)
	want := annals.StreamMetadata{
		MaxCount:       1000,
		MaxAge:         72 * time.Hour,
		TruncateBefore: 1,
		CacheControl:   30 * time.Second,
		ACL:            json.RawMessage(`{"$r":["alice"],"$w":"bob"}`),
		Custom: map[string]json.RawMessage{
			"owner":   json.RawMessage(`"alice"`),
			"limits":  json.RawMessage(`{"a":1,"b":[true,null]}`),
			"version": json.RawMessage(`7`),
		},
	}
	res, err := s.SetStreamMetadata(ctx, "meta-1", annals.NoStream, want)
	if err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	if res.NextExpected != annals.Exact(0) || res.FirstPosition != 4 || res.LastPosition != 4 {
		t.Fatalf("SetStreamMetadata: result %+v, want {NextExpected: 0, FirstPosition: 4, LastPosition: 4}", res)
	}
	md, rev, err = s.StreamMetadata(ctx, "meta-1")
	if err != nil {
		t.Fatalf("StreamMetadata: %v", err)
	}
	if rev != annals.Exact(0) {
		t.Fatalf("StreamMetadata: revision %v, want 0", rev)
	}
	sameMetadata(t, "after the first set", md, want)

	want2 := annals.StreamMetadata{MaxCount: 5, Custom: map[string]json.RawMessage{"owner": json.RawMessage(`"carol"`)}}
	res, err = s.SetStreamMetadata(ctx, "meta-1", annals.Exact(0), want2)
	if err != nil {
		t.Fatalf("second SetStreamMetadata: %v", err)
	}
	if res.NextExpected != annals.Exact(1) {
		t.Fatalf("second SetStreamMetadata: NextExpected %v, want 1", res.NextExpected)
	}
	md, rev, err = s.StreamMetadata(ctx, "meta-1")
	if err != nil || rev != annals.Exact(1) {
		t.Fatalf("StreamMetadata: revision %v, error %v; want 1, nil", rev, err)
	}
	sameMetadata(t, "after the second set (it replaces, not merges)", md, want2)

	// The metadata events are in $all, in the metastream.
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{})
	if len(all) != 5 {
		t.Fatalf("$all has %d events, want 3 and 2 metadata events", len(all))
	}
	for _, e := range all[3:] {
		if e.Stream != annals.MetastreamOf("meta-1") || e.Type != annals.EventTypeMetadata {
			t.Fatalf("metadata event in $all: stream %q type %q, want %q and %q", e.Stream, e.Type, annals.MetastreamOf("meta-1"), annals.EventTypeMetadata)
		}
	}
	wantRevisions(t, "metadata events", all[3:], seq(0, 1))
	// The stream itself is untouched, and the second metadata replaced the
	// first ($tb 1 is gone; MaxCount 5 hides nothing of 3 events).
	wantRevisions(t, "meta-1", mustReadStream(t, ctx, s, "meta-1", annals.ReadStreamOptions{}), seq(0, 2))
}

func testMetadataExpected(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	// The stream is at revision 4; its metastream does not exist.
	mustAppend(t, ctx, s, "mx-1", annals.NoStream, evs(5, "Stuff")...)
	md := annals.StreamMetadata{MaxCount: 10}
	for _, exp := range []annals.ExpectedRevision{annals.Exact(4), annals.Exact(0), annals.StreamExists} {
		_, err := s.SetStreamMetadata(ctx, "mx-1", exp, md)
		if err == nil {
			t.Fatalf("SetStreamMetadata with %v on a missing metastream succeeded", exp)
		}
		var w *annals.WrongExpectedRevisionError
		if !errors.As(err, &w) || w.Expected != exp || w.Actual != annals.NoStream {
			t.Fatalf("SetStreamMetadata with %v on a missing metastream: error %v, want WrongExpectedRevisionError with actual NoStream", exp, err)
		}
	}
	unchanged(t, s, 5)
	if _, err := s.SetStreamMetadata(ctx, "mx-1", annals.NoStream, md); err != nil {
		t.Fatalf("SetStreamMetadata with NoStream: %v", err)
	}
	for _, exp := range []annals.ExpectedRevision{annals.NoStream, annals.Exact(4), annals.Exact(1)} {
		_, err := s.SetStreamMetadata(ctx, "mx-1", exp, annals.StreamMetadata{MaxCount: 1})
		var w *annals.WrongExpectedRevisionError
		if !errors.As(err, &w) || w.Expected != exp || w.Actual != annals.Exact(0) {
			t.Fatalf("SetStreamMetadata with %v on metastream at 0: error %v, want WrongExpectedRevisionError with actual 0", exp, err)
		}
	}
	unchanged(t, s, 6)
	got, rev, err := s.StreamMetadata(ctx, "mx-1")
	if err != nil || rev != annals.Exact(0) || got.MaxCount != 10 {
		t.Fatalf("StreamMetadata after failed sets: %+v, %v, %v; want MaxCount 10 at revision 0", got, rev, err)
	}
	for _, exp := range []annals.ExpectedRevision{annals.Exact(0), annals.StreamExists, annals.Any} {
		if _, err := s.SetStreamMetadata(ctx, "mx-1", exp, md); err != nil {
			t.Fatalf("SetStreamMetadata with %v: %v", exp, err)
		}
	}
	if _, rev, _ := s.StreamMetadata(ctx, "mx-1"); rev != annals.Exact(3) {
		t.Fatalf("metastream revision %v, want 3", rev)
	}
	// The stream's own revision did not move.
	mustAppend(t, ctx, s, "mx-1", annals.Exact(4), ev("More"))
}

func testMetadataMaxCount(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "mc-1", annals.NoStream, evs(10, "Counted")...)
	if _, err := s.SetStreamMetadata(ctx, "mc-1", annals.Any, annals.StreamMetadata{MaxCount: 3}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	b := annals.Backwards
	cases := []struct {
		opts annals.ReadStreamOptions
		want []uint64
	}{
		{annals.ReadStreamOptions{}, seq(7, 9)},
		{annals.ReadStreamOptions{From: 2}, seq(7, 9)},
		{annals.ReadStreamOptions{From: 8}, seq(8, 9)},
		{annals.ReadStreamOptions{Limit: 2}, seq(7, 8)},
		{annals.ReadStreamOptions{Direction: b, From: annals.End}, rseq(9, 7)},
		{annals.ReadStreamOptions{Direction: b, From: 8}, rseq(8, 7)},
		{annals.ReadStreamOptions{Direction: b, From: 5}, nil},
		{annals.ReadStreamOptions{Direction: b, From: annals.End, Limit: 2}, rseq(9, 8)},
	}
	for _, c := range cases {
		wantRevisions(t, "MaxCount 3, "+optString(c.opts), mustReadStream(t, ctx, s, "mc-1", c.opts), c.want)
	}
	mustAppend(t, ctx, s, "mc-1", annals.Exact(9), evs(2, "Counted")...)
	wantRevisions(t, "MaxCount 3 after 2 more", mustReadStream(t, ctx, s, "mc-1", annals.ReadStreamOptions{}), seq(9, 11))
	// $all is the complete record.
	got := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: annals.StreamPrefixFilter("mc-")})
	wantRevisions(t, "ReadAll of mc-1", got, seq(0, 11))
}

func testMetadataTruncateBefore(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	mustAppend(t, ctx, s, "tb-1", annals.NoStream, evs(10, "Truncated")...)
	if _, err := s.SetStreamMetadata(ctx, "tb-1", annals.Any, annals.StreamMetadata{TruncateBefore: 4}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	b := annals.Backwards
	cases := []struct {
		opts annals.ReadStreamOptions
		want []uint64
	}{
		{annals.ReadStreamOptions{}, seq(4, 9)},
		{annals.ReadStreamOptions{From: 2, Limit: 3}, seq(4, 6)},
		{annals.ReadStreamOptions{Direction: b, From: annals.End}, rseq(9, 4)},
		{annals.ReadStreamOptions{Direction: b, From: 2}, nil},
	}
	for _, c := range cases {
		wantRevisions(t, "TruncateBefore 4, "+optString(c.opts), mustReadStream(t, ctx, s, "tb-1", c.opts), c.want)
	}
	got := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: annals.StreamPrefixFilter("tb-")})
	wantRevisions(t, "ReadAll of tb-1", got, seq(0, 9))
}

// MaxAge hides events older than it at the moment of the read. The
// verdict depends on no machine's speed: an event is required hidden only
// if it was past MaxAge before the read began, and required shown only if
// it was still within MaxAge when the read ended; in between, either.
func testMetadataMaxAge(t *testing.T, s annals.Store) {
	ctx := testContext(t)
	const maxAge = 2 * time.Second
	if _, err := s.SetStreamMetadata(ctx, "age-1", annals.NoStream, annals.StreamMetadata{MaxAge: maxAge}); err != nil {
		t.Fatalf("SetStreamMetadata: %v", err)
	}
	mustAppend(t, ctx, s, "age-1", annals.NoStream, evs(3, "Old")...)
	old := mustReadStream(t, ctx, s, "age-1", annals.ReadStreamOptions{})
	if len(old) != 3 {
		t.Fatalf("read %d events of 3 just appended", len(old))
	}
	// Let time pass (the store's clock is the wall clock) until the old
	// events are past MaxAge.
	for time.Since(old[2].Recorded) <= maxAge {
		time.Sleep(maxAge / 20)
	}
	mustAppend(t, ctx, s, "age-1", annals.Exact(2), evs(2, "Fresh")...)
	all := mustReadAll(t, ctx, s, annals.ReadAllOptions{Filter: annals.ExcludeSystemEventsFilter()})
	wantRevisions(t, "ReadAll ignores MaxAge", all, seq(0, 4))
	for _, o := range []annals.ReadStreamOptions{{}, {Direction: annals.Backwards, From: annals.End}} {
		began := time.Now()
		got := mustReadStream(t, ctx, s, "age-1", o)
		ended := time.Now()
		shown := map[annals.Revision]bool{}
		for _, e := range got {
			shown[e.Revision] = true
		}
		for _, e := range all {
			switch age := e.Recorded; {
			case began.Sub(age) > maxAge && shown[e.Revision]:
				t.Errorf("MaxAge %v, %s: revision %d, recorded %v before the read, is shown", maxAge, optString(o), e.Revision, began.Sub(age))
			case ended.Sub(age) < maxAge && !shown[e.Revision]:
				t.Errorf("MaxAge %v, %s: revision %d, recorded %v before the read ended, is hidden", maxAge, optString(o), e.Revision, ended.Sub(age))
			}
		}
		want := seq(5-uint64(len(got)), 4) // what shows is the newest events, in order
		if o.Direction == annals.Backwards {
			want = rseq(4, 5-uint64(len(got)))
		}
		wantRevisions(t, "MaxAge "+optString(o), got, want)
	}
}

func optString(o annals.ReadStreamOptions) string {
	dir := "forwards"
	if o.Direction == annals.Backwards {
		dir = "backwards"
	}
	from := "Start"
	switch o.From {
	case annals.Start:
	case annals.End:
		from = "End"
	default:
		from = strconv.FormatUint(uint64(o.From), 10)
	}
	if o.Limit > 0 {
		return dir + " from " + from + " limit " + strconv.FormatUint(o.Limit, 10)
	}
	return dir + " from " + from
}
