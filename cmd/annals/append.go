package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

func setupAppend(fs *flag.FlagSet) runFunc {
	stream := fs.String("stream", "", "the `name` of the stream to append to (required)")
	expected := fs.String("expected", "any", "the state the stream must be in, else nothing is written; N is the revision of its last event")
	typ := fs.String("type", "", "the event `type` (required without --stdin)")
	id := fs.String("id", "", "the event id, a `UUID`, for idempotent retries (default: a new time-ordered one, UUID version 7)")
	data := fs.String("data", "{}", "the event data, `JSON`")
	metadata := fs.String("metadata", "", "the event metadata, `JSON` (default: none)")
	stdin := fs.Bool("stdin", false, "read the events from stdin, one JSON object a line, and append them all atomically")

	return func(ctx context.Context, e *env) error {
		if *stream == "" {
			return usagef("--stream is required")
		}
		exp, err := parseExpected(*expected)
		if err != nil {
			return err
		}
		var events []annals.EventData
		if *stdin {
			for _, name := range []string{"type", "id", "data", "metadata"} {
				if isSet(fs, name) {
					return usagef("--%s does not go with --stdin: put it in the JSON lines", name)
				}
			}
			if events, err = readEvents(e.stdin); err != nil {
				return err
			}
		} else {
			ev, err := eventFromFlags(*typ, *id, *data, *metadata)
			if err != nil {
				return err
			}
			events = []annals.EventData{ev}
		}
		return withStore(ctx, e, true, func(s annals.Store) error {
			res, err := s.Append(ctx, *stream, exp, events...)
			if err != nil {
				return err
			}
			return e.out.appendResult(*stream, res)
		})
	}
}

func eventFromFlags(typ, id, data, metadata string) (annals.EventData, error) {
	if typ == "" {
		return annals.EventData{}, usagef("--type is required (or --stdin)")
	}
	ev := annals.EventData{Type: typ, ContentType: annals.ContentTypeJSON, Data: []byte(data)}
	if err := checkJSON(ev.Data); err != nil {
		return ev, usagef("--data is not valid JSON: %v", err)
	}
	if metadata != "" {
		ev.Metadata = []byte(metadata)
		if err := checkJSON(ev.Metadata); err != nil {
			return ev, usagef("--metadata is not valid JSON: %v", err)
		}
	}
	if id != "" {
		var err error
		if ev.ID, err = uuid.Parse(id); err != nil {
			return ev, usagef("--id %q is not a UUID", id)
		}
	}
	return ev, nil
}

func checkJSON(b []byte) error {
	var raw json.RawMessage
	return json.Unmarshal(b, &raw)
}

// inputLine is one event on stdin.
type inputLine struct {
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata json.RawMessage `json:"metadata"`
	ID       string          `json:"id"`
}

// readEvents reads the events of append --stdin, one JSON object a line
// (blank lines skipped), and checks them all before anything is written.
// It reads at most stdinMaxBytes and annals.DefaultMaxAppendEvents
// events: one append can hold no more, so more input is refused before it
// fills memory.
func readEvents(r io.Reader) ([]annals.EventData, error) {
	var events []annals.EventData
	limited := &io.LimitedReader{R: r, N: stdinMaxBytes + 1}
	br := bufio.NewReader(limited)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		if text := bytes.TrimSpace(line); len(text) > 0 {
			ev, perr := parseLine(text)
			if perr != nil {
				return nil, usagef("stdin line %d: %v", n, perr)
			}
			events = append(events, ev)
			if len(events) > annals.DefaultMaxAppendEvents {
				return nil, usagef("stdin: more than %d events; one append holds at most that many", annals.DefaultMaxAppendEvents)
			}
		}
		if limited.N <= 0 {
			return nil, usagef("stdin: more than %d bytes; one append holds at most %d bytes of events", stdinMaxBytes, annals.DefaultMaxAppendSizeBytes)
		}
		if err != nil { // io.EOF
			break
		}
	}
	if len(events) == 0 {
		return nil, usagef(`--stdin: no events on stdin (want one JSON object a line: {"type":"T","data":{...}})`)
	}
	return events, nil
}

// stdinMaxBytes bounds what append --stdin reads: an append's size limit,
// with room for the JSON around the events.
const stdinMaxBytes = 2 * annals.DefaultMaxAppendSizeBytes

const lineFormat = `{"type":"T","data":...,"metadata":...,"id":"UUID"}`

func parseLine(text []byte) (annals.EventData, error) {
	if text[0] != '{' {
		return annals.EventData{}, fmt.Errorf("not a JSON object; want %s", lineFormat)
	}
	var in inputLine
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return annals.EventData{}, fmt.Errorf("%q is a JSON %s, want a string", typeErr.Field, typeErr.Value)
		}
		return annals.EventData{}, fmt.Errorf("%v; want %s", strings.TrimPrefix(err.Error(), "json: "), lineFormat)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return annals.EventData{}, errors.New("more than one JSON value on the line")
	}
	if in.Type == "" {
		return annals.EventData{}, errors.New(`"type" is missing or empty`)
	}
	ev := annals.EventData{Type: in.Type, ContentType: annals.ContentTypeJSON, Data: in.Data, Metadata: in.Metadata}
	if ev.Data == nil {
		ev.Data = []byte("{}")
	}
	if in.ID != "" {
		var err error
		if ev.ID, err = uuid.Parse(in.ID); err != nil {
			return ev, fmt.Errorf("id %q is not a UUID", in.ID)
		}
	}
	return ev, nil
}
