package server

import (
	"math"
	"net"
	"sync"
	"time"
)

// Failed authentication is throttled per remote address, so a password
// cannot be guessed at the rate the server answers: each address has a
// bucket of AuthFailureBurst tries that refills at AuthFailuresPerSecond;
// an address whose bucket is empty is refused without its password being
// checked, until a try has refilled. Successful calls cost nothing.
const (
	// AuthFailureBurst is how many failed authentications one address may
	// make in a row before it is throttled.
	AuthFailureBurst = 10
	// AuthFailuresPerSecond is the sustained rate of failed
	// authentications allowed per address.
	AuthFailuresPerSecond = 1.0
	// authThrottleAddresses bounds the addresses remembered; past it, the
	// addresses not remembered share one bucket (so a flood from many
	// addresses is throttled as one).
	authThrottleAddresses = 4096
)

// authClock is the throttle's clock; tests stop it.
var authClock = time.Now

// authThrottle is the table of buckets, by IP address.
type authThrottle struct {
	mu       sync.Mutex
	buckets  map[string]*authBucket
	overflow authBucket
}

type authBucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

func newAuthThrottle() *authThrottle {
	return &authThrottle{buckets: make(map[string]*authBucket)}
}

// refill brings b's tokens up to now.
func (b *authBucket) refill(now time.Time) {
	if b.at.IsZero() {
		b.tokens = AuthFailureBurst
	} else {
		b.tokens = math.Min(AuthFailureBurst, b.tokens+now.Sub(b.at).Seconds()*AuthFailuresPerSecond)
	}
	b.at = now
}

// wait reports how long addr must wait before its credentials are checked
// again; zero if they may be checked now.
func (t *authThrottle) wait(addr net.Addr) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.lookup(addr, false)
	if b == nil {
		return 0
	}
	b.refill(authClock())
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / AuthFailuresPerSecond * float64(time.Second))
}

// failed takes a try from addr's bucket.
func (t *authThrottle) failed(addr net.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.lookup(addr, true)
	b.refill(authClock())
	b.tokens = math.Max(0, b.tokens-1)
}

// lookup finds addr's bucket; with create, it makes one, or gives the
// shared bucket when the table is full even after forgetting the addresses
// whose buckets have refilled.
func (t *authThrottle) lookup(addr net.Addr, create bool) *authBucket {
	ip := addrIP(addr)
	if b, ok := t.buckets[ip]; ok {
		return b
	}
	if len(t.buckets) >= authThrottleAddresses {
		now := authClock()
		for k, b := range t.buckets {
			if b.refill(now); b.tokens >= AuthFailureBurst {
				delete(t.buckets, k)
			}
		}
	}
	if len(t.buckets) >= authThrottleAddresses {
		return &t.overflow
	}
	if !create {
		return nil
	}
	b := &authBucket{}
	t.buckets[ip] = b
	return b
}

// addrIP is the IP of a remote address, the whole address if it has none.
func addrIP(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}
