package command

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// metadataKey is the field of an event's metadata that records the id of
// the command that caused it.
const metadataKey = "commandId"

// eventIDSpace is the name space of the event ids derived from command ids.
var eventIDSpace = uuid.MustParse("6f1c9a52-3b0e-4d7f-9a51-7c2e8b4d0a13")

// eventID is the id of the i-th event of command id on stream. The same
// command gets the same ids at every attempt, so the store itself
// recognises a retried append of it.
func eventID(command uuid.UUID, stream string, i int) uuid.UUID {
	return uuid.NewSHA1(eventIDSpace, fmt.Appendf(nil, "%s\x00%s\x00%d", command, stream, i))
}

// withCommandID returns md (a JSON object, or empty) with the command id
// added.
func withCommandID(md []byte, id uuid.UUID) ([]byte, error) {
	if len(bytes.TrimSpace(md)) == 0 {
		return json.Marshal(map[string]uuid.UUID{metadataKey: id})
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(md, &m); err != nil {
		return nil, fmt.Errorf("command: the codec's metadata is not a JSON object: %w", err)
	}
	m[metadataKey], _ = json.Marshal(id)
	return json.Marshal(m)
}

// CommandID returns the id of the command recorded in an event's
// metadata, and whether there is one.
func CommandID(md []byte) (uuid.UUID, bool) {
	if !bytes.Contains(md, []byte(`"`+metadataKey+`"`)) {
		return uuid.UUID{}, false
	}
	var m struct {
		ID uuid.UUID `json:"commandId"`
	}
	if json.Unmarshal(md, &m) != nil || m.ID == (uuid.UUID{}) {
		return uuid.UUID{}, false
	}
	return m.ID, true
}
