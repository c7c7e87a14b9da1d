// Package codec maps Go types to event type names and back: a registry of
// the events of one domain, JSON by default, with schema versions and
// upcasters so that an event written by an old version of a type loads as
// today's type.
//
// Register every event type before the registry is used; after that a
// Registry is safe for concurrent use (it is only read).
//
// The schema version of an event is recorded in its metadata
// ({"schemaVersion":2}); an event without one is version 1. On read, the
// upcasters registered for the type run in order, from the version the
// event was written with to the type's current version, on the raw JSON,
// before it is decoded into the Go type.
package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/annals/annals"
)

// MaxVersion bounds the schema version of a type: upcasting walks every
// version in between, and a version beyond it in an event is corrupt.
const MaxVersion = 1000

var (
	// ErrUnknownType matches every *UnknownTypeError.
	ErrUnknownType = errors.New("codec: unknown event type")
	// ErrNotRegistered: Encode was given a Go type that was not registered.
	ErrNotRegistered = errors.New("codec: Go type not registered")
	// ErrFutureVersion: an event was written with a schema version newer
	// than the registered one (by a newer version of the program).
	ErrFutureVersion = errors.New("codec: event written by a newer schema version")
)

// UnknownTypeError is returned by Decode for an event whose type is not
// registered (unless the registry skips them).
type UnknownTypeError struct {
	Type     string
	Stream   string
	Revision annals.Revision
}

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("codec: unknown event type %q (stream %q, revision %d): register it, or skip unknown types",
		e.Type, e.Stream, e.Revision)
}

func (e *UnknownTypeError) Is(target error) bool { return target == ErrUnknownType }

// Upcaster turns the JSON of one schema version of an event into the JSON
// of the next version.
type Upcaster func(data []byte) ([]byte, error)

// Options configure a Registry.
type Options struct {
	// SkipUnknown makes Decode skip events of unregistered types (ok false)
	// instead of failing with an *UnknownTypeError. Useful when a stream
	// carries events this program does not care about; dangerous when they
	// change the state it decides on.
	SkipUnknown bool
}

// TypeOption configures one registered type.
type TypeOption func(*entry) error

// Version sets the current schema version of the type (1 by default).
// Events are written with it; older events need an upcaster for each
// version in between.
func Version(v int) TypeOption {
	return func(e *entry) error {
		if v < 1 || v > MaxVersion {
			return fmt.Errorf("codec: version %d of %q: want 1 to %d", v, e.name, MaxVersion)
		}
		e.version = v
		return nil
	}
}

// Upcast registers the upcaster from schema version from to from+1.
func Upcast(from int, up Upcaster) TypeOption {
	return func(e *entry) error {
		if from < 1 || from >= MaxVersion || up == nil {
			return fmt.Errorf("codec: upcaster of %q from version %d: want a function and a version from 1 to %d", e.name, from, MaxVersion-1)
		}
		if _, dup := e.upcasters[from]; dup {
			return fmt.Errorf("codec: two upcasters of %q from version %d", e.name, from)
		}
		e.upcasters[from] = up
		return nil
	}
}

// Alias makes events recorded under an older type name decode as this type
// (a renamed event). Their schema versions count on as this type's.
func Alias(oldName string) TypeOption {
	return func(e *entry) error {
		if oldName == "" {
			return fmt.Errorf("codec: empty alias of %q", e.name)
		}
		e.aliases = append(e.aliases, oldName)
		return nil
	}
}

type entry struct {
	name      string
	typ       reflect.Type
	version   int
	upcasters map[int]Upcaster
	aliases   []string
}

// Registry maps the Go types of the events of a domain, all of which are
// assignable to E (usually an interface every event implements), to event
// type names.
type Registry[E any] struct {
	opts   Options
	byName map[string]*entry
	byType map[reflect.Type]*entry
}

// New returns an empty registry.
func New[E any](opts Options) *Registry[E] {
	return &Registry[E]{opts: opts, byName: map[string]*entry{}, byType: map[reflect.Type]*entry{}}
}

// Register records T under the event type name. T must be assignable to E
// and marshal to JSON. Each name and each type is registered once.
func Register[T, E any](r *Registry[E], name string, opts ...TypeOption) error {
	t := reflect.TypeFor[T]()
	if !t.AssignableTo(reflect.TypeFor[E]()) {
		return fmt.Errorf("codec: %v is not a %v", t, reflect.TypeFor[E]())
	}
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("codec: %v is an interface; register the concrete event types", t)
	}
	if name == "" {
		return fmt.Errorf("codec: empty event type name for %v", t)
	}
	e := &entry{name: name, typ: t, version: 1, upcasters: map[int]Upcaster{}}
	for _, o := range opts {
		if err := o(e); err != nil {
			return err
		}
	}
	for v := 1; v < e.version; v++ {
		if e.upcasters[v] == nil {
			return fmt.Errorf("codec: %q is at version %d but has no upcaster from version %d", name, e.version, v)
		}
	}
	for v := range e.upcasters {
		if v >= e.version {
			return fmt.Errorf("codec: %q has an upcaster from version %d, at or past its version %d", name, v, e.version)
		}
	}
	if _, dup := r.byType[t]; dup {
		return fmt.Errorf("codec: %v registered twice", t)
	}
	for _, n := range append([]string{name}, e.aliases...) {
		if _, dup := r.byName[n]; dup {
			return fmt.Errorf("codec: event type name %q registered twice", n)
		}
	}
	r.byType[t] = e
	for _, n := range append([]string{name}, e.aliases...) {
		r.byName[n] = e
	}
	return nil
}

// MustRegister is Register that panics on error, for registrations at
// package initialisation.
func MustRegister[T, E any](r *Registry[E], name string, opts ...TypeOption) {
	if err := Register[T](r, name, opts...); err != nil {
		panic(err)
	}
}

// Name returns the event type name of ev's Go type.
func (r *Registry[E]) Name(ev E) (string, error) {
	e, err := r.lookup(ev)
	if err != nil {
		return "", err
	}
	return e.name, nil
}

func (r *Registry[E]) lookup(ev E) (*entry, error) {
	t := reflect.TypeOf(any(ev))
	e, ok := r.byType[t]
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrNotRegistered, t)
	}
	return e, nil
}

// metadata is what the registry records in an event's metadata.
type metadata struct {
	SchemaVersion int `json:"schemaVersion,omitempty"`
}

// Encode returns ev as an event to append: its registered type name, its
// JSON, and its schema version in the metadata. The ID is left zero.
func (r *Registry[E]) Encode(ev E) (annals.EventData, error) {
	e, err := r.lookup(ev)
	if err != nil {
		return annals.EventData{}, err
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return annals.EventData{}, fmt.Errorf("codec: encoding %s: %w", e.name, err)
	}
	md, _ := json.Marshal(metadata{SchemaVersion: e.version})
	return annals.EventData{Type: e.name, ContentType: annals.ContentTypeJSON, Data: data, Metadata: md}, nil
}

// Decode returns the event as its registered Go type, upcast to the
// current schema version. ok is false when the type is unknown and the
// registry skips unknown types.
func (r *Registry[E]) Decode(ev annals.Event) (_ E, ok bool, _ error) {
	var zero E
	e, known := r.byName[ev.Type]
	if !known {
		if r.opts.SkipUnknown {
			return zero, false, nil
		}
		return zero, false, &UnknownTypeError{Type: ev.Type, Stream: ev.Stream, Revision: ev.Revision}
	}
	v, err := SchemaVersion(ev.Metadata)
	if err != nil {
		return zero, false, fmt.Errorf("codec: %s at %q@%d: %w", ev.Type, ev.Stream, ev.Revision, err)
	}
	if v > e.version {
		return zero, false, fmt.Errorf("%w: %s at %q@%d is version %d, this program knows up to %d",
			ErrFutureVersion, ev.Type, ev.Stream, ev.Revision, v, e.version)
	}
	data := ev.Data
	for ; v < e.version; v++ {
		if data, err = e.upcasters[v](data); err != nil {
			return zero, false, fmt.Errorf("codec: upcasting %s at %q@%d from version %d: %w", ev.Type, ev.Stream, ev.Revision, v, err)
		}
	}
	p := reflect.New(e.typ)
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, p.Interface()); err != nil {
			return zero, false, fmt.Errorf("codec: decoding %s at %q@%d: %w", ev.Type, ev.Stream, ev.Revision, err)
		}
	}
	return p.Elem().Interface().(E), true, nil
}

// SchemaVersion returns the schema version recorded in an event's
// metadata: 1 when there is none.
func SchemaVersion(md []byte) (int, error) {
	if len(bytes.TrimSpace(md)) == 0 || !bytes.Contains(md, []byte(`"schemaVersion"`)) {
		return 1, nil
	}
	var m metadata
	if err := json.Unmarshal(md, &m); err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	switch {
	case m.SchemaVersion == 0:
		return 1, nil
	case m.SchemaVersion < 0 || m.SchemaVersion > MaxVersion:
		return 0, fmt.Errorf("metadata: schema version %d out of range", m.SchemaVersion)
	}
	return m.SchemaVersion, nil
}
