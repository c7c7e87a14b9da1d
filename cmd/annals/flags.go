package main

import (
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/annals/annals"
)

// usageError is a mistake in the command line, found before the store was
// touched: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// parseExpected parses --expected: any, no-stream, exists or a revision.
func parseExpected(s string) (annals.ExpectedRevision, error) {
	switch s {
	case "any":
		return annals.Any, nil
	case "no-stream":
		return annals.NoStream, nil
	case "exists":
		return annals.StreamExists, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return annals.Any, usagef("--expected %q: want any, no-stream, exists, or the revision of the stream's last event (0, 1, ...)", s)
	}
	return annals.Exact(annals.Revision(n)), nil
}

// expectedName writes an expected revision the way --expected takes it.
func expectedName(e annals.ExpectedRevision) string {
	switch {
	case e.IsNoStream():
		return "no-stream"
	case e.IsStreamExists():
		return "exists"
	case e.IsAny():
		return "any"
	}
	r, _ := e.Revision()
	return strconv.FormatUint(uint64(r), 10)
}

// parseFrom parses --from: start, end or a number (a revision of a stream,
// or a position of the global log). Empty takes the direction's default:
// start forwards, end backwards.
func parseFrom(s string, backwards bool) (uint64, error) {
	switch s {
	case "":
		if backwards {
			return annals.End, nil
		}
		return annals.Start, nil
	case "start":
		return annals.Start, nil
	case "end":
		return annals.End, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, usagef("--from %q: want start, end or a number", s)
	}
	return n, nil
}

// prefixes is a repeatable flag.
type prefixes []string

func (p *prefixes) String() string { return strings.Join(*p, ",") }

func (p *prefixes) Set(s string) error {
	if s == "" {
		return fmt.Errorf("empty prefix (it would match everything)")
	}
	*p = append(*p, s)
	return nil
}

// filterFlags are the $all filters of read-all and subscribe.
type filterFlags struct {
	fs                       *flag.FlagSet
	streamPrefix, typePrefix prefixes
	streamRegex, typeRegex   string
	category                 string
	excludeSystem            bool
	// alsoExcludeSystem: --exclude-system came with another filter.
	alsoExcludeSystem bool
}

// skip reports whether the command leaves e out: a system event when
// --exclude-system came with another filter.
func (f *filterFlags) skip(e *annals.Event) bool {
	return f.alsoExcludeSystem && strings.HasPrefix(e.Type, "$")
}

var filterNames = []string{"stream-prefix", "type-prefix", "stream-regex", "type-regex", "category", "exclude-system"}

func defineFilters(fs *flag.FlagSet) *filterFlags {
	f := &filterFlags{fs: fs}
	fs.Var(&f.streamPrefix, "stream-prefix", "only streams whose name starts with `prefix` (repeat the flag for several)")
	fs.Var(&f.typePrefix, "type-prefix", "only events whose type starts with `prefix` (repeat the flag for several)")
	fs.StringVar(&f.streamRegex, "stream-regex", "", "only streams whose name matches the Go `regexp`")
	fs.StringVar(&f.typeRegex, "type-regex", "", "only events whose type matches the Go `regexp`")
	fs.StringVar(&f.category, "category", "", "only the streams of a `category`: order is order-1, order-2, ... (the name up to the first -)")
	fs.BoolVar(&f.excludeSystem, "exclude-system", false, "leave out system events (types starting with $)")
	return f
}

// given lists the filter flags on the command line.
func (f *filterFlags) given() []string {
	var names []string
	for _, n := range filterNames {
		if isSet(f.fs, n) && (n != "exclude-system" || f.excludeSystem) {
			names = append(names, "--"+n)
		}
	}
	return names
}

// build returns the filter the flags ask for, nil for none.
// --exclude-system goes with one other filter: that one goes to the store,
// and alsoExcludeSystem tells the command to leave out system events
// itself (a stream filter such as --category already leaves out the
// system streams, but a user stream may hold an event of a $ type).
func (f *filterFlags) build() (*annals.Filter, error) {
	given := f.given()
	if len(given) == 2 && f.excludeSystem {
		f.alsoExcludeSystem = true
		given = given[:1] // filterNames lists exclude-system last
	}
	if len(given) > 1 {
		return nil, usagef("at most one filter, got %s", strings.Join(given, " and "))
	}
	filter, err := f.filter()
	if err != nil {
		return nil, err
	}
	if err := filter.Validate(); err != nil {
		return nil, usagef("%s", strings.TrimPrefix(err.Error(), "annals: "))
	}
	return filter, nil
}

func (f *filterFlags) filter() (*annals.Filter, error) {
	regex := func(flagName, expr string) (*regexp.Regexp, error) {
		if expr == "" {
			return nil, usagef("--%s needs an expression", flagName)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, usagef("--%s: %v", flagName, err)
		}
		return re, nil
	}
	switch {
	case len(f.streamPrefix) > 0:
		return annals.StreamPrefixFilter(f.streamPrefix...), nil
	case len(f.typePrefix) > 0:
		return annals.EventTypePrefixFilter(f.typePrefix...), nil
	case isSet(f.fs, "stream-regex"):
		re, err := regex("stream-regex", f.streamRegex)
		if err != nil {
			return nil, err
		}
		return annals.StreamRegexFilter(re), nil
	case isSet(f.fs, "type-regex"):
		re, err := regex("type-regex", f.typeRegex)
		if err != nil {
			return nil, err
		}
		return annals.EventTypeRegexFilter(re), nil
	case isSet(f.fs, "category"):
		if f.category == "" {
			return nil, usagef("--category needs a category name")
		}
		return annals.CategoryFilter(f.category), nil
	case f.excludeSystem:
		return annals.ExcludeSystemEventsFilter(), nil
	}
	return nil, nil // no filter
}
