package command

import (
	"math/rand/v2"
	"time"
)

// Retry limits. The defaults suit interactive commands: a handful of
// quick retries, then an answer the caller can show.
const (
	DefaultMaxAttempts = 10
	DefaultMinBackoff  = time.Millisecond
	DefaultMaxBackoff  = 100 * time.Millisecond
	// MaxAttemptsLimit and MaxBackoffLimit cap what Retry may ask for.
	MaxAttemptsLimit = 1000
	MaxBackoffLimit  = 10 * time.Second
)

// Retry says how often a command is decided again after a conflict, and
// how long to wait in between. Zero fields take the defaults.
type Retry struct {
	// MaxAttempts is the number of decisions (loads and appends) per
	// command, the first included; 1 means no retry. At most
	// MaxAttemptsLimit.
	MaxAttempts int
	// The wait before the n-th retry is drawn uniformly from [c/2, c],
	// c = min(MaxBackoff, MinBackoff·2ⁿ⁻¹): jitter spreads out writers
	// that collided, so they do not collide again in step.
	MinBackoff, MaxBackoff time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultMaxAttempts
	}
	r.MaxAttempts = min(r.MaxAttempts, MaxAttemptsLimit)
	if r.MinBackoff <= 0 {
		r.MinBackoff = DefaultMinBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	r.MaxBackoff = min(r.MaxBackoff, MaxBackoffLimit)
	r.MinBackoff = min(r.MinBackoff, r.MaxBackoff)
	return r
}

// backoff returns the wait before retry n (1 for the first retry).
func (r Retry) backoff(n int) time.Duration {
	c := r.MaxBackoff
	if shift := n - 1; shift < 30 {
		c = min(r.MaxBackoff, r.MinBackoff<<shift)
	}
	half := c / 2
	return half + rand.N(c-half+1)
}
