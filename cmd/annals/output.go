package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"time"
	"unicode/utf8"

	"github.com/annals/annals"
)

// output writes JSON lines to stdout through a buffer: reads flush at the
// end, subscriptions after every message.
type output struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newOutput(w io.Writer) *output {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw) // Encode ends each value with '\n'
	enc.SetEscapeHTML(false)
	return &output{w: bw, enc: enc}
}

func (o *output) flush() error { return o.w.Flush() }

// eventLine is the JSON line of an event.
type eventLine struct {
	Position       annals.Position `json:"position"`
	Stream         string          `json:"stream"`
	Revision       annals.Revision `json:"revision"`
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	ContentType    string          `json:"contentType"`
	Recorded       string          `json:"recorded"`
	Data           json.RawMessage `json:"data,omitempty"`
	DataBase64     string          `json:"dataBase64,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	MetadataBase64 string          `json:"metadataBase64,omitempty"`
}

func (o *output) event(e *annals.Event) error {
	line := eventLine{
		Position:    e.Position,
		Stream:      e.Stream,
		Revision:    e.Revision,
		ID:          e.ID.String(),
		Type:        e.Type,
		ContentType: e.ContentType,
		Recorded:    e.Recorded.UTC().Format(time.RFC3339Nano),
	}
	line.Data, line.DataBase64 = payload(e.Data, isJSON(e.ContentType))
	// Metadata has no content type of its own; by convention it is JSON.
	line.Metadata, line.MetadataBase64 = payload(e.Metadata, true)
	return o.enc.Encode(&line)
}

// payload returns b as raw JSON if it may be and is valid JSON, else as
// base64; nothing for an empty payload.
func payload(b []byte, mayBeJSON bool) (json.RawMessage, string) {
	if len(b) == 0 {
		return nil, ""
	}
	if mayBeJSON && utf8.Valid(b) && json.Valid(b) {
		return json.RawMessage(b), ""
	}
	return nil, base64.StdEncoding.EncodeToString(b)
}

// isJSON reports whether a content type is application/json (parameters
// such as charset allowed). The stores record an empty one as JSON.
func isJSON(contentType string) bool {
	if contentType == "" || contentType == annals.ContentTypeJSON {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == annals.ContentTypeJSON
}

// appendLine is the JSON line of an append's result.
type appendLine struct {
	Stream string `json:"stream"`
	// NextExpectedRevision is null when the stream has no events.
	NextExpectedRevision *annals.Revision `json:"nextExpectedRevision"`
	FirstPosition        annals.Position  `json:"firstPosition"`
	LastPosition         annals.Position  `json:"lastPosition"`
}

func (o *output) appendResult(stream string, res annals.AppendResult) error {
	line := appendLine{Stream: stream, FirstPosition: res.FirstPosition, LastPosition: res.LastPosition}
	if r, ok := res.NextExpected.Revision(); ok {
		line.NextExpectedRevision = &r
	}
	return o.enc.Encode(&line)
}

func (o *output) caughtUp(position annals.Position) error {
	return o.enc.Encode(struct {
		CaughtUp bool            `json:"caughtUp"`
		Position annals.Position `json:"position"`
	}{true, position})
}

func (o *output) checkpoint(position annals.Position) error {
	return o.enc.Encode(struct {
		Checkpoint annals.Position `json:"checkpoint"`
	}{position})
}
