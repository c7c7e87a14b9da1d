package console_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/alert"
	"github.com/annals/annals/codec"
	"github.com/annals/annals/console"
	"github.com/annals/annals/internal/teststores"
	"github.com/annals/annals/metrics"
	"github.com/annals/annals/persistent"
	"github.com/annals/annals/process"
	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
	"github.com/annals/annals/server/serveproj"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

const password = "console-test"

// site is a server with the console, two projections that fail on a
// "Bad" event until fixed (one parks it, one stops), and an official
// client.
type site struct {
	http   *http.Client // trusts the test's certificate blindly
	addr   string
	client *kurrentdb.Client
	fixed  atomic.Bool
	shipOK atomic.Bool // the orders process manager's "ship" commands pass
	store  annals.Store
	log    *console.Log
	hooks  chan map[string]any // the alerts the webhook received
}

func startSite(t *testing.T) *site {
	t.Helper()
	s := &site{log: console.NewLog(), hooks: make(chan map[string]any, 64),
		http: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}}
	logger := slog.New(s.log.Handler(slog.DiscardHandler))
	m := metrics.New()
	raw := openStore(t)
	store := m.Store(raw)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg := projection.NewRegistry()
	for _, p := range []struct {
		name   string
		policy projection.OnFailure
	}{{"parking", projection.Park}, {"stopping", projection.Stop}} {
		pr, err := projection.New(store, projection.NewMemory(), projection.Projection[projection.KV]{
			Name: p.name, Policy: projection.ErrorPolicy{MaxRetries: -1, OnFailure: p.policy},
			Handle: func(ctx context.Context, kv projection.KV, e annals.Event) error {
				if e.Type == "Bad" && !s.fixed.Load() {
					return errors.New("cannot apply a Bad event")
				}
				return kv.Set([]byte(e.Stream), e.Data)
			},
			Reset: func(ctx context.Context, kv projection.KV) error { return kv.DeletePrefix(nil) },
		}, projection.Options{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Add(pr); err != nil {
			t.Fatal(err)
		}
		pr.Start(ctx)
		t.Cleanup(func() { pr.Stop() })
	}
	groups, err := persistent.Open(ctx, store, persistent.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	projections := serveproj.Registry(reg)
	m.WatchProjections(func(ctx context.Context) ([]metrics.Projection, error) {
		statuses, err := projections.Statuses(ctx)
		out := make([]metrics.Projection, len(statuses))
		for i, st := range statuses {
			out[i] = metrics.Projection{Name: st.Name, State: st.State, Position: uint64(st.Position), Lag: st.Lag, Parked: st.Parked}
		}
		return out, err
	})
	m.WatchDisk(func(context.Context) (metrics.Disk, error) {
		used, free, err := raw.DiskUsage()
		return metrics.Disk{UsedBytes: int64(used), FreeBytes: int64(free)}, err
	})
	s.store = store
	s.runOrders(t, ctx)
	history := metrics.NewHistory(m, 200*time.Millisecond)
	go history.Run(ctx)
	notifier := s.alerts(t, ctx, serveproj.Registry(reg), groups, logger)
	limits := annals.Limits{AllowSystemStreams: true}.WithDefaults()
	c := console.New(console.Options{Store: store, Groups: groups, History: history, Log: s.log, Alerts: notifier, Logger: logger,
		Info: console.Info{Version: "test", Store: "embedded", Started: time.Now(), Limits: limits}})
	s.addr = teststores.ServeStore(t, store, server.Options{
		Logger: logger, Console: c, Persistent: groups, Projections: serveproj.Registry(reg), Processes: process.Handler(store),
		Credentials: server.AdminCredentials(password), TLS: teststores.SelfSignedTLS(t), Metrics: m.Handler(), Calls: m, Limits: limits,
	})
	cfg, err := kurrentdb.ParseConnectionString(fmt.Sprintf("kurrentdb://admin:%s@%s?tlsVerifyCert=false", password, s.addr))
	if err != nil {
		t.Fatal(err)
	}
	if s.client, err = kurrentdb.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.client.Close() })
	return s
}

// runOrders runs a process manager on the site's store: a "Ship" event on
// shipment-N starts instance N, which sends one "ship" command, refused
// until s.shipOK.
func (s *site) runOrders(t *testing.T, ctx context.Context) {
	m := &process.Manager[struct{}, struct{}]{
		Name:      "orders",
		Filter:    annals.EventTypePrefixFilter("Ship"),
		Correlate: func(e annals.Event) (string, bool) { return strings.TrimPrefix(e.Stream, "shipment-"), true },
		Initial:   func() struct{} { return struct{}{} },
		Evolve:    func(st struct{}, _ struct{}) struct{} { return st },
		Decide: func(st struct{}, in process.Input) ([]struct{}, process.Decision, error) {
			return nil, process.Decision{Commands: []process.Command{{Stream: "warehouse-1", Type: "ship"}}, Finish: true}, nil
		},
		Codec: codec.New[struct{}](codec.Options{}),
	}
	routes := process.Routes{"ship": {
		Send: func(context.Context, string, json.RawMessage, uuid.UUID) error {
			if s.shipOK.Load() {
				return nil
			}
			return fmt.Errorf("%w: the warehouse is closed", process.ErrRefused)
		},
		Taken: func(context.Context, string, uuid.UUID) (bool, error) { return false, nil },
	}}
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- m.Run(runCtx, s.store, routes, process.Options{}) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("the orders manager: %v", err)
		}
	})
}

// alerts sends the projections' and groups' alerts to a webhook, a test
// HTTP server that hands their bodies to s.hooks.
func (s *site) alerts(t *testing.T, ctx context.Context, projections server.Projections, groups *persistent.Manager, logger *slog.Logger) *alert.Notifier {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case s.hooks <- body:
		default:
		}
	}))
	t.Cleanup(hook.Close)
	n, err := alert.New(alert.Options{URLs: []string{hook.URL}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	source := func(ctx context.Context) (alert.Snapshot, error) {
		var snap alert.Snapshot
		statuses, err := projections.Statuses(ctx)
		for _, st := range statuses {
			snap.Projections = append(snap.Projections, alert.Projection{Name: st.Name, State: st.State, Lag: st.Lag, Parked: st.Parked, LastError: st.LastError})
		}
		infos, _ := groups.List("")
		for _, g := range infos {
			snap.Groups = append(snap.Groups, alert.Group{Stream: g.Stream, Group: g.Group, Parked: g.Parked})
		}
		return snap, err
	}
	go alert.Watch(ctx, 100*time.Millisecond, source, alert.Rules{}, n)
	return n
}

// waitLag waits until the dashboard's last sample shows projection name's
// lag as want says.
func (s *site) waitLag(t *testing.T, name string, want func(float64) bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "https://"+s.addr+"/console/api/dashboard", nil)
		req.SetBasicAuth("admin", password)
		resp, err := s.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var dash struct {
			Samples []struct {
				ProjectionLag map[string]float64 `json:"projectionLag"`
			} `json:"samples"`
		}
		err = json.NewDecoder(resp.Body).Decode(&dash)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(dash.Samples); n > 0 {
			if lag, ok := dash.Samples[n-1].ProjectionLag[name]; ok && want(lag) {
				return
			}
		}
	}
	t.Fatalf("the dashboard never showed the lag of %s as wanted", name)
}

// waitHook waits for the webhook to receive an alert of kind on subject.
func (s *site) waitHook(t *testing.T, kind, subject string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case body := <-s.hooks:
			if body["kind"] == kind && body["subject"] == subject {
				return
			}
		case <-timeout:
			t.Fatalf("the webhook never received %s for %s", kind, subject)
		}
	}
}

func (s *site) append(t *testing.T, stream, typ, data string) {
	t.Helper()
	_, err := s.client.AppendToStream(context.Background(), stream, kurrentdb.AppendToStreamOptions{},
		kurrentdb.EventData{EventType: typ, ContentType: kurrentdb.ContentTypeJson, Data: []byte(data)})
	if err != nil {
		t.Fatal(err)
	}
}

// browser opens headless Chromium, logged in as the admin.
func browser(t *testing.T, s *site) context.Context {
	t.Helper()
	path := os.Getenv("ANNALS_CHROMIUM")
	if path == "" {
		path, _ = exec.LookPath("chromium")
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium is not installed: apt-get install chromium, or set ANNALS_CHROMIUM")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("ignore-certificate-errors", true), // the test's self-signed certificate
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+password))
	login := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
		return err
	})
	if err := chromedp.Do(ctx, login); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// shot saves a screenshot of the page as docs/console/name.png when
// ANNALS_SCREENSHOTS is set, else in the test's temporary directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("ANNALS_SCREENSHOTS") != "" {
		dir = filepath.Join("..", "docs", "console")
	}
	if err := chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitText waits until the page's main element holds want.
func waitText(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	js := fmt.Sprintf(`document.getElementById("main").innerText.includes(%q)`, want)
	if err := poll(ctx, js); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#main")))
		t.Fatalf("the page never showed %q: %v\nit shows:\n%s", want, err, text)
	}
}

// poll waits until the expression js is true on the page.
func poll(ctx context.Context, js string) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second)))
	return err
}

func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

func typeInto(t *testing.T, ctx context.Context, sel, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		t.Fatalf("type into %s: %v", sel, err)
	}
}

func open(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// TestConsoleInBrowser walks the console in a real headless Chromium: the
// streams and an event, the live tail, the projections failing and fixed,
// a rebuild, the dashboard's charts, a persistent subscription created
// and deleted, the error log.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the browser test runs without it")
	}
	s := startSite(t)
	base := "https://" + s.addr + "/"
	if resp, err := s.http.Get(base); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the console without credentials: %v %v, want 401", resp, err)
	}
	for i := range 3 {
		s.append(t, "order-1", "OrderPlaced", fmt.Sprintf(`{"order":1,"line":%d}`, i))
	}
	s.append(t, "invoice-7", "InvoiceSent", `{"invoice":7}`)
	ctx := browser(t, s)

	open(t, ctx, base+"#/streams")
	waitText(t, ctx, "invoice-7")
	waitText(t, ctx, "order-1")
	shot(t, ctx, "streams")
	click(t, ctx, `tr[data-stream="invoice-7"]`)
	waitText(t, ctx, "InvoiceSent")
	click(t, ctx, `tr[data-event="invoice-7/0"]`)
	waitText(t, ctx, `"invoice": 7`)
	shot(t, ctx, "event")

	open(t, ctx, base+"#/tail")
	if err := poll(ctx, `document.getElementById("tail-state").innerText.startsWith("live")`); err != nil {
		t.Fatal("the live tail never connected:", err)
	}
	s.append(t, "order-2", "OrderShipped", `{"order":2}`)
	waitText(t, ctx, "OrderShipped")
	shot(t, ctx, "tail")
	open(t, ctx, base+"#/tail?on=regex&value=%28") // "(": not an expression
	waitText(t, ctx, "missing closing )")

	s.append(t, "order-3", "Bad", `{"bad":true}`)
	open(t, ctx, base+"#/projections")
	waitText(t, ctx, "failed")
	waitText(t, ctx, "cannot apply a Bad event")
	s.waitHook(t, "projection_failed", "stopping")
	s.waitLag(t, "stopping", func(lag float64) bool { return lag >= 1 })
	if err := poll(ctx, `!!document.querySelector("#p-lag canvas") && document.querySelector("#p-lag .u-legend").textContent.includes("stopping")`); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#p-lag").parentElement.outerHTML.slice(0, 2000)`))
		t.Fatal("the projections page drew no lag chart of the failed projection:", err, html)
	}
	shot(t, ctx, "projections")
	s.fixed.Store(true)
	click(t, ctx, `tr[data-projection="parking"] button[data-action="replay-parked"]`)
	click(t, ctx, `#confirm-ok`)
	waitText(t, ctx, "replay-parked parking: done, 1 replayed")
	click(t, ctx, `tr[data-projection="stopping"] button[data-action="resume"]`)
	click(t, ctx, `#confirm-ok`)
	waitText(t, ctx, "resume stopping: done")
	click(t, ctx, `tr[data-projection="parking"] button[data-action="rebuild"]`)
	click(t, ctx, `#confirm-ok`)
	waitText(t, ctx, "rebuild parking: done")
	if err := poll(ctx, `!document.querySelector('tr[data-projection="stopping"] .badge.failed')`); err != nil {
		t.Fatal("the resumed projection still shows failed:", err)
	}
	s.waitLag(t, "stopping", func(lag float64) bool { return lag == 0 }) // the lag chart comes back down

	open(t, ctx, base+"#/")
	if err := poll(ctx, `document.querySelectorAll("#c-appends canvas, #c-lag canvas").length >= 2`); err != nil {
		t.Fatal("the dashboard drew no charts:", err)
	}
	waitText(t, ctx, "Head position")
	shot(t, ctx, "dashboard")

	s.append(t, "shipment-1", "Ship", `{}`)
	open(t, ctx, base+"#/processes")
	click(t, ctx, `tr[data-manager="orders"]`)
	waitText(t, ctx, "the warehouse is closed")
	shot(t, ctx, "processes")
	s.shipOK.Store(true)
	click(t, ctx, `tr[data-instance="1"] button[data-action="retry"]`)
	click(t, ctx, `#confirm-ok`)
	waitText(t, ctx, "retry 1: queued")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, _, err := process.InspectInstance(ctx, s.store, "orders", "1")
		if err == nil && st.Status == process.Done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retried instance: %+v, %v", st, err)
		}
	}
	open(t, ctx, base+"#/processes/orders/1")
	waitText(t, ctx, "Retried")
	waitText(t, ctx, "done")

	open(t, ctx, base+"#/subscriptions")
	waitText(t, ctx, "No persistent subscription groups yet")
	typeInto(t, ctx, `input[name=stream]`, "order-1")
	typeInto(t, ctx, `input[name=group]`, "shipping")
	click(t, ctx, `#create-group`)
	waitText(t, ctx, "Created shipping on order-1")
	if err := poll(ctx, `!!document.querySelector('tr[data-group="order-1/shipping"]')`); err != nil {
		t.Fatal("the created group is not listed:", err)
	}
	shot(t, ctx, "subscriptions")
	click(t, ctx, `tr[data-group="order-1/shipping"] button[data-action="delete"]`)
	click(t, ctx, `#confirm-ok`)
	waitText(t, ctx, "Deleted shipping")
	waitText(t, ctx, "No persistent subscription groups yet")

	open(t, ctx, base+"#/logs")
	waitText(t, ctx, "projection")
	waitText(t, ctx, "delivered")
	shot(t, ctx, "logs")
	if !strings.Contains(fmt.Sprint(s.log.Records()), "Bad") {
		t.Errorf("the error log lacks the projection's failure: %v", s.log.Records())
	}
}
