package links

import (
	"context"
	"errors"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
)

// maxCachedWindows bounds the streams a resolver remembers the visible
// window of; past it the cache starts again.
const maxCachedWindows = 1024

// resolver resolves the links of one read. It remembers what it learnt of
// each stream pointed at: an index stream points at the same streams
// again and again.
type resolver struct {
	src     Source
	windows map[string]window
}

type window struct {
	live bool
	w    core.Window
}

func newResolver(src Source) *resolver {
	return &resolver{src: src, windows: map[string]window{}}
}

// entry resolves the link l of an index entry pointing at e: e itself, if
// a read of its stream would show it now, else the link alone.
func (r *resolver) entry(ctx context.Context, l, e *annals.Event) (annals.Event, error) {
	if e.Type == annals.EventTypeLink {
		return r.link(ctx, l)
	}
	w, err := r.window(ctx, e.Stream)
	if err != nil {
		return annals.Event{}, err
	}
	if !w.live || !w.w.Shows(e) {
		return *l, nil
	}
	out := *e
	link := *l
	out.Link = &link
	return out, nil
}

// link resolves a link event read from a stream: the event it points at,
// read as a read of its stream would show it, else the link alone (as
// KurrentDB answers a link whose event is deleted, truncated or expired).
func (r *resolver) link(ctx context.Context, l *annals.Event) (annals.Event, error) {
	stream, rev, ok := annals.ParseLink(l.Data)
	if !ok || annals.IsIndexStream(stream) {
		return *l, nil
	}
	for e, err := range r.src.ReadStream(ctx, stream, annals.ReadStreamOptions{From: rev, Limit: 1}) {
		if errors.Is(err, annals.ErrStreamNotFound) || errors.Is(err, annals.ErrStreamDeleted) || errors.Is(err, annals.ErrInvalidInput) {
			return *l, nil
		}
		if err != nil {
			return annals.Event{}, err
		}
		if e.Revision != rev {
			break
		}
		link := *l
		e.Link = &link
		return e, nil
	}
	return *l, nil
}

func (r *resolver) window(ctx context.Context, stream string) (window, error) {
	if w, ok := r.windows[stream]; ok {
		return w, nil
	}
	st, err := r.src.State(ctx, stream)
	if err != nil {
		return window{}, err
	}
	w := window{live: st.Live()}
	if w.live {
		md, err := r.src.Metadata(ctx, stream)
		if err != nil {
			return window{}, err
		}
		w.w = core.VisibleWindow(st, md, r.src.Now())
	}
	if len(r.windows) >= maxCachedWindows {
		clear(r.windows)
	}
	r.windows[stream] = w
	return w, nil
}
