package annals

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// StreamMetadata is what a stream's metastream ($$stream) holds, in
// KurrentDB's JSON form: {"$maxCount": n, "$maxAge": seconds, "$tb": r,
// "$cacheControl": seconds, "$acl": {...}, ...custom keys}. Zero fields are
// unset.
type StreamMetadata struct {
	// MaxCount keeps only the last MaxCount events visible to reads.
	MaxCount uint64
	// MaxAge hides events recorded longer ago than this. Whole seconds.
	MaxAge time.Duration
	// TruncateBefore hides events with a lower revision.
	TruncateBefore Revision
	// CacheControl is kept for clients; the store ignores it. Whole seconds.
	CacheControl time.Duration
	// ACL is kept as given; access control is the server's concern. A
	// write must carry KurrentDB's form (see Validate).
	ACL json.RawMessage
	// Custom holds the other top-level keys.
	Custom map[string]json.RawMessage
}

// TruncateBeforeDeleted is the $tb of a soft-deleted stream (KurrentDB's
// DeletedStream): every existing event is hidden.
const TruncateBeforeDeleted Revision = 1<<63 - 1

const (
	keyMaxCount     = "$maxCount"
	keyMaxAge       = "$maxAge"
	keyTB           = "$tb"
	keyCacheControl = "$cacheControl"
	keyACL          = "$acl"
)

// MarshalJSON writes KurrentDB's metadata form.
func (m StreamMetadata) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(m.Custom)+5)
	for k, v := range m.Custom {
		out[k] = v
	}
	if m.MaxCount > 0 {
		out[keyMaxCount] = m.MaxCount
	}
	if m.MaxAge > 0 {
		out[keyMaxAge] = int64(m.MaxAge / time.Second)
	}
	if m.TruncateBefore > 0 {
		out[keyTB] = m.TruncateBefore
	}
	if m.CacheControl > 0 {
		out[keyCacheControl] = int64(m.CacheControl / time.Second)
	}
	if len(m.ACL) > 0 {
		out[keyACL] = m.ACL
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads KurrentDB's metadata form. Known keys must hold
// non-negative integers.
func (m *StreamMetadata) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("stream metadata is not a JSON object: %w", err)
	}
	*m = StreamMetadata{}
	for k, v := range raw {
		var err error
		switch k {
		case keyMaxCount:
			m.MaxCount, err = metaUint(k, v)
		case keyMaxAge:
			var s uint64
			s, err = metaUint(k, v)
			m.MaxAge = time.Duration(min(s, uint64(maxDurationSeconds))) * time.Second
		case keyTB:
			var r uint64
			r, err = metaUint(k, v)
			m.TruncateBefore = Revision(r)
		case keyCacheControl:
			var s uint64
			s, err = metaUint(k, v)
			m.CacheControl = time.Duration(min(s, uint64(maxDurationSeconds))) * time.Second
		case keyACL:
			if string(v) != "null" {
				m.ACL = append(json.RawMessage(nil), v...)
			}
		default:
			if m.Custom == nil {
				m.Custom = make(map[string]json.RawMessage)
			}
			m.Custom[k] = append(json.RawMessage(nil), v...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

const maxDurationSeconds = int64(1<<63-1) / int64(time.Second)

func metaUint(key string, v json.RawMessage) (uint64, error) {
	if string(v) == "null" {
		return 0, nil
	}
	var n uint64
	if err := json.Unmarshal(v, &n); err != nil {
		return 0, fmt.Errorf("stream metadata %s must be a non-negative integer, got %s", key, v)
	}
	return n, nil
}

// ParseStreamMetadata parses the data of a $metadata event.
func ParseStreamMetadata(data []byte) (StreamMetadata, error) {
	var m StreamMetadata
	if len(bytes.TrimSpace(data)) == 0 {
		return m, nil
	}
	err := m.UnmarshalJSON(data)
	return m, err
}

// The keys of an ACL object: the roles that may read, write, delete, read
// the metadata of and write the metadata of a stream.
var aclKeys = map[string]bool{"$r": true, "$w": true, "$d": true, "$mr": true, "$mw": true}

// Validate reports metadata that KurrentDB, and the official clients after
// it, could not read back, as an *InvalidInputError. Writes call it; reads
// take what is stored as it is, so metadata recorded before the check
// stays readable. An ACL is a JSON object whose keys are among $r, $w, $d,
// $mr and $mw, each holding a role (a string) or an array of roles, as
// KurrentDB's StreamAcl reads it.
func (m StreamMetadata) Validate() error {
	if len(m.ACL) == 0 {
		return nil
	}
	var acl map[string]json.RawMessage
	if err := json.Unmarshal(m.ACL, &acl); err != nil || acl == nil {
		return invalid("metadata."+keyACL, "must be a JSON object of roles, got %.64s", m.ACL)
	}
	for k, v := range acl {
		if !aclKeys[k] {
			return invalid("metadata."+keyACL, "unknown key %q (the keys are $r, $w, $d, $mr and $mw)", k)
		}
		if !isRoles(v) {
			return invalid("metadata."+keyACL+"."+k, "must be a role (a string) or an array of roles, got %.64s", v)
		}
	}
	return nil
}

// isRoles reports a JSON string or array of strings (null is neither:
// json.Unmarshal would take it for an empty string).
func isRoles(v json.RawMessage) bool {
	isString := func(v json.RawMessage) bool {
		var s string
		v = bytes.TrimSpace(v)
		return len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil
	}
	if isString(v) {
		return true
	}
	var many []json.RawMessage
	if v = bytes.TrimSpace(v); len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &many) != nil {
		return false
	}
	for _, r := range many {
		if !isString(r) {
			return false
		}
	}
	return true
}
