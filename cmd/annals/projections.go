package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/annals/annals/projection"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

const (
	// projectionsTimeout bounds one request to the server, a reset
	// included (it deletes the read model in one transaction before it
	// answers).
	projectionsTimeout = 60 * time.Second
	// maxProjectionsResponseBytes bounds what is read of an answer: a
	// listing of MaxParkedListed parked events, each with its error text,
	// is a few MB.
	maxProjectionsResponseBytes = 32 << 20
	// lastErrorColumn bounds the last error shown in a table; --json
	// prints it whole.
	lastErrorColumn = 100
	// defaultProjectionsServer is where `annals serve` listens by default.
	defaultProjectionsServer = "kurrentdb://" + defaultListen + "?tls=false"
)

// wordCommands take words besides their flags (run lets them through):
// projections takes its action and a projection's name.
var wordCommands = map[string]bool{"projections": true, "processes": true}

// projectionActions are the POST actions, as the server names them.
var projectionActions = map[string]bool{
	projection.ActionPause: true, projection.ActionResume: true, projection.ActionReset: true,
	projection.ActionRebuild: true, projection.ActionReplayParked: true,
}

const projectionsNotes = `  Watches and controls the projections a server runs, through its HTTP
  endpoint (/api/projections) on the port --server names: kurrentdb://
  (or esdb://) URLs as the other commands take them, plain HTTP with
  tls=false, else HTTPS (tlsCAFile, tlsVerifyCert=false apply), the
  credentials from the URL (kurrentdb://admin:PASSWORD@host:2113); or an
  http:// or https:// URL. Actions:
    list (the default)    a table: name, state, position, head, lag,
                          events/s, parked, last error
    status NAME           the same for one projection
    pause NAME, resume NAME
    reset NAME            empty the read model and replay the log in place
    rebuild NAME          start a blue/green rebuild (the model keeps
                          serving until the switch)
    replay-parked NAME    retry the parked events; prints how many applied
    parked NAME           the parked events, oldest first
  Actions print the projection's status after them. --json prints JSON
  lines instead: one status (or parked event) a line. A projection whose
  state refuses the action (no Reset func, on standby, not running, a
  rebuild in progress) is an error (exit 1), as is an unknown one.
`

func setupProjections(fs *flag.FlagSet) runFunc {
	serverURL := fs.String("server", defaultProjectionsServer, "the server's `URL` (kurrentdb://host:port?tls=false, or http(s)://host:port)")
	jsonOut := fs.Bool("json", false, "print JSON lines instead of a table")
	limit := fs.Int("limit", projection.DefaultParkedLimit, fmt.Sprintf("with parked, list at most `N` events (1 to %d)", projection.MaxParkedListed))

	return func(ctx context.Context, e *env) error {
		words, err := takeWords(fs)
		if errors.Is(err, flag.ErrHelp) {
			printCommand(e.out.w, lookup("projections"))
			return nil
		}
		if err != nil {
			return usagef("%v", err)
		}
		action, name := "list", ""
		if len(words) > 0 {
			action, words = words[0], words[1:]
		}
		switch {
		case action == "list":
			if len(words) > 0 {
				return usagef("list takes no name: annals projections status %s", words[0])
			}
		case action == "status" || action == "parked" || projectionActions[action]:
			if len(words) == 0 {
				return usagef("%s needs a projection's name: annals projections %s NAME", action, action)
			}
			if name, words = words[0], words[1:]; len(words) > 0 {
				return usagef("unexpected argument %q (one projection at a time)", words[0])
			}
			if len(name) > projection.MaxNameBytes {
				return usagef("a projection's name is at most %d bytes", projection.MaxNameBytes)
			}
		default:
			return usagef("unknown action %q: list, status, pause, resume, reset, rebuild, replay-parked or parked", action)
		}
		if isSet(fs, "limit") && action != "parked" {
			return usagef("--limit goes with parked")
		}
		if *limit < 1 || *limit > projection.MaxParkedListed {
			return usagef("--limit %d: want 1 to %d", *limit, projection.MaxParkedListed)
		}
		c, err := newProjectionsClient(*serverURL)
		if err != nil {
			return usagef("--server: %v", err)
		}
		p := projectionsPrinter{out: e.out, json: *jsonOut}

		switch action {
		case "list":
			var list projection.StatusList
			if err := c.do(ctx, http.MethodGet, "", &list); err != nil {
				return err
			}
			return p.statuses(list.Projections...)
		case "status":
			var st projection.Status
			if err := c.do(ctx, http.MethodGet, url.PathEscape(name), &st); err != nil {
				return err
			}
			return p.statuses(st)
		case "parked":
			var list projection.ParkedList
			if err := c.do(ctx, http.MethodGet, url.PathEscape(name)+"/parked?limit="+strconv.Itoa(*limit), &list); err != nil {
				return err
			}
			return p.parked(list.Parked)
		}
		var res projection.ActionResult
		if err := c.do(ctx, http.MethodPost, url.PathEscape(name)+"/"+action, &res); err != nil {
			return err
		}
		return p.action(res)
	}
}

// takeWords returns the command's words (the action and a name), which
// may come before, between or after its flags: the flag package stops at
// the first word, so what follows a word is parsed again. After "--"
// everything is a word.
func takeWords(fs *flag.FlagSet) ([]string, error) {
	var words []string
	args := fs.Args()
	for len(args) > 0 {
		switch {
		case args[0] == "--":
			return append(words, args[1:]...), nil
		case args[0] == "-" || !strings.HasPrefix(args[0], "-"):
			words, args = append(words, args[0]), args[1:]
		default:
			if err := fs.Parse(args); err != nil {
				return nil, err
			}
			args = fs.Args()
		}
	}
	return words, nil
}

// projectionsClient talks to a server's /api/projections.
type projectionsClient struct {
	base       string // scheme://host:port
	prefix     string // the API's path: projection.APIPrefix, process.HTTPPath
	what       string // what the API serves, for a 404's message
	user, pass string
	hc         *http.Client
}

// newProjectionsClient reads a --server URL: a connection string as the
// KurrentDB clients take it (its TLS settings and credentials), or an
// http(s) URL.
func newProjectionsClient(server string) (*projectionsClient, error) {
	c := &projectionsClient{prefix: projection.APIPrefix, what: "projections"}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if u, err := url.Parse(server); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" {
			return nil, fmt.Errorf("%q names no host", server)
		}
		c.base = u.Scheme + "://" + u.Host
		if u.User != nil {
			c.user = u.User.Username()
			c.pass, _ = u.User.Password()
		}
	} else {
		cfg, err := kurrentdb.ParseConnectionString(server)
		if err != nil {
			return nil, err
		}
		addr := cfg.Address
		if addr == "" && len(cfg.GossipSeeds) > 0 {
			// A cluster's nodes each serve their own projections: ask
			// the first seed.
			addr = fmt.Sprintf("%s:%d", cfg.GossipSeeds[0].Host, cfg.GossipSeeds[0].Port)
		}
		if cfg.DnsDiscover || addr == "" {
			return nil, fmt.Errorf("%q: name one node (host:port), not a discovery address", server)
		}
		scheme := "https"
		if cfg.DisableTLS {
			scheme = "http"
		}
		c.base = scheme + "://" + addr
		c.user, c.pass = cfg.Username, cfg.Password
		tlsConfig.RootCAs = cfg.RootCAs
		tlsConfig.InsecureSkipVerify = cfg.SkipCertificateVerification
		if cfg.UserCertFile != "" || cfg.UserKeyFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.UserCertFile, cfg.UserKeyFile)
			if err != nil {
				return nil, fmt.Errorf("the user certificate: %w", err)
			}
			tlsConfig.Certificates = []tls.Certificate{cert}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	// HTTP/1.1 only: the server hands HTTP/2 connections to gRPC (one
	// port serves both).
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	tr.Protocols = &protocols
	c.hc = &http.Client{Transport: tr, Timeout: projectionsTimeout}
	return c, nil
}

// do sends method to the API path under c.prefix and decodes the answer
// into v, or returns the server's error.
func (c *projectionsClient) do(ctx context.Context, method, path string, v any) error {
	u := c.base + c.prefix
	if path != "" {
		u += "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %w (is a server running there? --server names it)", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProjectionsResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if len(body) > maxProjectionsResponseBytes {
		return fmt.Errorf("%s %s: the answer is over %d bytes", method, u, maxProjectionsResponseBytes)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		var e projection.ErrorBody
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
			if resp.StatusCode == http.StatusNotFound {
				e.Error = "this server does not serve " + c.what + " (" + e.Error + ")"
			}
		}
		msg := strings.TrimPrefix(e.Error, "projection: ")
		if e.Replayed != nil {
			msg = fmt.Sprintf("%d parked events replayed, then: %s", *e.Replayed, msg)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			msg += "; give the credentials in --server (kurrentdb://admin:PASSWORD@host:port)"
		}
		return fmt.Errorf("%s (%s)", msg, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %s: the answer is not what was expected: %w", method, u, err)
	}
	return nil
}

// projectionsPrinter prints answers as tables, or JSON lines.
type projectionsPrinter struct {
	out  *output
	json bool
}

func (p projectionsPrinter) statuses(sts ...projection.Status) error {
	if p.json {
		for i := range sts {
			if err := p.out.enc.Encode(&sts[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPOSITION\tHEAD\tLAG\tEVENTS/S\tPARKED\tLAST ERROR")
	for _, st := range sts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%s\n", oneLine(st.Name, projection.MaxNameBytes), st.State,
			st.Position, st.Head, st.Lag, st.EventsPerSecond, st.Parked, oneLine(strings.TrimPrefix(st.LastError, "projection: "), lastErrorColumn))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, st := range sts {
		if r := st.Rebuild; r != nil {
			fmt.Fprintf(p.out.w, "%s: building generation %d beside generation %d: position %d, lag %d\n",
				st.Name, r.Generation, st.Generation, r.Position, r.Lag)
		}
	}
	return nil
}

func (p projectionsPrinter) action(res projection.ActionResult) error {
	if p.json {
		return p.out.enc.Encode(&res)
	}
	if err := p.statuses(res.Status); err != nil {
		return err
	}
	if res.Replayed != nil {
		fmt.Fprintf(p.out.w, "replayed %d parked events\n", *res.Replayed)
	}
	return nil
}

func (p projectionsPrinter) parked(events []projection.ParkedEvent) error {
	if p.json {
		for i := range events {
			if err := p.out.enc.Encode(&events[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.out.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tSTREAM\tTYPE\tATTEMPTS\tPARKED AT\tERROR")
	for _, e := range events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", e.Position, oneLine(e.Stream, lastErrorColumn), oneLine(e.Type, lastErrorColumn),
			e.Attempts, e.ParkedAt.UTC().Format(time.RFC3339), oneLine(e.Error, lastErrorColumn))
	}
	return tw.Flush()
}

// oneLine fits s on one table line of at most n bytes (cut at a rune),
// with control characters (tabs, line breaks, a terminal's escapes) as
// spaces: names and errors come from elsewhere.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
