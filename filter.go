package annals

import (
	"regexp"
	"strings"
)

// FilterOn says what a Filter looks at.
type FilterOn uint8

const (
	FilterStreamName FilterOn = iota + 1
	FilterEventType
)

// Filter selects events of the global log on the server side, by stream name
// or event type: a prefix list, a regular expression, or a category. Build
// one with the constructors; an event matches if any prefix matches, or the
// expression does.
type Filter struct {
	On       FilterOn
	Prefixes []string
	Regex    *regexp.Regexp
	// category, when set, matches streams whose Category is exactly it.
	category string
}

// MaxFilterPrefixes bounds the prefixes of one filter.
const MaxFilterPrefixes = 256

// StreamPrefixFilter matches events whose stream name starts with any prefix.
func StreamPrefixFilter(prefixes ...string) *Filter {
	return &Filter{On: FilterStreamName, Prefixes: prefixes}
}

// EventTypePrefixFilter matches events whose type starts with any prefix.
func EventTypePrefixFilter(prefixes ...string) *Filter {
	return &Filter{On: FilterEventType, Prefixes: prefixes}
}

// StreamRegexFilter matches events whose stream name matches re.
func StreamRegexFilter(re *regexp.Regexp) *Filter {
	return &Filter{On: FilterStreamName, Regex: re}
}

// EventTypeRegexFilter matches events whose type matches re.
func EventTypeRegexFilter(re *regexp.Regexp) *Filter {
	return &Filter{On: FilterEventType, Regex: re}
}

// CategoryFilter matches the events of every stream in category (see
// Category): "order" matches "order-1" and "order-2-x", not "orders-1".
func CategoryFilter(category string) *Filter {
	return &Filter{On: FilterStreamName, category: category}
}

// Category returns the category of a filter made by CategoryFilter.
func (f *Filter) Category() (string, bool) {
	if f == nil || f.category == "" {
		return "", false
	}
	return f.category, true
}

// ExcludeSystemEventsFilter matches events whose type does not start with
// '$' (user events only).
func ExcludeSystemEventsFilter() *Filter {
	return &Filter{On: FilterEventType, Regex: regexp.MustCompile(`^[^$]`)}
}

// Expression returns the filter as prefixes or a regular expression (one
// of them), as a wire protocol carries it. A category is the prefix
// "category-".
func (f *Filter) Expression() (prefixes []string, regex *regexp.Regexp) {
	if f.category != "" {
		return []string{f.category + "-"}, nil
	}
	return f.Prefixes, f.Regex
}

// Validate reports a filter that can match nothing sensible.
func (f *Filter) Validate() error {
	if f == nil {
		return nil
	}
	if f.On != FilterStreamName && f.On != FilterEventType {
		return invalid("filter", "must filter on stream name or event type")
	}
	n := 0
	if len(f.Prefixes) > 0 {
		n++
	}
	if f.Regex != nil {
		n++
	}
	if f.category != "" {
		n++
	}
	if n != 1 {
		return invalid("filter", "needs exactly one of prefixes, a regular expression or a category")
	}
	if len(f.Prefixes) > MaxFilterPrefixes {
		return invalid("filter", "%d prefixes, at most %d", len(f.Prefixes), MaxFilterPrefixes)
	}
	return nil
}

// Match reports whether e passes the filter. A nil filter matches all.
func (f *Filter) Match(e *Event) bool {
	if f == nil {
		return true
	}
	s := e.Stream
	if f.On == FilterEventType {
		s = e.Type
	}
	switch {
	case f.category != "":
		return Category(s) == f.category && len(s) > len(f.category)
	case f.Regex != nil:
		return f.Regex.MatchString(s)
	}
	for _, p := range f.Prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
