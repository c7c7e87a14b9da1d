package annals

import (
	"errors"
	"fmt"
	"slices"
)

// Dynamic consistency boundaries (DCB, dcb.events): a decision reads the
// events that matter to it by a Query of types and tags, across streams,
// and appends on the condition that no event matching that query was
// appended since it read. The boundary is drawn per decision, not per
// stream: a course's capacity and a student's course limit are checked in
// one decision without an aggregate owning both.

// Query selects events: those matching any of its items. A Query without
// items matches every event.
type Query struct {
	Items []QueryItem
}

// QueryItem matches an event whose type is one of Types (any type if
// none) and which carries every one of Tags.
type QueryItem struct {
	Types []string
	Tags  []string
}

// Matches reports whether q selects an event of type typ with tags.
func (q Query) Matches(typ string, tags []string) bool {
	if len(q.Items) == 0 {
		return true
	}
	for _, it := range q.Items {
		if it.Matches(typ, tags) {
			return true
		}
	}
	return false
}

// Matches reports whether the item selects an event of type typ with tags.
func (it QueryItem) Matches(typ string, tags []string) bool {
	if len(it.Types) > 0 && !slices.Contains(it.Types, typ) {
		return false
	}
	for _, t := range it.Tags {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}

// Condition makes a MultiAppend fail if any event matching Query was
// appended after the position After: the position up to which the
// decision read (the last position of its read, or the store's position
// if it read nothing). Evaluated in the same atomic step as the write,
// under the store's writer, so two decisions on the same query and
// position cannot both append.
type Condition struct {
	Query Query
	After Position
}

// ReadQueryOptions select part of the events a query matches.
type ReadQueryOptions struct {
	Direction Direction
	// From is the first position to read, inclusive: Start (the default)
	// or End, or any position.
	From Position
	// Limit caps the number of events; 0 means no limit.
	Limit uint64
}

// ErrConditionFailed matches every *ConditionError.
var ErrConditionFailed = errors.New("annals: append condition failed")

// ConditionError is returned when a MultiAppend's Condition fails: an
// event matching its query was appended after its position. Nothing was
// written. It matches ErrConditionFailed and ErrWrongExpectedRevision (a
// conflict: decide again on what is there now).
type ConditionError struct {
	// Position is that of the first matching event after the condition's.
	Position Position
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("annals: append condition failed: an event matching the query was appended at position %d", e.Position)
}

func (e *ConditionError) Is(target error) bool {
	return target == ErrConditionFailed || target == ErrWrongExpectedRevision
}

// MaxConditionScanEvents bounds the events a condition whose query has an
// item without tags may pass over: such an item cannot use the tag index,
// so the store's writer reads the log after the condition's position,
// while every other append waits. Past it the append is refused with
// ErrConditionScan (nothing written): give the item a tag, or decide on a
// later position.
const MaxConditionScanEvents = 100_000

// ErrConditionScan is returned for a condition over MaxConditionScanEvents.
// It matches ErrInvalidInput.
var ErrConditionScan = &InvalidInputError{Field: "condition", TooLarge: true,
	Reason: fmt.Sprintf("an item of the query names no tag and more than %d events came after the position: give it a tag, or decide on a later position", MaxConditionScanEvents)}

// Tag limits (see Limits.CheckTags).
const (
	MaxTagsPerEvent = 32
	MaxTagBytes     = 256
	MaxQueryItems   = 64
	MaxItemTypes    = 64
	MaxItemTags     = MaxTagsPerEvent
)

// CheckTags validates an event's tags: at most MaxTagsPerEvent, each 1 to
// MaxTagBytes bytes of text that cannot disguise itself, none twice.
func CheckTags(field string, tags []string) error {
	if len(tags) > MaxTagsPerEvent {
		return invalid(field, "%d tags, at most %d", len(tags), MaxTagsPerEvent)
	}
	for i, t := range tags {
		f := fmt.Sprintf("%s[%d]", field, i)
		if t == "" || len(t) > MaxTagBytes {
			return invalid(f, "a tag has 1 to %d bytes", MaxTagBytes)
		}
		if err := checkText(f, t); err != nil {
			return err
		}
		if err := checkDisguise(f, t); err != nil {
			return err
		}
		if slices.Contains(tags[:i], t) {
			return invalid(f, "%q is given twice", t)
		}
	}
	return nil
}

// Validate checks a query against the limits.
func (q Query) Validate() error {
	if len(q.Items) > MaxQueryItems {
		return invalid("query", "%d items, at most %d", len(q.Items), MaxQueryItems)
	}
	for i, it := range q.Items {
		field := fmt.Sprintf("query.items[%d]", i)
		if len(it.Types) == 0 && len(it.Tags) == 0 {
			return invalid(field, "an item names types, tags or both (a query without items matches every event)")
		}
		if len(it.Types) > MaxItemTypes {
			return invalid(field+".types", "%d types, at most %d", len(it.Types), MaxItemTypes)
		}
		for j, typ := range it.Types {
			if typ == "" || len(typ) > DefaultMaxEventTypeBytes {
				return invalid(fmt.Sprintf("%s.types[%d]", field, j), "a type has 1 to %d bytes", DefaultMaxEventTypeBytes)
			}
		}
		if len(it.Tags) > MaxItemTags {
			return invalid(field+".tags", "%d tags, at most %d", len(it.Tags), MaxItemTags)
		}
		if err := CheckTags(field+".tags", it.Tags); err != nil {
			return err
		}
	}
	return nil
}
