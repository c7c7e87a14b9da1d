package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Notifier. Zero (or negative) fields take the
// defaults; fields beyond the bounds in limits.go are clamped.
type Options struct {
	// URLs are the webhooks, each sent every alert. None: alerts are
	// only logged.
	URLs []string
	// QueueLength is how many alerts wait for each webhook
	// (DefaultQueueLength, at most MaxQueueLength).
	QueueLength int
	// MaxAttempts is how many POSTs an alert gets at most
	// (DefaultMaxAttempts, at most MaxAttemptsLimit).
	MaxAttempts int
	// InitialBackoff is the pause before the second attempt, doubled for
	// each later one up to MaxBackoff (DefaultInitialBackoff,
	// DefaultMaxBackoff).
	InitialBackoff, MaxBackoff time.Duration
	// Timeout bounds each POST (DefaultTimeout).
	Timeout time.Duration
	// MaxDeliveries is how many finished deliveries Deliveries keeps
	// (DefaultMaxDeliveries, at most MaxDeliveriesLimit).
	MaxDeliveries int
	// Client posts the alerts. Nil: a client that follows no redirects
	// (a redirected POST would turn into a GET without its body).
	Client *http.Client
	// Logger gets the alerts and the failed deliveries (nil:
	// slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.QueueLength = min(orDefault(o.QueueLength, DefaultQueueLength), MaxQueueLength)
	o.MaxAttempts = min(orDefault(o.MaxAttempts, DefaultMaxAttempts), MaxAttemptsLimit)
	o.MaxDeliveries = min(orDefault(o.MaxDeliveries, DefaultMaxDeliveries), MaxDeliveriesLimit)
	o.MaxBackoff = orDefault(o.MaxBackoff, DefaultMaxBackoff)
	o.InitialBackoff = min(orDefault(o.InitialBackoff, DefaultInitialBackoff), o.MaxBackoff)
	o.Timeout = orDefault(o.Timeout, DefaultTimeout)
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Delivery is the outcome of one alert sent to one webhook.
type Delivery struct {
	Alert Alert
	// URL is the webhook's scheme and host only: webhook URLs often
	// carry a secret in their path or query.
	URL string
	// Attempts is how many POSTs were made; Status the last answer's
	// HTTP status (0: none, as after a network error); Err why the last
	// attempt failed (empty if OK).
	Attempts int
	Status   int
	Err      string
	// At is when the delivery ended.
	At time.Time
	OK bool
}

// Notifier sends alerts to webhooks in the background: each webhook has
// its own queue and worker, so that a slow one delays only itself.
type Notifier struct {
	opts      Options
	log       *slog.Logger
	hooks     []*hook
	ctx       context.Context // cancelled by Close: stops the POSTs and pauses
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	closeWait time.Duration
	dropped   atomic.Uint64

	mu     sync.RWMutex // held for writing only to set closed
	closed bool

	histMu sync.Mutex
	hist   []Delivery // a ring of opts.MaxDeliveries; next is the oldest once full
	next   int
}

type hook struct {
	url   string
	shown string // what logs and Deliveries show of url
	queue chan Alert
}

// New checks the URLs (http or https, with a host) and starts one worker
// per webhook. Close stops them.
func New(opts Options) (*Notifier, error) {
	opts = opts.withDefaults()
	hooks := make([]*hook, 0, len(opts.URLs))
	for i, raw := range opts.URLs {
		shown, err := checkURL(raw)
		if err != nil {
			// The URL is not quoted: it may hold a secret.
			return nil, fmt.Errorf("alert: webhook URL #%d: %w", i+1, err)
		}
		hooks = append(hooks, &hook{url: raw, shown: shown, queue: make(chan Alert, opts.QueueLength)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{opts: opts, log: opts.Logger, hooks: hooks, ctx: ctx, cancel: cancel,
		closeWait: CloseTimeout, hist: make([]Delivery, 0, opts.MaxDeliveries)}
	for _, h := range hooks {
		n.workers.Add(1)
		go n.run(h)
	}
	return n, nil
}

// checkURL returns what may be shown of a valid webhook URL.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("the scheme must be http or https")
	}
	if u.Hostname() == "" {
		return "", errors.New("no host")
	}
	shown := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		shown += "/…"
	}
	return shown, nil
}

// Notify logs a and queues it for every webhook. It never blocks: a
// webhook whose queue is full, or a closed Notifier, drops it (counted by
// Dropped). A zero a.At is set to now.
func (n *Notifier) Notify(a Alert) {
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	n.log.Warn("alert", "kind", a.Kind, "subject", a.Subject, "message", a.Message)
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.dropped.Add(uint64(len(n.hooks)))
		n.log.Warn("alert not sent: the notifier is closed", "kind", a.Kind, "subject", a.Subject)
		return
	}
	for _, h := range n.hooks {
		select {
		case h.queue <- a:
		default:
			n.dropped.Add(1)
			n.log.Warn("alert dropped: the webhook's queue is full", "url", h.shown,
				"queueLength", cap(h.queue), "kind", a.Kind, "subject", a.Subject)
		}
	}
}

// Dropped counts the alerts not sent to a webhook: its queue was full,
// or the Notifier was closed before their turn.
func (n *Notifier) Dropped() uint64 { return n.dropped.Load() }

// Deliveries returns the last Options.MaxDeliveries finished deliveries,
// newest first.
func (n *Notifier) Deliveries() []Delivery {
	n.histMu.Lock()
	defer n.histMu.Unlock()
	out := make([]Delivery, 0, len(n.hist))
	out = append(out, n.hist[n.next:]...)
	out = append(out, n.hist[:n.next]...)
	slices.Reverse(out)
	return out
}

func (n *Notifier) record(d Delivery) {
	n.histMu.Lock()
	defer n.histMu.Unlock()
	if len(n.hist) < cap(n.hist) {
		n.hist = append(n.hist, d)
		return
	}
	n.hist[n.next] = d
	n.next = (n.next + 1) % len(n.hist)
}

// Close stops the workers, cancelling the POSTs under way, and waits for
// them at most CloseTimeout. Alerts still queued are dropped and logged.
// Later calls do nothing.
func (n *Notifier) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	done := make(chan struct{})
	go func() {
		n.workers.Wait()
		close(done)
	}()
	wait := time.NewTimer(n.closeWait)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
		n.log.Warn("alert: webhook workers still busy when closing; not waiting for them", "waited", n.closeWait)
	}
	for _, h := range n.hooks {
		if k := drain(h.queue); k > 0 {
			n.dropped.Add(uint64(k))
			n.log.Warn("alerts dropped: the notifier closed before they were sent", "url", h.shown, "alerts", k)
		}
	}
}

func drain(queue chan Alert) int {
	for k := 0; ; k++ {
		select {
		case <-queue:
		default:
			return k
		}
	}
}
