package main

import "testing"

// System streams and types are the administrator's: whoever opens the
// store's directory may write them, as a client of annals serve may.
func TestSystemStreamsLocally(t *testing.T) {
	c := newCLI(t)
	c.ok("", "append", "--stream", "$settings", "--type", "$T")
	checkEvents(t, c.ok("", "read", "--stream", "$settings"), "$settings@0#1")
	// A metastream takes only valid metadata.
	c.fails(1, []string{"$acl"}, "", "append", "--stream", "$$order-1", "--type", "$metadata", "--data", `{"$acl":{"$w":7}}`)
}
