package embedded

import "github.com/annals/annals/internal/core"

// headCache holds the stream heads the writer checks expectations against.
// It is bounded: two generations of at most half the capacity each; when the
// young one fills, the old one is dropped and the young one ages. A hit in
// the old generation is promoted. A miss costs the writer one read of the
// head record. Only the writer goroutine touches it.
type headCache struct {
	capHalf    int
	young, old map[string]core.StreamState
}

func newHeadCache(capacity int) *headCache {
	half := max(capacity/2, 1)
	return &headCache{capHalf: half, young: make(map[string]core.StreamState), old: map[string]core.StreamState{}}
}

func (c *headCache) get(stream string) (core.StreamState, bool) {
	if s, ok := c.young[stream]; ok {
		return s, true
	}
	if s, ok := c.old[stream]; ok {
		c.put(stream, s)
		return s, true
	}
	return core.StreamState{}, false
}

func (c *headCache) put(stream string, s core.StreamState) {
	if _, ok := c.young[stream]; !ok && len(c.young) >= c.capHalf {
		c.old = c.young
		c.young = make(map[string]core.StreamState, c.capHalf)
	}
	c.young[stream] = s
}

func (c *headCache) len() int { return len(c.young) + len(c.old) }
