package embedded

import (
	"hash/maphash"

	"github.com/google/uuid"
)

// idFilter answers "certainly not recorded in this stream" for event ids,
// so that a new id — the common case: clients send a fresh id with every
// event, and ids the store generates are new too — costs the writer no
// engine read. Its keys are (stream, id) pairs, as the id index's are: ids
// are scoped to their stream. A lookup in pebble for a missing id spends
// most of its time searching the memtable's skiplist (~8–10 µs); a filter
// probe is a few cache lines.
//
// It is a scalable Bloom filter: a series of filters, each twice the
// capacity of the one before, so it grows with the store without being
// rebuilt. It lives in memory only: Open fills it from the id index, and
// only the writer goroutine touches it afterwards.
//
// Invariant: every (stream, id) in the id index (or in a group being
// written) has been added, so mayContain is false only for ids never
// recorded in that stream.
type idFilter struct {
	seed1, seed2 maphash.Seed
	filters      []*bloomFilter
}

const (
	idFilterFirstCapacity = 1 << 16
	idFilterBitsPerID     = 10 // about 1 % false positives per filter
	idFilterProbes        = 7
)

type bloomFilter struct {
	words    []uint64
	n, limit int
}

func newIDFilter() *idFilter {
	return &idFilter{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
}

// hashes hashes stream followed by id; the id's fixed length makes the
// concatenation unambiguous.
func (f *idFilter) hashes(stream string, id uuid.UUID) (h1, h2 uint64) {
	var h maphash.Hash
	h.SetSeed(f.seed1)
	h.WriteString(stream)
	h.Write(id[:])
	h1 = h.Sum64()
	h.SetSeed(f.seed2)
	h.WriteString(stream)
	h.Write(id[:])
	return h1, h.Sum64() | 1
}

func (f *idFilter) add(stream string, id uuid.UUID) {
	last := len(f.filters) - 1
	if last < 0 || f.filters[last].n >= f.filters[last].limit {
		limit := idFilterFirstCapacity << len(f.filters)
		f.filters = append(f.filters, &bloomFilter{words: make([]uint64, limit*idFilterBitsPerID/64), limit: limit})
		last++
	}
	b := f.filters[last]
	h1, h2 := f.hashes(stream, id)
	nbits := uint64(len(b.words) * 64)
	for i := range uint64(idFilterProbes) {
		bit := (h1 + i*h2) % nbits
		b.words[bit/64] |= 1 << (bit % 64)
	}
	b.n++
}

func (f *idFilter) mayContain(stream string, id uuid.UUID) bool {
	h1, h2 := f.hashes(stream, id)
	for _, b := range f.filters {
		nbits := uint64(len(b.words) * 64)
		hit := true
		for i := range uint64(idFilterProbes) {
			bit := (h1 + i*h2) % nbits
			if b.words[bit/64]&(1<<(bit%64)) == 0 {
				hit = false
				break
			}
		}
		if hit {
			return true
		}
	}
	return false
}

// sizeBytes is the filter's memory.
func (f *idFilter) sizeBytes() int {
	n := 0
	for _, b := range f.filters {
		n += len(b.words) * 8
	}
	return n
}
