// Command annals is the Annals event store on the command line: append
// events to streams, read a stream or the global log ($all), and follow them
// with a catch-up subscription, against the durable embedded store kept in
// one directory (--db, default ./annals-data).
//
// Every command prints JSON lines on stdout; logs and errors go to stderr.
// Run `annals help` for the commands, their flags and the output format.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/embedded"
	"github.com/annals/annals/postgres"
	"github.com/annals/annals/remote"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the store refused the request or failed
	exitUsage   = 2 // the command line is wrong, or the command is not built
)

const defaultDB = "./annals-data"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // from now on a second signal kills the process the usual way
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command runs with once its flags are parsed.
type env struct {
	db     string
	server string // --server: a running server instead of db
	// postgres, if set, is the DSN of a PostgreSQL store (in schema)
	// instead of db.
	postgres, schema string
	stdin            io.Reader
	stderr           io.Writer
	out              *output
}

// runFunc runs a command.
type runFunc func(ctx context.Context, e *env) error

// command is one subcommand: setup defines its flags on fs and returns what
// runs after they are parsed.
type command struct {
	name     string
	synopsis string // its flags, for the usage line
	summary  string
	setup    func(fs *flag.FlagSet) runFunc
}

func commands() []command {
	return []command{
		{"append", "--stream S [--expected any|no-stream|exists|N] --type T\n" +
			"                [--id UUID] [--data JSON] [--metadata JSON]\n" +
			"  annals append --stream S [--expected ...] --stdin < events.jsonl",
			"append one event, or several from stdin in one atomic append", setupAppend},
		{"read", "--stream S [--from start|end|N] [--backwards] [--limit N]",
			"read the events of one stream", setupRead},
		{"read-all", "[--from start|end|P] [--backwards] [--limit N] [filter]",
			"read the global log ($all), every event of every stream", setupReadAll},
		{"subscribe", "[--stream S] [--from start|end|N] [filter]",
			"catch-up subscription: history, then follow, until Ctrl-C", setupSubscribe},
		{"serve", "[--listen HOST:PORT] [--insecure | --tls-cert F --tls-key F [--tls-ca F]]\n" +
			"                [--projection list-of-products [--read-models DIR]]",
			"serve the store over KurrentDB's gRPC protocol (and HTTP), until Ctrl-C", setupServe},
		{"bench", "[--server URL] [--writers 1,8,64,256] [--duration 3s] [--read-events N]",
			"measure a server with the official Go client (a fresh one by default)", setupBench},
		{"demo", "seats [--seats N] [--clients M] [--duration D | --reservations N] [--conference ID]\n" +
			"                | purge [--users N] [--todos M] [--in-flight K]",
			"demos: seats never overbooked; a purge across many users' lists", setupDemo},
		{"projections", "[list] | status|pause|resume|reset|rebuild|replay-parked NAME\n" +
			"                     | parked NAME [--limit N]   [--server URL] [--json]",
			"a server's projections: status, pause, resume, reset, rebuild, parked events", setupProjections},
		{"processes", "[list] | show NAME | instance NAME ID | retry NAME ID\n" +
			"                   | abandon NAME ID [--reason R]   [--server URL] [--json]",
			"the process managers on a server's store: status, history, retry, abandon", setupProcesses},
		{"version", "", "print the product's version and the protocol version it advertises", nil},
		{"help", "[command]", "show this help, or one command's", nil},
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// run runs the command line args (without the program name) and returns the
// exit status. ctx ends the command early (main cancels it on SIGINT and
// SIGTERM).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(rest, stdout, stderr)
	case "version", "-version", "--version":
		if len(rest) > 0 {
			return report(stderr, "version", usagef("unexpected argument %q", rest[0]))
		}
		printVersion(stdout)
		return exitOK
	}
	cmd := lookup(name)
	if cmd == nil || cmd.setup == nil {
		if strings.HasPrefix(name, "-") {
			fmt.Fprintf(stderr, "annals: flags go after the command: annals <command> [flags]\nRun `annals help` for the commands.\n")
		} else {
			fmt.Fprintf(stderr, "annals: unknown command %q\nRun `annals help` for the commands.\n", name)
		}
		return exitUsage
	}

	if cmd.name == "demo" {
		var err error
		if cmd, rest, err = demoCommand(cmd, rest); err != nil {
			return report(stderr, name, err)
		}
	}
	fs, exec, sf := newFlagSet(cmd)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommand(stdout, cmd)
			return exitOK
		}
		return report(stderr, name, usagef("%v", err))
	}
	if fs.NArg() > 0 && !wordCommands[cmd.name] {
		return report(stderr, name, usagef("unexpected argument %q (every value goes with a flag)", fs.Arg(0)))
	}
	if err := sf.check(fs); err != nil {
		return report(stderr, name, err)
	}
	e := &env{db: *sf.db, server: *sf.server, postgres: *sf.postgres, schema: *sf.schema, stdin: stdin, stderr: stderr, out: newOutput(stdout)}
	err := exec(ctx, e)
	if ferr := e.out.flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing the output: %w", ferr)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			err = interrupted(name)
		}
		return report(stderr, name, err)
	}
	return exitOK
}

// dataCommands take --server: they work on a local store or, through the
// official KurrentDB Go client, on a running server.
var dataCommands = map[string]bool{"append": true, "read": true, "read-all": true, "subscribe": true, "demo": true}

// storeCommands work on a store of their own: the embedded one in --db, or
// a PostgreSQL one with --postgres.
var storeCommands = map[string]bool{"append": true, "read": true, "read-all": true, "subscribe": true, "serve": true, "demo": true}

// storeFlags say which store a command works on.
type storeFlags struct {
	db, server, postgres, schema *string
}

// newFlagSet builds cmd's flags, the store's included.
func newFlagSet(cmd *command) (*flag.FlagSet, runFunc, storeFlags) {
	fs := flag.NewFlagSet("annals "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports parse errors; -h prints printCommand
	db := defaultDB
	sf := storeFlags{db: &db, server: new(string), postgres: new(string), schema: new(string)}
	if storeCommands[cmd.name] {
		// bench and projections open no store: they refuse --db.
		fs.StringVar(sf.db, "db", defaultDB, "the `directory` of the embedded store")
	}
	exec := cmd.setup(fs)
	if dataCommands[cmd.name] {
		fs.StringVar(sf.server, "server", "", "work against a running server at this `URL` (kurrentdb://host:port?tls=false) instead of --db")
	}
	if storeCommands[cmd.name] {
		fs.StringVar(sf.postgres, "postgres", "", "use the PostgreSQL store at this `DSN` (postgres://user@host:5432/db) instead of --db")
		fs.StringVar(sf.schema, "postgres-schema", postgres.DefaultSchema, "the PostgreSQL `schema` holding the store (several stores may share a database)")
	}
	return fs, exec, sf
}

// check refuses store flags that contradict each other.
func (sf storeFlags) check(fs *flag.FlagSet) error {
	switch {
	case *sf.db == "":
		return usagef("--db needs a directory")
	case *sf.postgres != "" && *sf.server != "":
		return usagef("--postgres and --server contradict each other: one store at a time")
	case *sf.postgres != "" && isSet(fs, "db"):
		return usagef("--postgres and --db contradict each other: one store at a time")
	case *sf.postgres == "" && isSet(fs, "postgres-schema"):
		return usagef("--postgres-schema goes with --postgres")
	}
	return nil
}

func interrupted(name string) error {
	if name == "append" {
		return errors.New("interrupted: the append may or may not have been recorded; read the stream to see " +
			"(a retry with the same event ids, --id or \"id\" on stdin, at the same place writes nothing twice)")
	}
	return errors.New("interrupted")
}

func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "annals help: unknown command %q\nRun `annals help` for the commands.\n", args[0])
		return exitUsage
	}
	printCommand(stdout, cmd)
	return exitOK
}

func printUsage(w io.Writer) {
	io.WriteString(w, `annals: the Annals event store on the command line.

Usage:
  annals <command> [flags]

Every command opens the store in --db DIR (default ./annals-data) itself and
closes it when done. An embedded store is open in one process at a time:
while one annals command runs on a directory (a subscribe, say), the others
fail with "in use". append (and serve, demo) create the store, in a new or
empty directory only; the other commands need one to exist and never
create one. With --postgres DSN the commands use a PostgreSQL store instead
(created on first use), which any number of processes share.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s  %s\n", c.name, c.summary)
	}
	for _, c := range commands() {
		if c.setup == nil {
			continue
		}
		fmt.Fprintln(w)
		printCommand(w, &c)
	}
	io.WriteString(w, `
Output: one JSON object per line on stdout.
  append prints its result:
    {"stream":S,"nextExpectedRevision":N,"firstPosition":P,"lastPosition":P}
    (nextExpectedRevision is what to pass as --expected next; null when the
    stream has no events.)
  read, read-all and subscribe print one line per event:
    {"position":P,"stream":S,"revision":R,"id":"UUID","type":T,
     "contentType":CT,"recorded":"2006-01-02T15:04:05.999999999Z",
     "data":DATA,"metadata":META}
    position is the event's place in the global log (from 1), revision its
    place in its stream (from 0). data is the payload as JSON (compacted)
    when the content type is application/json and the payload is valid
    JSON; otherwise it is "dataBase64":"<standard base64>". metadata is JSON
    when valid JSON, else "metadataBase64". Empty data or metadata is left
    out.
  subscribe also prints, when it has delivered the history and is live:
    {"caughtUp":true,"position":P}
  and, with a filter, positions you may save to resume from P+1:
    {"checkpoint":P}

Exit status:
  0  done (subscribe, serve: stopped by Ctrl-C or SIGTERM)
  1  the store refused or failed: a wrong expected revision, a missing
     stream, a store in use, ... (message on stderr)
  2  the command line is wrong (nothing was written)

Examples:
  annals append --stream order-1 --expected no-stream --type Created --data '{"seats":5}'
  annals append --stream order-1 --expected 0 --type Paid --data '{"amount":30}'
  printf '%s\n' '{"type":"Booked","data":{"seat":1}}' '{"type":"Booked","data":{"seat":2}}' |
    annals append --stream order-2 --stdin
  annals read --stream order-1
  annals read --stream order-1 --backwards --limit 1
  annals read-all --category order --exclude-system
  annals subscribe --stream-prefix order-
`)
}

// printCommand prints one command's usage and flags.
func printCommand(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "annals %s: %s\n  annals %s %s\n", cmd.name, cmd.summary, cmd.name, cmd.synopsis)
	if extra := commandNotes[cmd.name]; extra != "" {
		io.WriteString(w, extra)
	}
	if cmd.setup == nil {
		return // help and version have no flags
	}
	fs, _, _ := newFlagSet(cmd)
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if a, ok := argNames[f.Name]; ok {
			arg = a
		} else {
			arg = strings.ToUpper(arg)
		}
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		if len(left) <= maxFlagWidth {
			width = max(width, len(left))
		}
		rows = append(rows, row{left, usage})
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].left < rows[j].left })
	const indent = "    "
	for _, r := range rows {
		if len(r.left) > width {
			// Too wide for the column: the description goes below.
			fmt.Fprintf(w, "%s%s\n", indent, r.left)
			fmt.Fprintf(w, "%s%s\n", indent+strings.Repeat(" ", width+2), wrap(r.usage, width+2+len(indent)))
			continue
		}
		fmt.Fprintf(w, "%s%-*s  %s\n", indent, width, r.left, wrap(r.usage, width+2+len(indent)))
	}
}

// argNames name the values of the flags that take one of a few words or a
// number; the others name theirs in `backquotes` in their usage.
var argNames = map[string]string{
	"expected": "any|no-stream|exists|N",
	"from":     "start|end|N",
}

const (
	maxFlagWidth = 24 // wider flag columns put the description below
	lineWidth    = 80
)

// wrap breaks text into lines that fit lineWidth when they start at column
// col; the lines after the first are indented to col.
func wrap(text string, col int) string {
	var b strings.Builder
	n := col
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if n+1+len(word) > lineWidth {
				b.WriteString("\n" + strings.Repeat(" ", col))
				n = col
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

var commandNotes = map[string]string{
	"projections": projectionsNotes,
	"processes":   processesNotes,
	"append": `  --stdin reads one event per line, each a JSON object
    {"type":T,"data":JSON,"metadata":JSON,"id":"UUID"}
  (type required; data defaults to {}, metadata to none, id to a new
  time-ordered one, UUID version 7; data and metadata are kept byte for
  byte). All the lines go in ONE atomic append: every event is written, or
  none.
`,
	"read": `  Forwards from --from (default start), or with --backwards from --from
  (default end) down. A missing or deleted stream is an error (exit 1).
`,
	"read-all": `  Forwards from position --from (default start), or with --backwards from
  --from (default end) down. At most one filter, and --exclude-system
  beside it (which then also leaves out $-typed events of the streams
  matched); a prefix flag may be repeated to match any of several prefixes.
`,
	"subscribe": `  Without --stream, subscribes to the global log, optionally filtered
  (the filters of read-all); with --stream, to that stream (no filter).
  Prints the history from --from (default start), then {"caughtUp":...},
  then follows until Ctrl-C or SIGTERM, and exits 0. An embedded store is
  open in one process at a time, so while the subscription holds --db
  nothing else appends to it: subscribe through a server (--server) or to
  a PostgreSQL store (--postgres) to follow other writers live. A --from
  past the end is live at once, as on KurrentDB: it says so on stderr,
  reports caught up at the real last position, and delivers events from
  --from on (those written before it are not delivered).
`,
	"demo": `  seats: a conference with --seats seats; --clients concurrent clients
  reserve 1 to 4 seats and sometimes cancel, each reservation a command
  decided on the stream and appended at the revision it was decided on
  (package command). Prints reservations accepted, rejected for lack of
  seats, conflicts retried and throughput, then replays the stream and
  fails (exit 1) if the seats reserved ever exceeded the capacity. Without
  --db it runs on a fresh embedded store in a temporary directory. Runs
  with the same --conference (against one --server or --postgres) book
  the same seats.
  purge: --users lists of --todos todos each, the even ones completed, and
  one PurgeRequested naming every user; the process manager "purges"
  (package process) sends PurgeAllCompletedTodos to each list, at most
  --in-flight at a time, each with its idempotency key. Prints the time
  taken and the most commands in flight, then replays every list and fails
  (exit 1) unless each was purged once, of exactly its completed todos.
  ` + "`annals demo purge -h`" + ` lists its flags.
`,
	"bench": `  Drives a server with the official KurrentDB Go client: single-event
  appends (each writer its own stream) at each --writers count, a hot
  stream (all writers on one stream at their expected revision: successes
  and conflicts), and a read of $all. Without --server it serves a fresh
  embedded store on a loopback port, and also appends to that store
  directly, so the protocol's cost shows as a ratio. Prints a table.
  --server writes the benchmark's events into that server's store for
  good (streams bench-*, hot-*): it needs --yes.
`,
	"serve": `  Serves the store in --db (or the PostgreSQL store at --postgres) over
  the KurrentDB gRPC protocol, so the official clients connect to it as to
  KurrentDB (kurrentdb://127.0.0.1:2113?tls=false), and HTTP on the same
  port (GET /health/live answers 204): appends (Append, BatchAppend),
  reads and subscriptions of a stream or of $all (with filters), delete,
  tombstone, persistent subscriptions. With --tls-cert and --tls-key it
  serves TLS and every call needs the admin's credentials (HTTP Basic; the
  password from --admin-password-file, $ANNALS_ADMIN_PASSWORD or
  --admin-password, else changeit, with a warning; failed logins are
  throttled per address). Without TLS there is no authentication, and
  without --insecure it serves only on a loopback address (with --insecure
  on another one, it warns loudly). Ctrl-C or SIGTERM:
  finishes calls in flight, closes the store, exits 0. Several servers
  may share one PostgreSQL store: they are stateless nodes.
  --projection list-of-products runs the shop's ListOfProducts read model
  (package demo/products) beside the store: in a pebble target in
  --read-models with the embedded store, in the store's PostgreSQL schema
  with --postgres (one instance at a time across nodes). Its status and
  controls are under GET /api/projections (annals projections). Your own
  projections run in a Go program: server.Options.Projections.
`,
}

// withStore opens the store in e.db, runs fn and closes the store. Only
// append may create a store; the other commands want an existing one, so a
// mistyped --db is an error rather than a new empty store.
func withStore(ctx context.Context, e *env, create bool, fn func(annals.Store) error) (err error) {
	if e.server != "" {
		s, err := remote.Dial(e.server)
		if err != nil {
			return usagef("--server: %v", err)
		}
		defer s.Close()
		return fn(s)
	}
	if e.postgres == "" {
		if err := checkStoreDir(e.db, create); err != nil {
			return err
		}
	}
	// Info (open, close) would only be noise; warnings and errors go to
	// stderr, so stdout stays pure JSON lines.
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The open follows ctx: Ctrl-C stops a connection to a PostgreSQL
	// that does not answer. Whoever opens the store's directory
	// administers it: system streams are writable, as through annals
	// serve (annals.Limits).
	s, err := openStore(ctx, e, annals.Limits{AllowSystemStreams: true}, logger)
	if err != nil {
		if errors.Is(err, embedded.ErrLocked) {
			return fmt.Errorf("the store in %s is in use: a store is open in one process at a time; "+
				"is another annals command (a subscribe?) running on it? (%v)", e.db, err)
		}
		return err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}()
	return fn(s)
}

// postgresOpenTimeout bounds connecting to PostgreSQL and migrating its
// schema when a command opens the store.
const postgresOpenTimeout = 30 * time.Second

// openStore opens the store e names: PostgreSQL with --postgres, else the
// embedded store in --db.
func openStore(ctx context.Context, e *env, limits annals.Limits, logger *slog.Logger) (annals.Store, error) {
	return openStoreObserved(ctx, e, limits, logger, nil)
}

// openStoreObserved is openStore whose store reports its group commits to
// onCommit, if set.
func openStoreObserved(ctx context.Context, e *env, limits annals.Limits, logger *slog.Logger, onCommit func(annals.GroupCommit)) (annals.Store, error) {
	if e.postgres != "" {
		// A DSN naming a host that never answers must not hang the
		// command: opening connects and migrates within postgresOpenTimeout.
		ctx, cancel := context.WithTimeout(ctx, postgresOpenTimeout)
		defer cancel()
		s, err := postgres.Open(ctx, e.postgres, postgres.Options{Schema: e.schema, Limits: limits, Logger: logger, OnGroupCommit: onCommit})
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL store (within %v): %w", postgresOpenTimeout, err)
		}
		return s, nil
	}
	return embedded.Open(e.db, embedded.Options{Limits: limits, Logger: logger, OnGroupCommit: onCommit})
}

// checkStoreDir refuses, without writing to it, a directory that holds no
// store when the command needs one (create false), and a directory that
// holds other files when the command would create a store (create true):
// opening either would write a store's files among them.
func checkStoreDir(dir string, create bool) error {
	const hint = "(annals append creates one; --db names another directory)"
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		if create {
			return nil
		}
		return fmt.Errorf("no store in %s: it does not exist %s", dir, hint)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
		if create {
			return nil
		}
		return fmt.Errorf("no store in %s: the directory is empty %s", dir, hint)
	}
	if err != nil {
		return fmt.Errorf("no store in %s: %w", dir, err)
	}
	desc, err := pebble.Peek(dir, vfs.Default)
	if err != nil {
		return fmt.Errorf("no store in %s: %w", dir, err)
	}
	if !desc.Exists {
		if create {
			return fmt.Errorf("no store in %s: the directory holds other files; a store is created only in a new "+
				"or empty directory (--db names another)", dir)
		}
		return fmt.Errorf("no store in %s: the directory holds other files, not a store %s", dir, hint)
	}
	return nil
}

// report prints err for command name on stderr and returns the exit status.
func report(stderr io.Writer, name string, err error) int {
	var usage *usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(stderr, "annals %s: %s\nRun `annals help %s` for its flags.\n", name, usage.msg, name)
		return exitUsage
	}
	var wrong *annals.WrongExpectedRevisionError
	if errors.As(err, &wrong) {
		fmt.Fprintf(stderr, "annals %s: wrong expected revision on stream %q: expected %s, actual %s\n",
			name, wrong.Stream, expectedName(wrong.Expected), actualName(wrong.Actual))
		return exitFailure
	}
	fmt.Fprintf(stderr, "annals %s: %s\n", name, strings.TrimPrefix(strings.TrimPrefix(err.Error(), "annals: "), "remote: "))
	return exitFailure
}

// actualName describes the state a wrong expected revision found.
func actualName(actual annals.ExpectedRevision) string {
	if r, ok := actual.Revision(); ok {
		return fmt.Sprintf("%d (the revision of its last event; --expected %d appends after it)", r, r)
	}
	return "no-stream (it has no events)"
}
