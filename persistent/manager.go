package persistent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// ConfigStream holds the definitions of every group: each event is the
// whole set, so the last one is the truth.
const ConfigStream = "$persistentSubscriptionConfig"

// Config defines a group.
type Config struct {
	// Stream is the stream the group follows, or annals.AllStream.
	Stream string
	// Group names the group; unique per stream.
	Group string
	// Filter selects the events of an $all group (nil: all of them).
	Filter *annals.Filter
	// Settings; start from DefaultSettings.
	Settings Settings
}

// groupDef is a group's definition as the config stream holds it.
type groupDef struct {
	Stream   string      `json:"stream"`
	Group    string      `json:"group"`
	Filter   *filterJSON `json:"filter,omitempty"`
	Settings Settings    `json:"settings"`
	// Incarnation tells this creation of the group from earlier ones of
	// the same name (their checkpoints and parked links are not its own).
	Incarnation string `json:"incarnation"`
	// ParkedFrom is the first revision of the parked stream that is this
	// incarnation's.
	ParkedFrom annals.Revision `json:"parkedFrom"`
	Created    time.Time       `json:"created"`

	filter *annals.Filter
}

type filterJSON struct {
	OnEventType bool     `json:"onEventType,omitempty"`
	Prefixes    []string `json:"prefixes,omitempty"`
	Regex       string   `json:"regex,omitempty"`
}

func filterToJSON(f *annals.Filter) *filterJSON {
	if f == nil {
		return nil
	}
	prefixes, re := f.Expression()
	out := &filterJSON{OnEventType: f.On == annals.FilterEventType, Prefixes: prefixes}
	if re != nil {
		out.Regex = re.String()
	}
	return out
}

func (f *filterJSON) filter() (*annals.Filter, error) {
	if f == nil {
		return nil, nil
	}
	on := annals.FilterStreamName
	if f.OnEventType {
		on = annals.FilterEventType
	}
	out := &annals.Filter{On: on, Prefixes: f.Prefixes}
	if f.Regex != "" {
		re, err := regexp.Compile(f.Regex)
		if err != nil {
			return nil, err
		}
		out.Regex = re
	}
	return out, nil
}

type configDoc struct {
	Groups []groupDef `json:"groups"`
}

type key struct{ stream, group string }

// Options configure a Manager.
type Options struct {
	// Logger receives what goes wrong in the background (slog.Default if
	// nil).
	Logger *slog.Logger
}

// Manager runs the persistent subscription groups of one store. Its
// methods are safe for concurrent use.
type Manager struct {
	store  annals.Store
	log    *slog.Logger
	ctx    context.Context // ends the groups' goroutines on Close
	cancel context.CancelFunc

	// mu guards groups and serialises changes of the definitions: a
	// change is written to the config stream before it takes effect.
	mu        sync.Mutex
	groups    map[key]*group
	configRev annals.ExpectedRevision
	closed    bool
}

// Open loads the groups defined in store. Groups start reading when their
// first consumer connects.
func Open(ctx context.Context, store annals.Store, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{store: store, log: opts.Logger, groups: make(map[key]*group), configRev: annals.NoStream}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	defs, rev, err := m.readConfig(ctx)
	if err != nil {
		m.cancel()
		return nil, err
	}
	m.configRev = rev
	for _, def := range defs {
		g, err := loadGroup(ctx, m, def)
		if err != nil {
			m.cancel()
			return nil, err
		}
		m.groups[key{def.Stream, def.Group}] = g
	}
	return m, nil
}

func (m *Manager) readConfig(ctx context.Context) ([]groupDef, annals.ExpectedRevision, error) {
	for e, err := range m.store.ReadStream(ctx, ConfigStream, annals.ReadStreamOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return nil, annals.Any, err
		}
		var doc configDoc
		if err := json.Unmarshal(e.Data, &doc); err != nil {
			return nil, annals.Any, fmt.Errorf("persistent: %s revision %d: %w", ConfigStream, e.Revision, err)
		}
		for i := range doc.Groups {
			f, err := doc.Groups[i].Filter.filter()
			if err != nil {
				return nil, annals.Any, fmt.Errorf("persistent: filter of group %q: %w", doc.Groups[i].Group, err)
			}
			doc.Groups[i].filter = f
		}
		return doc.Groups, annals.Exact(e.Revision), nil
	}
	// Never written (or emptied by someone): say so to the next write.
	_, rev, err := m.lastRevision(ctx)
	return nil, rev, err
}

// lastRevision is the config stream's expected revision for a write.
func (m *Manager) lastRevision(ctx context.Context) (annals.Revision, annals.ExpectedRevision, error) {
	next, _, err := streamTail(ctx, m.store, ConfigStream)
	if err != nil {
		return 0, annals.Any, err
	}
	if next == 0 {
		return 0, annals.NoStream, nil
	}
	return next - 1, annals.Exact(next - 1), nil
}

// writeConfig writes the definitions with one group replaced, added
// (def != nil) or removed; m.mu is held.
func (m *Manager) writeConfig(ctx context.Context, k key, def *groupDef) error {
	var doc configDoc
	for gk, g := range m.groups {
		if gk != k {
			doc.Groups = append(doc.Groups, g.def)
		}
	}
	if def != nil {
		doc.Groups = append(doc.Groups, *def)
	}
	slices.SortFunc(doc.Groups, func(a, b groupDef) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Group, b.Group))
	})
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	res, err := m.store.Append(ctx, ConfigStream, m.configRev, annals.EventData{Type: eventTypeConfig, Data: data})
	if err != nil {
		return fmt.Errorf("persistent: writing the group definitions: %w", err)
	}
	m.configRev = res.NextExpected
	return nil
}

// check validates a group's definition.
func (c *Config) check() error {
	if err := (annals.Limits{}).WithDefaults().CheckStreamName(c.Stream); err != nil {
		return err
	}
	if c.Group == "" {
		return invalid("group", "name is empty")
	}
	if len(c.Group) > MaxGroupNameBytes {
		return invalid("group", "name is %d bytes, at most %d", len(c.Group), MaxGroupNameBytes)
	}
	for _, r := range c.Group {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return invalid("group", "name contains %U", r)
		}
	}
	if c.Filter != nil && c.Stream != annals.AllStream {
		return invalid("filter", "only a group on %s takes a filter", annals.AllStream)
	}
	if err := c.Filter.Validate(); err != nil {
		return err
	}
	return c.Settings.Validate()
}

// resolveStart turns StartFrom End into the current end, and remembers
// it was asked (FromEnd).
func (m *Manager) resolveStart(ctx context.Context, c *Config) error {
	c.Settings.FromEnd = c.Settings.StartFrom == annals.End
	if !c.Settings.FromEnd {
		return nil
	}
	c.Settings.StartFrom = 0
	if c.Stream == annals.AllStream {
		for e, err := range m.store.ReadAll(ctx, annals.ReadAllOptions{Direction: annals.Backwards, From: annals.End, Limit: 1}) {
			if err != nil {
				return err
			}
			c.Settings.StartFrom = uint64(annals.After(e.Position))
		}
		return nil
	}
	next, _, err := streamTail(ctx, m.store, c.Stream)
	if err != nil && !errors.Is(err, annals.ErrStreamDeleted) {
		return err
	}
	c.Settings.StartFrom = uint64(next)
	return nil
}

func (m *Manager) lookup(stream, name string) (*group, error) {
	if m.closed {
		return nil, ErrClosed
	}
	g := m.groups[key{stream, name}]
	if g == nil {
		return nil, fmt.Errorf("%w: %q on %q", ErrGroupNotFound, name, stream)
	}
	return g, nil
}

// Create defines a new group.
func (m *Manager) Create(ctx context.Context, c Config) error {
	if err := c.check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	k := key{c.Stream, c.Group}
	if m.groups[k] != nil {
		return fmt.Errorf("%w: %q on %q", ErrGroupExists, c.Group, c.Stream)
	}
	if len(m.groups) >= MaxGroups {
		return fmt.Errorf("%w: at most %d", ErrTooManyGroups, MaxGroups)
	}
	if err := m.resolveStart(ctx, &c); err != nil {
		return err
	}
	// Links an earlier group of this name parked are not this one's.
	parkedFrom, _, err := streamTail(ctx, m.store, ParkedStream(c.Stream, c.Group))
	if err != nil {
		return err
	}
	def := groupDef{Stream: c.Stream, Group: c.Group, Filter: filterToJSON(c.Filter), Settings: c.Settings,
		Incarnation: uuid.NewString(), ParkedFrom: parkedFrom, Created: time.Now().UTC(), filter: c.Filter}
	g, err := loadGroup(ctx, m, def)
	if err != nil {
		return err
	}
	if err := m.writeConfig(ctx, k, &def); err != nil {
		return err
	}
	m.groups[k] = g
	return nil
}

// Update changes a group's settings (its filter stays). Its consumers are
// dropped (ErrDropped) and the group resumes from its checkpoint with the
// new settings; StartFrom only matters if it has none.
func (m *Manager) Update(ctx context.Context, c Config) error {
	if err := c.check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, err := m.lookup(c.Stream, c.Group)
	if err != nil {
		return err
	}
	if err := m.resolveStart(ctx, &c); err != nil {
		return err
	}
	def := old.def
	def.Settings = c.Settings
	k := key{c.Stream, c.Group}
	if err := m.writeConfig(ctx, k, &def); err != nil {
		return err
	}
	old.stop(ErrDropped, true)
	g, err := loadGroup(ctx, m, def)
	if err != nil {
		// The definition is written: the group loads at the next restart.
		m.log.Error("persistent subscription: reloading an updated group", "stream", c.Stream, "group", c.Group, "err", err)
		delete(m.groups, k)
		return err
	}
	m.groups[k] = g
	return nil
}

// Delete removes a group; its consumers are dropped (ErrDropped). Its
// checkpoint and parked streams stay in the store as history; a group
// created later under the same name does not use them.
func (m *Manager) Delete(ctx context.Context, stream, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.lookup(stream, name)
	if err != nil {
		return err
	}
	k := key{stream, name}
	if err := m.writeConfig(ctx, k, nil); err != nil {
		return err
	}
	delete(m.groups, k)
	g.stop(ErrDropped, false)
	return nil
}

// ReplayParked brings the group's parked messages back for delivery (at
// most MaxReplayMessages at a time). stopAt, if not zero, replays only the
// parked-stream revisions before it.
func (m *Manager) ReplayParked(ctx context.Context, stream, name string, stopAt annals.Revision) error {
	m.mu.Lock()
	g, err := m.lookup(stream, name)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	return g.replay(ctx, stopAt)
}

// Restart stops every group, dropping its consumers (ErrDropped) after
// writing its checkpoint, and loads them again from the store.
func (m *Manager) Restart(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, g := range m.groups {
		g.stop(ErrDropped, true)
	}
	defs, rev, err := m.readConfig(ctx)
	if err != nil {
		m.groups = map[key]*group{} // stopped: none can serve
		return err
	}
	m.configRev = rev
	groups := make(map[key]*group, len(defs))
	var firstErr error
	for _, def := range defs {
		g, err := loadGroup(ctx, m, def)
		if err != nil {
			// The others still load; this one is missing until the
			// next restart.
			m.log.Error("persistent subscription: reloading a group", "stream", def.Stream, "group", def.Group, "err", err)
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		groups[key{def.Stream, def.Group}] = g
	}
	m.groups = groups
	return firstErr
}

// Close stops every group, writing its checkpoint; consumers end with
// ErrClosed. Close it before the store.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, g := range m.groups {
		g.stop(ErrClosed, true)
	}
	m.cancel()
	return nil
}
