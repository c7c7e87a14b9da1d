package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/annals/annals"
)

// previewBytes bounds the data shown beside an event in a list.
const previewBytes = 200

// eventJSON is an event as the console shows it. Data and Metadata are
// text when they are UTF-8 (JSON pretty-printed), else base64
// (DataEncoding "base64").
type eventJSON struct {
	Stream       string          `json:"stream"`
	Revision     annals.Revision `json:"revision"`
	Position     annals.Position `json:"position"`
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	ContentType  string          `json:"contentType"`
	Recorded     time.Time       `json:"recorded"`
	SizeBytes    int             `json:"sizeBytes"`
	Data         string          `json:"data"`
	DataEncoding string          `json:"dataEncoding,omitempty"`
	Metadata     string          `json:"metadata,omitempty"`
	Truncated    bool            `json:"truncated,omitempty"`
}

// view shows e, its data and metadata cut at limit bytes.
func view(e annals.Event, limit int) eventJSON {
	out := eventJSON{
		Stream: e.Stream, Revision: e.Revision, Position: e.Position, ID: e.ID.String(), Type: e.Type,
		ContentType: e.ContentType, Recorded: e.Recorded, SizeBytes: len(e.Data) + len(e.Metadata),
	}
	var cut bool
	out.Data, out.DataEncoding, cut = shown(e.Data, limit)
	md, _, mdCut := shown(e.Metadata, limit)
	out.Metadata, out.Truncated = md, cut || mdCut
	return out
}

// shown is b as text (JSON indented), or base64 if it is not UTF-8.
func shown(b []byte, limit int) (text, encoding string, cut bool) {
	if len(b) > limit {
		b, cut = b[:limit], true
	}
	if !cut && json.Valid(b) {
		var v any
		if json.Unmarshal(b, &v) == nil {
			if pretty, err := json.MarshalIndent(v, "", "  "); err == nil {
				return string(pretty), "", false
			}
		}
	}
	if utf8.Valid(b) {
		return string(b), "", cut
	}
	buf, _ := json.Marshal(b) // base64, quoted
	return string(buf[1 : len(buf)-1]), "base64", cut
}

// page is a page of events and where the next one starts (nil: none).
type page struct {
	Events []eventJSON `json:"events"`
	Next   *uint64     `json:"next"`
}

func (c *console) serveStreams(w http.ResponseWriter, r *http.Request) {
	lister, ok := c.opts.Store.(annals.StreamLister)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this store cannot list its streams")
		return
	}
	q := r.URL.Query()
	limit := annals.DefaultListStreamsLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > annals.MaxListStreamsLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want a number from 1 to %d", annals.MaxListStreamsLimit))
			return
		}
		limit = n
	}
	streams, err := lister.ListStreams(r.Context(), annals.ListStreamsOptions{Prefix: q.Get("prefix"), After: q.Get("after"), Limit: limit})
	if err != nil {
		c.writeStoreError(w, err)
		return
	}
	next := ""
	if len(streams) == limit {
		next = streams[len(streams)-1].Name
	}
	writeJSON(w, struct {
		Streams []annals.StreamInfo `json:"streams"`
		Next    string              `json:"next"`
	}{streams, next})
}

// readParams are a page's where and which way.
type readParams struct {
	from      uint64 // annals.End for the end
	direction annals.Direction
	limit     int
}

func parseRead(r *http.Request) (readParams, error) {
	q := r.URL.Query()
	p := readParams{direction: annals.Forwards}
	switch q.Get("direction") {
	case "", "forwards":
	case "backwards":
		p.direction, p.from = annals.Backwards, annals.End
	default:
		return p, errors.New("direction: want forwards or backwards")
	}
	switch s := q.Get("from"); s {
	case "":
	case "start":
		p.from = 0
	case "end":
		p.from = annals.End
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return p, errors.New("from: want start, end or a number")
		}
		p.from = n
	}
	var err error
	p.limit, err = pageLimit(r)
	return p, err
}

// next is where the page after one ending at last starts, nil if none.
func (p readParams) next(last uint64, more bool) *uint64 {
	if !more || (p.direction == annals.Backwards && last == 0) {
		return nil
	}
	n := last + 1
	if p.direction == annals.Backwards {
		n = last - 1
	}
	return &n
}

func (c *console) serveStream(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	p, err := parseRead(r)
	if err == nil && name == "" {
		err = errors.New("name: the stream to read is missing")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	seq := c.opts.Store.ReadStream(r.Context(), name, annals.ReadStreamOptions{
		Direction: p.direction, From: annals.Revision(p.from), Limit: uint64(p.limit) + 1,
	})
	c.writePage(w, p, seq, func(e annals.Event) uint64 { return uint64(e.Revision) })
}

func (c *console) serveAll(w http.ResponseWriter, r *http.Request) {
	p, err := parseRead(r)
	var f *annals.Filter
	if err == nil {
		f, err = filterOf(r)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	seq := c.opts.Store.ReadAll(r.Context(), annals.ReadAllOptions{
		Direction: p.direction, From: annals.Position(p.from), Limit: uint64(p.limit) + 1, Filter: f,
	})
	c.writePage(w, p, seq, func(e annals.Event) uint64 { return uint64(e.Position) })
}

// writePage answers the first p.limit events of seq (which reads one
// more, to tell whether there is a next page).
func (c *console) writePage(w http.ResponseWriter, p readParams, seq func(func(annals.Event, error) bool), at func(annals.Event) uint64) {
	out := page{Events: []eventJSON{}}
	more := false
	for e, err := range seq {
		if err != nil {
			c.writeStoreError(w, err)
			return
		}
		if len(out.Events) == p.limit {
			more = true
			break
		}
		out.Events = append(out.Events, view(e, previewBytes))
	}
	if n := len(out.Events); n > 0 {
		last := out.Events[n-1]
		out.Next = p.next(at(annals.Event{Revision: last.Revision, Position: last.Position}), more)
	}
	writeJSON(w, out)
}

// filterOf reads the $all filter of a request: prefix (streams) or type
// (event types), comma-separated prefixes, at most annals.MaxFilterPrefixes.
func filterOf(r *http.Request) (*annals.Filter, error) {
	q := r.URL.Query()
	var f *annals.Filter
	for _, key := range filterParams {
		values, ok := q[key]
		if !ok {
			continue
		}
		if f != nil {
			return nil, fmt.Errorf("filter by one of %s at a time", strings.Join(filterParams, ", "))
		}
		g, err := filterFrom(key, values)
		if err != nil {
			return nil, err
		}
		f = g
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// filterParams are the filters a page of $all and a live tail take, as the
// server's: by stream prefix (prefix, repeatable), event type prefix (type,
// repeatable), stream name or event type expression (regex, typeRegex), or
// category.
var filterParams = []string{"prefix", "type", "regex", "typeRegex", "category"}

// maxRegexBytes bounds a filter's regular expression (RE2: its matching
// time is linear in the name, whatever the expression).
const maxRegexBytes = 1024

func filterFrom(key string, values []string) (*annals.Filter, error) {
	for _, v := range values {
		if v == "" {
			return nil, fmt.Errorf("an empty %s would match every event: leave the parameter out", key)
		}
	}
	switch key {
	case "prefix":
		return annals.StreamPrefixFilter(values...), nil
	case "type":
		return annals.EventTypePrefixFilter(values...), nil
	case "category":
		if len(values) > 1 {
			return nil, errors.New("one category at a time")
		}
		return annals.CategoryFilter(values[0]), nil
	}
	if len(values) > 1 || len(values[0]) > maxRegexBytes {
		return nil, fmt.Errorf("%s takes one regular expression of at most %d bytes", key, maxRegexBytes)
	}
	re, err := regexp.Compile(values[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %v", key, err)
	}
	if key == "regex" {
		return annals.StreamRegexFilter(re), nil
	}
	return annals.EventTypeRegexFilter(re), nil
}

func (c *console) serveEvent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("stream")
	rev, err := strconv.ParseUint(q.Get("revision"), 10, 64)
	if name == "" || err != nil {
		writeError(w, http.StatusBadRequest, "want stream and revision (a number)")
		return
	}
	for e, err := range c.opts.Store.ReadStream(r.Context(), name, annals.ReadStreamOptions{From: annals.Revision(rev), Limit: 1}) {
		if err != nil {
			c.writeStoreError(w, err)
			return
		}
		if uint64(e.Revision) != rev {
			break
		}
		writeJSON(w, view(e, maxEventBytesShown))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("%s has no event at revision %d", name, rev))
}

func (c *console) serveMetadata(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("stream")
	if name == "" {
		writeError(w, http.StatusBadRequest, "stream: the stream whose metadata to show is missing")
		return
	}
	md, rev, err := c.opts.Store.StreamMetadata(r.Context(), name)
	if err != nil {
		c.writeStoreError(w, err)
		return
	}
	revision := "none"
	if n, ok := rev.Revision(); ok {
		revision = strconv.FormatUint(uint64(n), 10)
	}
	writeJSON(w, struct {
		Metadata annals.StreamMetadata `json:"metadata"`
		Revision string                `json:"revision"`
	}{md, revision})
}
