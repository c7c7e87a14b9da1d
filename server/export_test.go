package server

import (
	"testing"
	"time"

	"google.golang.org/grpc/keepalive"
)

// SetAuthClock replaces the authentication throttle's clock for the test.
func SetAuthClock(t *testing.T, now func() time.Time) {
	authClock = now
	t.Cleanup(func() { authClock = time.Now })
}

// SetKeepalive makes opts' server ping a silent connection after every
// and close it if the ping is not answered within timeout.
func SetKeepalive(opts *Options, every, timeout time.Duration) {
	opts.keepalive = keepalive.ServerParameters{Time: every, Timeout: timeout}
}

// SetConnLimits replaces opts' HandshakeTimeout and
// MaxConnectionsPerAddress.
func SetConnLimits(opts *Options, handshake time.Duration, perAddress int) {
	opts.conns = connLimits{handshake: handshake, perAddress: perAddress}
}

// SetAppendLimits replaces opts' AppendRoomWait and AppendReceiveTimeout;
// onWait, if not nil, runs when an append begins to wait for room.
func SetAppendLimits(opts *Options, roomWait, receiveTimeout time.Duration, onWait func()) {
	opts.appends = appendLimits{roomWait: roomWait, receiveTimeout: receiveTimeout, onWait: onWait}
}

// AppendBytesHeld is how many bytes s's appends in progress hold.
func AppendBytesHeld(s *Server) int {
	s.budget.mu.Lock()
	defer s.budget.mu.Unlock()
	return s.budget.held
}
