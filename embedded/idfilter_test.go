package embedded

import (
	"testing"

	"github.com/google/uuid"
)

func TestIDFilter(t *testing.T) {
	f := newIDFilter()
	const n = 300_000 // several filters: the first holds 65,536
	added := make([]uuid.UUID, n)
	for i := range added {
		added[i] = uuid.New()
		f.add("order-1", added[i])
	}
	if len(f.filters) < 3 {
		t.Fatalf("%d filters after %d ids, want the filter to have grown", len(f.filters), n)
	}
	for _, id := range added {
		if !f.mayContain("order-1", id) {
			t.Fatalf("false negative for %s: the filter must never miss an added id", id)
		}
	}
	falsePositives := 0
	const probes = 100_000
	for range probes {
		if f.mayContain("order-1", uuid.New()) {
			falsePositives++
		}
	}
	// About 1 % per filter; a handful of filters.
	if rate := float64(falsePositives) / probes; rate > 0.05 {
		t.Fatalf("false positive rate %.3f", rate)
	}
	// The keys are (stream, id): a recorded id is new to another stream.
	otherStream := 0
	for _, id := range added[:probes] {
		if f.mayContain("order-2", id) {
			otherStream++
		}
	}
	if rate := float64(otherStream) / probes; rate > 0.05 {
		t.Fatalf("false positive rate %.3f for recorded ids in another stream", rate)
	}
	t.Logf("%d ids in %d filters, %d KiB, false positives %.2f %%", n, len(f.filters), f.sizeBytes()>>10, 100*float64(falsePositives)/probes)
}
