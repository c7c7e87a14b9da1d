package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/persistent"
)

// groupJSON is a persistent subscription group as the console shows it.
type groupJSON struct {
	Stream      string         `json:"stream"`
	Group       string         `json:"group"`
	Filter      string         `json:"filter,omitempty"`
	Status      string         `json:"status"`
	Settings    map[string]any `json:"settings"`
	Consumers   []consumerJSON `json:"consumers"`
	Delivered   uint64         `json:"delivered"`
	Checkpoint  *uint64        `json:"checkpoint"`
	LastKnown   *uint64        `json:"lastKnown"`
	Buffered    int            `json:"buffered"`
	Retrying    int            `json:"retrying"`
	InFlight    int            `json:"inFlight"`
	Parked      int64          `json:"parked"`
	ReadError   string         `json:"readError,omitempty"`
	ParkedLinks string         `json:"parkedStream"`
}

type consumerJSON struct {
	Name        string    `json:"name"`
	InFlight    int       `json:"inFlight"`
	Delivered   uint64    `json:"delivered"`
	ConnectedAt time.Time `json:"connectedAt"`
}

func groupView(g persistent.GroupInfo) groupJSON {
	out := groupJSON{
		Stream: g.Stream, Group: g.Group, Status: g.Status, Settings: settingsView(g.Settings), Consumers: []consumerJSON{},
		Delivered: g.Delivered, Buffered: g.Buffered, Retrying: g.Retrying, InFlight: g.InFlight, Parked: g.Parked,
		ParkedLinks: persistent.ParkedStream(g.Stream, g.Group),
	}
	if g.Filter != nil {
		prefixes, re := g.Filter.Expression()
		if re != nil {
			out.Filter = "regex " + re.String()
		} else {
			out.Filter = "prefixes " + strings.Join(prefixes, ", ")
		}
	}
	if g.HasCheckpoint {
		out.Checkpoint = &g.Checkpoint
	}
	if g.HasLastKnown {
		out.LastKnown = &g.LastKnown
	}
	if g.ReadError != nil {
		out.ReadError = g.ReadError.Error()
	}
	for _, c := range g.Connections {
		out.Consumers = append(out.Consumers, consumerJSON{c.Name, c.InFlight, c.Delivered, c.ConnectedAt})
	}
	return out
}

// settingsView is s as the page edits it: startFrom as text ("start",
// "end" or a number: a browser's numbers cannot hold annals.End), without
// the manager's own fromEnd.
func settingsView(s persistent.Settings) map[string]any {
	b, _ := json.Marshal(s)
	var m map[string]any
	json.Unmarshal(b, &m)
	delete(m, "fromEnd")
	switch {
	case s.FromEnd || s.StartFrom == annals.End:
		m["startFrom"] = "end"
	case s.StartFrom == 0:
		m["startFrom"] = "start"
	default:
		m["startFrom"] = strconv.FormatUint(s.StartFrom, 10)
	}
	return m
}

// readSettings sets into s the settings of raw, whose startFrom is as
// settingsView writes it; unknown fields are refused.
func readSettings(raw json.RawMessage, s *persistent.Settings) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	if from, ok := fields["startFrom"]; ok {
		var text string
		if json.Unmarshal(from, &text) == nil {
			switch text {
			case "start":
				s.StartFrom = 0
			case "end":
				s.StartFrom = annals.End
			default:
				n, err := strconv.ParseUint(text, 10, 64)
				if err != nil {
					return errors.New(`startFrom: want "start", "end" or a revision or position`)
				}
				s.StartFrom = n
			}
			delete(fields, "startFrom")
		}
	}
	rest, _ := json.Marshal(fields)
	dec := json.NewDecoder(strings.NewReader(string(rest)))
	dec.DisallowUnknownFields()
	return dec.Decode(s)
}

// groups is the manager, or an answer that there is none.
func (c *console) groups(w http.ResponseWriter) (*persistent.Manager, bool) {
	if c.opts.Groups == nil {
		writeError(w, http.StatusNotImplemented, "persistent subscriptions are not served by this server")
		return nil, false
	}
	return c.opts.Groups, true
}

func (c *console) serveGroups(w http.ResponseWriter, r *http.Request) {
	m, ok := c.groups(w)
	if !ok {
		return
	}
	infos, err := m.List("")
	if err != nil {
		c.writeGroupError(w, err)
		return
	}
	out := make([]groupJSON, len(infos))
	for i, g := range infos {
		out[i] = groupView(g)
	}
	writeJSON(w, struct {
		Groups   []groupJSON    `json:"groups"`
		Defaults map[string]any `json:"defaults"`
	}{out, settingsView(persistent.DefaultSettings())})
}

// groupRequest is the body of a create or an update: the settings are
// DefaultSettings with what the body sets.
type groupRequest struct {
	Stream   string          `json:"stream"`
	Group    string          `json:"group"`
	Settings json.RawMessage `json:"settings"`
}

func (c *console) readGroupRequest(w http.ResponseWriter, r *http.Request) (persistent.Config, bool) {
	var req groupRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be {\"stream\":…,\"group\":…,\"settings\":{…}}: "+err.Error())
		return persistent.Config{}, false
	}
	cfg := persistent.Config{Stream: req.Stream, Group: req.Group, Settings: persistent.DefaultSettings()}
	if len(req.Settings) > 0 {
		if err := readSettings(req.Settings, &cfg.Settings); err != nil {
			writeError(w, http.StatusBadRequest, "settings: "+err.Error())
			return persistent.Config{}, false
		}
	}
	if cfg.Stream == "" || cfg.Group == "" {
		writeError(w, http.StatusBadRequest, "stream and group are required (the stream may be $all)")
		return persistent.Config{}, false
	}
	return cfg, true
}

func (c *console) serveCreateGroup(w http.ResponseWriter, r *http.Request) {
	m, ok := c.groups(w)
	if !ok {
		return
	}
	if cfg, ok := c.readGroupRequest(w, r); ok {
		c.answerGroup(w, m.Create(r.Context(), cfg))
	}
}

func (c *console) serveUpdateGroup(w http.ResponseWriter, r *http.Request) {
	m, ok := c.groups(w)
	if !ok {
		return
	}
	if cfg, ok := c.readGroupRequest(w, r); ok {
		c.answerGroup(w, m.Update(r.Context(), cfg))
	}
}

func (c *console) serveDeleteGroup(w http.ResponseWriter, r *http.Request) {
	m, ok := c.groups(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	c.answerGroup(w, m.Delete(r.Context(), q.Get("stream"), q.Get("group")))
}

func (c *console) serveReplayParked(w http.ResponseWriter, r *http.Request) {
	m, ok := c.groups(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	c.answerGroup(w, m.ReplayParked(r.Context(), q.Get("stream"), q.Get("group"), 0))
}

// serveGroupParked lists a page of a group's parked events: the links of
// its parked stream, each with the event it points to.
func (c *console) serveGroupParked(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("stream") == "" || q.Get("group") == "" {
		writeError(w, http.StatusBadRequest, "stream and group are required")
		return
	}
	p, err := parseRead(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	parked := persistent.ParkedStream(q.Get("stream"), q.Get("group"))
	out := page{Events: []eventJSON{}}
	for link, err := range c.opts.Store.ReadStream(r.Context(), parked, annals.ReadStreamOptions{
		Direction: p.direction, From: annals.Revision(p.from), Limit: uint64(p.limit),
	}) {
		if errors.Is(err, annals.ErrStreamNotFound) {
			break // nothing parked yet
		}
		if err != nil {
			c.writeStoreError(w, err)
			return
		}
		out.Events = append(out.Events, c.resolve(r, link))
	}
	writeJSON(w, out)
}

// resolve is the event a link ("revision@stream") points to, or the link
// itself if that is gone.
func (c *console) resolve(r *http.Request, link annals.Event) eventJSON {
	revText, stream, ok := strings.Cut(string(link.Data), "@")
	rev, err := strconv.ParseUint(revText, 10, 64)
	if ok && err == nil {
		for e, err := range c.opts.Store.ReadStream(r.Context(), stream, annals.ReadStreamOptions{From: annals.Revision(rev), Limit: 1}) {
			if err == nil && uint64(e.Revision) == rev {
				return view(e, previewBytes)
			}
			break
		}
	}
	return view(link, previewBytes)
}

func (c *console) answerGroup(w http.ResponseWriter, err error) {
	if err != nil {
		c.writeGroupError(w, err)
		return
	}
	writeJSON(w, struct {
		OK bool `json:"ok"`
	}{true})
}

func (c *console) writeGroupError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, persistent.ErrGroupNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, persistent.ErrGroupExists), errors.Is(err, persistent.ErrTooManyGroups):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, persistent.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		c.writeStoreError(w, err)
	}
}
