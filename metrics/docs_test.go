package metrics_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/memory"
	"github.com/annals/annals/metrics"
	"google.golang.org/grpc/codes"
)

// TestSeriesDocumented: every annals_ series the package makes is listed
// in docs/metrics.md, and the Grafana dashboard uses only listed ones.
func TestSeriesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(annals_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}

	m := metrics.New()
	s := m.Store(headed{memory.New(memory.Options{})})
	ctx := context.Background()
	s.Append(ctx, "s", annals.Any, annals.EventData{Type: "T"})
	s.Delete(ctx, "s", annals.Any)
	m.ObserveGroupCommit(annals.GroupCommit{Writes: 1, Events: 1, Sync: time.Millisecond})
	m.ObserveCall("/m", codes.OK, true, time.Millisecond)
	m.WatchGroups(func() ([]metrics.Group, error) { return []metrics.Group{{Stream: "$all", Name: "g"}}, nil })
	m.WatchProjections(func(context.Context) ([]metrics.Projection, error) {
		return []metrics.Projection{{Name: "p", State: "running", LastErrorAt: time.Now()}}, nil
	})
	m.WatchDisk(func(context.Context) (metrics.Disk, error) { return metrics.Disk{UsedBytes: 1, FreeBytes: 1}, nil })
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]bool{}
	for _, f := range families {
		if name := f.GetName(); strings.HasPrefix(name, "annals_") {
			made[name] = true
			if !documented[name] {
				t.Errorf("%s is not in docs/metrics.md", name)
			}
		}
	}
	for name := range documented {
		if !made[name] {
			t.Errorf("docs/metrics.md lists %s, which is not made", name)
		}
	}

	dashboard, err := os.ReadFile("../docs/grafana/annals.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`annals_[a-z_]+`).FindAllString(string(dashboard), -1) {
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !documented[name] {
			t.Errorf("the dashboard uses %s, which docs/metrics.md does not list", m)
		}
	}
}

// headed gives a memory store a head, as the embedded and postgres
// stores have.
type headed struct{ *memory.Store }

func (headed) Position() annals.Position { return 1 }
