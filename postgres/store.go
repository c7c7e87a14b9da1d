// Package postgres is the Annals store on PostgreSQL: the book of record in
// tables several processes (several nodes of a service) can share.
//
// Every append transaction locks one row, the head of $all, assigns the next
// global positions under it and commits while still holding it. PostgreSQL
// makes a transaction visible before it releases its locks, so positions
// become visible in position order: a reader that has seen position P can
// never later meet an event before P. One writer goroutine per Store groups
// concurrent appends into one transaction (group commit). Subscriptions are
// woken by LISTEN/NOTIFY, with polling as the fallback. See docs/design.md,
// "The PostgreSQL store", for the tables and the invariants.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/annals/annals"
	"github.com/annals/annals/internal/core"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Options.
const (
	// DefaultSchema holds the store's tables. Stores with different schemas
	// share a database without seeing each other.
	DefaultSchema = "annals"
	// DefaultMaxConns bounds the pool that serves reads and subscriptions.
	// The writer and the listener have one connection each besides, so a
	// crowd of readers never delays a group commit.
	DefaultMaxConns = 8
	// DefaultQueueLength bounds the appends waiting for the writer; more
	// callers block (honouring their context).
	DefaultQueueLength = 4096
	// DefaultGroupOps and DefaultGroupBytes bound one group commit: one
	// transaction.
	DefaultGroupOps   = 1024
	DefaultGroupBytes = 16 << 20
	// DefaultPollInterval is how often the listener reads the head of $all
	// when no notification came: the fallback that wakes subscriptions if
	// a NOTIFY is lost (a reconnect, a pooler that drops LISTEN).
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultNotifyInterval is the least time between two NOTIFYs of one
	// store: commits in between share one.
	DefaultNotifyInterval = 2 * time.Millisecond
	// DefaultRetryWindow is how long the writer retries a group commit that
	// failed before reaching COMMIT (a lost connection, a restarting
	// server) before it fails the group's appends.
	DefaultRetryWindow = 10 * time.Second
	// DefaultReadPageBytes bounds the event payloads one page of a read
	// holds (besides its event count, annals.DefaultReadBatchEvents).
	DefaultReadPageBytes = 4 << 20
)

// maxSchemaBytes leaves room in PostgreSQL's 63-byte identifiers for the
// notification channel, which is named after the schema.
const maxSchemaBytes = 48

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Options configure a Store. Zero fields take the defaults.
type Options struct {
	// Schema holds the store's tables; created if missing. Lower-case
	// letters, digits and '_', at most 48 bytes.
	Schema string
	Limits annals.Limits
	// The other fields are the bounds named by the Default constants
	// above: MaxConns by DefaultMaxConns, and so on.
	MaxConns       int32
	QueueLength    int
	GroupOps       int
	GroupBytes     int
	PollInterval   time.Duration
	NotifyInterval time.Duration
	RetryWindow    time.Duration
	ReadPageBytes  int
	// Logger receives the store's notable events (slog.Default if nil).
	Logger *slog.Logger
	// Now is the clock (time.Now by default).
	Now func() time.Time
	// OnGroupCommit, if set, is told of every group transaction that
	// committed, from the writer: it must return at once
	// (annals.GroupCommit). A group whose COMMIT answer was lost is not
	// reported.
	OnGroupCommit func(annals.GroupCommit)

	// appName is the connections' application_name, which tests use to
	// find a store's backends; noNotify turns the notifier off, as if
	// every NOTIFY were lost.
	appName  string
	noNotify bool
	// beforeCommit, if set, runs inside every group transaction just
	// before COMMIT, with the head of $all locked. Tests use it to hold
	// transactions open.
	beforeCommit func()
}

func (o Options) withDefaults() (Options, error) {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if len(o.Schema) > maxSchemaBytes || !schemaName.MatchString(o.Schema) {
		return o, &annals.InvalidInputError{Field: "schema",
			Reason: fmt.Sprintf("%q: lower-case letters, digits and '_', not starting with a digit, at most %d bytes", o.Schema, maxSchemaBytes)}
	}
	o.Limits = o.Limits.WithDefaults()
	core.Default(&o.MaxConns, DefaultMaxConns)
	core.Default(&o.QueueLength, DefaultQueueLength)
	core.Default(&o.GroupOps, DefaultGroupOps)
	core.Default(&o.GroupBytes, DefaultGroupBytes)
	core.Default(&o.ReadPageBytes, DefaultReadPageBytes)
	core.Default(&o.PollInterval, DefaultPollInterval)
	core.Default(&o.NotifyInterval, DefaultNotifyInterval)
	core.Default(&o.RetryWindow, DefaultRetryWindow)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Store is the PostgreSQL store. Any number of Stores, in any number of
// processes, may open the same schema: the database serialises their
// appends.
type Store struct {
	opts      Options
	pool      *pgxpool.Pool // reads, subscriptions, NOTIFY
	writePool *pgxpool.Pool // the writer's two connections (writer.go invariant 6), reconnected by the pool
	q         queries
	// wm is the highest position known committed. Subscriptions wait on
	// it; the writer advances it after each commit, the listener after
	// every notification or poll (other Stores' commits).
	wm   *core.Watermark
	wmMu sync.Mutex // serialises advances from the writer and the listener

	queue  *core.Queue   // to the writer (writer.go)
	writes core.Writes   // the write methods, over queue
	notify chan struct{} // the writer's "something committed" (capacity 1)
	stopBg context.CancelFunc
	bgDone sync.WaitGroup // the listener and the notifier

	gate core.Gate // reads use the pool through it; Close shuts it before closing the pool
	once sync.Once
}

var _ annals.Store = (*Store)(nil)

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), creates or migrates the schema, and starts the writer and the
// listener.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	if opts.appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.appName
	}
	// pgx prepares every statement once per connection, and after five
	// runs PostgreSQL may keep a generic plan for good. Plans chosen while
	// a table was tiny (a sequential scan) then stay on a table of
	// millions: the id lookup of every append grew to 28 ms at 30,000
	// events. Planning each run costs tens of microseconds.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool, opts.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	wcfg := cfg.Copy()
	wcfg.MaxConns = 2
	// An acknowledged append must survive a crash, and a visible one must
	// never be undone (subscribers may have delivered it): whatever the
	// server's default, the writer's commits wait for their WAL flush.
	if wcfg.ConnConfig.RuntimeParams == nil {
		wcfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	wcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	writePool, err := pgxpool.NewWithConfig(ctx, wcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{
		opts:      opts,
		pool:      pool,
		writePool: writePool,
		q:         newQueries(opts.Schema),
		queue:     core.NewQueue(opts.Limits, opts.QueueLength, opts.GroupOps, opts.GroupBytes),
		notify:    make(chan struct{}, 1),
	}
	var head int64
	if err := pool.QueryRow(ctx, s.q.readHead).Scan(&head); err != nil {
		pool.Close()
		writePool.Close()
		return nil, fmt.Errorf("postgres: reading the head of $all: %w", err)
	}
	s.wm = core.NewWatermark(annals.Position(head))
	s.writes = core.Writes{Write: s.queue.Write}

	bg, stop := context.WithCancel(context.Background())
	s.stopBg = stop
	s.bgDone.Add(2)
	go s.listen(bg, cfg.ConnConfig.Copy())
	go s.notifier(bg)
	w := &writer{s: s}
	go w.run()
	opts.Logger.Info("postgres store open", "schema", opts.Schema, "position", head)
	return s, nil
}

// Close stops the writer (appends not yet taken fail with ErrClosed; the
// group being committed finishes), ends subscriptions, and closes the pool.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.queue.Stop()
		s.stopBg()
		s.bgDone.Wait()
		s.wm.Close()
		s.gate.Shut()
		s.pool.Close()
		s.writePool.Close()
		s.opts.Logger.Info("postgres store closed", "schema", s.opts.Schema, "position", s.wm.Load())
	})
	return nil
}

// Position returns the highest global position this Store knows to be
// committed (its own commits at once, other Stores' after a notification or
// a poll).
func (s *Store) Position() annals.Position { return s.wm.Load() }

// advance publishes pos as committed, if it is news. The writer and the
// listener both call it; the watermark only moves forwards.
func (s *Store) advance(pos annals.Position) {
	s.wmMu.Lock()
	defer s.wmMu.Unlock()
	if pos > s.wm.Load() {
		s.wm.Advance(pos)
	}
}

// use runs fn with the pool open, or fails with ErrClosed. fn must be safe
// to run again (a read that has handed nothing to its caller yet): when the
// connection or the server went away, it is retried for up to RetryWindow,
// so a restarted server or a killed backend does not end a read or a
// subscription. An error fn returns because ctx ended is reported as ctx's
// error.
func (s *Store) use(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(s.opts.RetryWindow)
	backoff := 20 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.useOnce(fn)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil || !retryable(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *Store) useOnce(fn func() error) error { return s.gate.Use(fn) }

// ErrCommitUnknown is annals.ErrOutcomeUnknown, which the store returns
// when the connection was lost while a transaction committed and it could
// not find out whether it did.
//
// Deprecated: test for annals.ErrOutcomeUnknown, which every store
// returns.
var ErrCommitUnknown = annals.ErrOutcomeUnknown

// ErrNotWritten wraps the database's error when an append failed and
// nothing of it was written (the database stayed unreachable for the retry
// window, or refused the transaction).
var ErrNotWritten = errors.New("postgres: append not written")

// channelName is the notification channel of a schema.
func channelName(schema string) string { return schema + "_appended" }

func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// DiskUsage returns the bytes the store's tables take in the database,
// their indexes and TOAST included.
func (s *Store) DiskUsage(ctx context.Context) (usedBytes int64, err error) {
	const q = `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`
	err = s.use(ctx, func() error { return s.pool.QueryRow(ctx, q, s.opts.Schema).Scan(&usedBytes) })
	return usedBytes, err
}
