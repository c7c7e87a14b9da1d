package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// userAgent tells receivers who posts.
const userAgent = "Annals-Alert/1"

// run sends h's alerts one at a time until Close.
func (n *Notifier) run(h *hook) {
	defer n.workers.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case a := <-h.queue:
			if n.ctx.Err() != nil {
				// Close won the race for this alert: it is dropped like
				// the ones still queued.
				n.dropped.Add(1)
				n.log.Warn("alert dropped: the notifier closed before it was sent", "url", h.shown, "kind", a.Kind)
				return
			}
			d := n.deliver(h, a)
			n.record(d)
			if !d.OK {
				n.log.Warn("alert not delivered", "url", h.shown, "kind", a.Kind, "subject", a.Subject,
					"attempts", d.Attempts, "status", d.Status, "err", d.Err)
			}
		}
	}
}

// deliver posts a to h until it is accepted, refused for good, out of
// attempts or the Notifier closes.
func (n *Notifier) deliver(h *hook, a Alert) Delivery {
	d := Delivery{Alert: a, URL: h.shown}
	body, err := json.Marshal(a)
	if err != nil {
		d.Err, d.At = err.Error(), time.Now().UTC()
		return d
	}
	for {
		d.Attempts++
		var retryAfter time.Duration
		d.Status, retryAfter, err = n.post(h.url, body)
		if err == nil {
			d.OK, d.Err = true, ""
			break
		}
		d.Err = err.Error()
		if !retryable(d.Status, err) || d.Attempts >= n.opts.MaxAttempts {
			break
		}
		if !n.pause(max(backoff(d.Attempts, n.opts.InitialBackoff, n.opts.MaxBackoff), retryAfter)) {
			break
		}
	}
	if !d.OK && n.ctx.Err() != nil {
		d.Err = "stopped by Close: " + d.Err
	}
	d.At = time.Now().UTC()
	return d
}

// post makes one attempt. It returns the answer's status (0 if none),
// the pause its Retry-After header asks for (0 if none) and why the
// attempt failed (nil on a 2xx).
func (n *Notifier) post(target string, body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return 0, 0, n.transportError(err)
	}
	defer resp.Body.Close()
	// Reading a little lets a short answer's connection be reused.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp.StatusCode, 0, nil
	}
	return resp.StatusCode, retryAfter(resp.Header, n.opts.MaxBackoff), statusError(resp, answer)
}

// transportError drops the URL that *url.Error quotes (it may hold a
// secret) and names a timeout as such.
func (n *Notifier) transportError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %v", n.opts.Timeout)
	}
	return err
}

func statusError(resp *http.Response, answer []byte) error {
	quote := strings.TrimSpace(string(answer[:min(len(answer), MaxErrorQuoteBytes)]))
	if quote == "" {
		return errors.New(resp.Status)
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.ToValidUTF8(quote, "?"))
}

// retryable tells whether a failed attempt may succeed later: network
// errors, timeouts, 408, 429 and 5xx. Other answers (4xx, 3xx) mean the
// receiver will not take this body.
func retryable(status int, err error) bool {
	switch {
	case err == nil:
		return false
	case status == 0, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// backoff is the pause after the attempts-th attempt: initial, doubled
// for each attempt after the first, at most limit.
func backoff(attempts int, initial, limit time.Duration) time.Duration {
	d := initial
	for i := 1; i < attempts && d < limit; i++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// retryAfter reads a Retry-After in seconds (the date form is ignored),
// at most limit.
func retryAfter(h http.Header, limit time.Duration) time.Duration {
	s, err := strconv.ParseInt(strings.TrimSpace(h.Get("Retry-After")), 10, 64)
	if err != nil || s <= 0 {
		return 0
	}
	if s >= int64(limit/time.Second) {
		return limit
	}
	return time.Duration(s) * time.Second
}

// pause waits d, or less if the Notifier closes; it reports whether it
// waited all of d.
func (n *Notifier) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.ctx.Done():
		return false
	}
}
