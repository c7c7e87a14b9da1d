package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/annals/annals"
	"github.com/jackc/pgx/v5"
)

// Waking subscriptions. A Store's own commits advance its watermark at once
// (the writer does it). Commits of other Stores on the schema, in this
// process or another, reach it by NOTIFY, with polling as the fallback:
//
//   - NOTIFY is never sent from an append transaction: PostgreSQL takes a
//     cluster-wide lock at the commit of every notifying transaction, which
//     would serialise commits on it. The writer only signals the notifier,
//     which sends one NOTIFY (payload: the committed head of $all) for all
//     the commits since its last one, at most every NotifyInterval.
//   - The listener holds its own connection with LISTEN. A notification's
//     payload is a committed position, so it advances the watermark
//     directly. With no notification for PollInterval, and right after
//     every (re)connect, it reads the head of $all instead: a notification
//     lost while the connection was down, or never sent (a notifier that
//     failed), delays a subscriber by at most PollInterval, never loses
//     an event.

// notifier sends the NOTIFYs of this Store's commits.
func (s *Store) notifier(ctx context.Context) {
	defer s.bgDone.Done()
	channel := channelName(s.opts.Schema)
	for {
		select {
		case <-s.notify:
		case <-ctx.Done():
			return
		}
		if s.opts.noNotify {
			continue
		}
		pos := s.wm.Load()
		_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, strconv.FormatUint(uint64(pos), 10))
		if err != nil && ctx.Err() == nil {
			// Listeners fall back to polling; nothing is lost.
			s.opts.Logger.Warn("postgres: NOTIFY failed", "err", err)
		}
		select {
		case <-time.After(s.opts.NotifyInterval):
		case <-ctx.Done():
			return
		}
	}
}

// listen keeps a LISTEN connection and advances the watermark from it.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer s.bgDone.Done()
	listen := "LISTEN " + ident(channelName(s.opts.Schema))
	backoff := s.opts.PollInterval
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			if _, err = conn.Exec(ctx, listen); err != nil {
				conn.Close(context.Background())
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.opts.Logger.Warn("postgres: LISTEN connection failed; polling", "err", err)
			s.poll(ctx, nil)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		s.follow(ctx, conn)
		conn.Close(context.Background())
	}
}

// follow waits on conn for notifications until the connection fails or ctx
// ends.
func (s *Store) follow(ctx context.Context, conn *pgx.Conn) {
	// Whatever was notified while no connection listened: read it now.
	if !s.poll(ctx, conn) {
		return
	}
	for {
		wait, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
		n, err := conn.WaitForNotification(wait)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if pos, perr := strconv.ParseUint(n.Payload, 10, 64); perr == nil {
				s.advance(annals.Position(pos))
				continue
			}
			// Not one of ours: read the head instead.
		}
		if conn.IsClosed() {
			s.opts.Logger.Warn("postgres: LISTEN connection lost; reconnecting", "err", err)
			return
		}
		if !s.poll(ctx, conn) {
			return
		}
	}
}

// poll reads the head of $all (on conn, or the pool if nil) and advances
// the watermark to it. It reports whether the read worked.
func (s *Store) poll(ctx context.Context, conn *pgx.Conn) bool {
	var head int64
	var err error
	if conn != nil {
		err = conn.QueryRow(ctx, s.q.readHead).Scan(&head)
	} else {
		err = s.pool.QueryRow(ctx, s.q.readHead).Scan(&head)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.opts.Logger.Warn("postgres: reading the head of $all failed", "err", err)
		}
		return false
	}
	s.advance(annals.Position(head))
	return true
}
