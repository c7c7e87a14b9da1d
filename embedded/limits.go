package embedded

import "github.com/annals/annals"

var _ annals.LimitsReporter = (*Store)(nil)

// Limits returns the limits the store enforces: Options.Limits with the
// defaults filled in.
func (s *Store) Limits() annals.Limits { return s.opts.Limits }
