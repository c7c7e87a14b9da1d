// Package links answers KurrentDB's index streams ($ce-, $et-, $streams,
// $category-) from a store's secondary indexes, and resolves link events.
//
// A store keeps, for each index stream, a dense list of entries: revision
// r of the index stream points at one event of the log. The list is
// written in the same atomic write as the events (so after a crash an
// acknowledged event is in each of its index streams exactly once) and
// in the order of $all (so an index stream's revisions follow $all).
// This package turns entries into the link events KurrentDB would have
// stored, and resolves them when a read asks for it.
package links

import (
	"encoding/binary"
	"strings"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// MaxNames is how many index streams one event can be in: its category's,
// its type's, $streams and its category's stream list.
const MaxNames = 4

// typeDeleted is the type $et- indexes a deletion under, as KurrentDB.
const typeDeleted = "$deleted"

// Names appends to dst the index streams e belongs to, as KurrentDB's
// system projections place it:
//   - $ce-<category> (by_category): every event of a stream with a
//     category, links included, and the record of its deletion;
//   - $et-<type> (by_event_type): every event but links; a deletion is
//     of type $deleted;
//   - $streams: the first event of every stream;
//   - $category-<category> (stream_by_category): the first event of
//     every stream with a category.
func Names(dst []string, e *annals.Event) []string {
	deleted, of := deletion(e)
	inCategory := e.Stream
	if deleted {
		inCategory = of
	}
	if c, ok := annals.IndexedCategory(inCategory); ok {
		dst = append(dst, annals.CategoryStream(c))
	}
	if e.Type != annals.EventTypeLink {
		t := e.Type
		if deleted {
			t = typeDeleted
		}
		dst = append(dst, annals.EventTypeStream(t))
	}
	if e.Revision == 0 {
		dst = append(dst, annals.StreamsStream)
		if c, ok := annals.IndexedCategory(e.Stream); ok {
			dst = append(dst, annals.StreamsOfCategoryPrefix+c)
		}
	}
	return dst
}

// deletion reports whether e records the deletion of a stream, and
// which: a tombstone, or the metadata a soft delete writes ($tb at the
// end).
func deletion(e *annals.Event) (bool, string) {
	if e.Type == annals.EventTypeStreamDeleted && e.Revision == annals.RevisionTombstone {
		return true, e.Stream
	}
	of, meta := annals.IsMetastream(e.Stream)
	if !meta || e.Type != annals.EventTypeMetadata {
		return false, ""
	}
	md, err := annals.ParseStreamMetadata(e.Data)
	if err != nil || md.TruncateBefore != annals.TruncateBeforeDeleted {
		return false, ""
	}
	return true, of
}

// linkSpace scopes the ids of the link events this package makes up.
var linkSpace = uuid.MustParse("6f3a1c2e-9b7d-4e58-a0c1-3d2f5b8e7a14")

// Link returns the link event revision of index stream name stands for,
// pointing at e (the event the entry points at). The link has no place of
// its own in $all: its Position is e's. Its id is derived from the index
// stream and revision, so every read answers the same one.
func Link(name string, revision annals.Revision, e *annals.Event) annals.Event {
	l := annals.Event{
		ID:          linkID(name, revision),
		Stream:      name,
		Type:        annals.EventTypeLink,
		ContentType: annals.ContentTypeBinary,
		Recorded:    e.Recorded,
		Revision:    revision,
		Position:    e.Position,
	}
	switch {
	case strings.HasPrefix(name, annals.StreamsOfCategoryPrefix):
		l.Type = annals.EventTypeStreamReference
		l.Data = []byte(e.Stream)
	case e.Type == annals.EventTypeLink:
		// by_category links to what a link points at, not to the link.
		l.Data = e.Data
	default:
		l.Data = annals.LinkData(e.Stream, e.Revision)
	}
	return l
}

func linkID(name string, revision annals.Revision) uuid.UUID {
	b := binary.BigEndian.AppendUint64([]byte(name), uint64(revision))
	return uuid.NewSHA1(linkSpace, b)
}
