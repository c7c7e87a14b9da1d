package alert

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAlertJSON pins the documented body: its fields' names and order, At
// in UTC, figures left out unless the kind sets them (a zero one kept).
func TestAlertJSON(t *testing.T) {
	a := Alert{Kind: DiskNearlyFull, Subject: DiskSubject, Message: "the disk is nearly full",
		At:      time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600)),
		Details: Details{FreeBytes: new(int64(0)), UsedBytes: new(int64(7)), ThresholdBytes: new(int64(1 << 30))}}
	got, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"kind":"disk_nearly_full","subject":"store","message":"the disk is nearly full",` +
		`"at":"2026-03-01T12:00:00Z","details":{"freeBytes":0,"usedBytes":7,"thresholdBytes":1073741824}}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var back Alert
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.Kind != a.Kind || !back.At.Equal(a.At) || *back.Details.FreeBytes != 0 || back.Details.Lag != nil {
		t.Fatalf("round trip: %+v", back)
	}
}
