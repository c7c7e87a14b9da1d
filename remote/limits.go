package remote

import "github.com/annals/annals"

var _ annals.LimitsReporter = (*Store)(nil)

// Limits returns the defaults, with system streams allowed. The server at
// the other end enforces its own limits, which its protocol does not
// report: this side checks only the names of its metadata calls
// (nameLimits), and lets the server decide what an append may write, $
// streams included (its credentials say who may).
func (s *Store) Limits() annals.Limits {
	l := nameLimits
	l.AllowSystemStreams = true
	return l
}
