package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tables of one store, in its schema:
//
//	migrations (version, applied_at)           the versions applied
//	head       (position, recorded)            one row: the last position of $all
//	events     (position, id, stream, revision, type, content_type,
//	            data, metadata, recorded, tags) the log
//	streams    (name, has_events, last_revision, last_position,
//	            soft_deleted, tombstoned)      each stream's head
//	event_tags (tag, position, type)           the tag index (migration 4)
//
// Invariants:
//
//  1. head.position is the last position in events, and events holds every
//     position from 1 to it: each append transaction locks the head row,
//     inserts the positions after it, and moves it, all in one commit.
//  2. (stream, revision) and (stream, id) are unique: the database itself
//     refuses a second event at a stream's revision or a second use of an
//     id in one stream, even if the planning above it were wrong. Ids are
//     scoped to their stream, as in KurrentDB (migration 2).
//  3. head.recorded is the recorded time of the last event; times never
//     decrease along positions, whichever process wrote them.

// migrations are applied in order, each once, in one transaction with the
// schema's advisory lock held. Never edit one that has shipped: add another.
// %[1]s is the quoted schema.
var migrations = []string{
	1: `
CREATE TABLE %[1]s.head (
	singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	position     bigint NOT NULL,
	recorded     timestamptz NOT NULL
);
INSERT INTO %[1]s.head (position, recorded) VALUES (0, 'epoch');

CREATE TABLE %[1]s.events (
	position     bigint PRIMARY KEY,
	id           uuid NOT NULL UNIQUE,
	stream       text NOT NULL,
	revision     bigint NOT NULL,
	type         text NOT NULL,
	content_type text NOT NULL,
	data         bytea NOT NULL,
	metadata     bytea NOT NULL,
	recorded     timestamptz NOT NULL,
	UNIQUE (stream, revision)
);

CREATE TABLE %[1]s.streams (
	name          text PRIMARY KEY,
	has_events    boolean NOT NULL,
	last_revision bigint NOT NULL,
	last_position bigint NOT NULL,
	soft_deleted  boolean NOT NULL,
	tombstoned    boolean NOT NULL
);
`,
	// Event ids are unique per stream, not globally: the same id may be
	// used in another stream.
	2: `
CREATE UNIQUE INDEX events_stream_id ON %[1]s.events (stream, id);
ALTER TABLE %[1]s.events DROP CONSTRAINT events_id_key;
`,
	// Listings page through names in byte order (COLLATE "C") and match
	// prefixes with LIKE; the primary key, in the database's collation,
	// serves neither unless that collation is C itself.
	3: `
CREATE INDEX streams_name_bytes ON %[1]s.streams (name COLLATE "C");
`,
	// Tags (dynamic consistency boundaries): kept with the event, in the
	// order given (NULL when none: adding the column rewrites nothing),
	// and indexed by a B-tree table of (tag, position) carrying the type,
	// so a query item of a tag and some types is answered from the
	// index, in position order.
	4: `
ALTER TABLE %[1]s.events ADD COLUMN tags jsonb;
CREATE TABLE %[1]s.event_tags (
	tag      text NOT NULL,
	position bigint NOT NULL,
	type     text NOT NULL,
	PRIMARY KEY (tag, position)
);
`,
}

// migrate brings schema up to the latest version. Processes opening the
// same schema at once queue on a transaction-scoped advisory lock keyed by
// the schema's name, so each migration runs once.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "annals.migrate."+schema); err != nil {
			return err
		}
		s := ident(schema)
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s+`.migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s+`.migrations`).Scan(&have); err != nil {
			return err
		}
		if have >= len(migrations) {
			return fmt.Errorf("schema %s is at version %d, newer than this build knows (%d)", schema, have, len(migrations)-1)
		}
		for v := have + 1; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v], s)); err != nil {
				return fmt.Errorf("migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.migrations (version) VALUES ($1)`, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrating schema %s: %w", schema, err)
	}
	return nil
}

// queries are the store's SQL, with its schema filled in.
type queries struct {
	schema                       string // unquoted
	readHead, lockHead, moveHead string

	streamStates, streamState, upsertStreams string
	lookupIDs, eventData, insertEvents       string
	insertTags, firstAfter                   string
	streamAndMetadata                        string
	readStreamForwards, readStreamBackwards  string
	readAllForwards, readAllBackwards        string
	hasID                                    string
	listStreams                              string
}

// eventColumns is what a read selects, in the order scanEvent expects.
const eventColumns = `position, id, stream, revision, type, content_type, data, metadata, recorded, tags`

func newQueries(schema string) queries {
	s := ident(schema)
	r := strings.NewReplacer("$S.", s+".", "$COLS", eventColumns)
	return queries{
		schema:   schema,
		readHead: r.Replace(`SELECT position FROM $S.head`),
		// FOR UPDATE: every append transaction queues here, so position
		// assignment is serialised across every process (invariant 1).
		lockHead: r.Replace(`SELECT position, recorded FROM $S.head FOR UPDATE`),
		moveHead: r.Replace(`UPDATE $S.head SET position = $1, recorded = $2`),

		streamStates: r.Replace(`SELECT name, has_events, last_revision, last_position, soft_deleted, tombstoned
			FROM $S.streams WHERE name = ANY($1)`),
		streamState: r.Replace(`SELECT has_events, last_revision, last_position, soft_deleted, tombstoned
			FROM $S.streams WHERE name = $1`),
		upsertStreams: r.Replace(`INSERT INTO $S.streams (name, has_events, last_revision, last_position, soft_deleted, tombstoned)
			SELECT * FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::bigint[], $5::boolean[], $6::boolean[])
			ON CONFLICT (name) DO UPDATE SET has_events = excluded.has_events, last_revision = excluded.last_revision,
				last_position = excluded.last_position, soft_deleted = excluded.soft_deleted, tombstoned = excluded.tombstoned`),
		lookupIDs: r.Replace(`SELECT e.id, e.stream, e.revision, e.position FROM $S.events e
			JOIN unnest($1::text[], $2::uuid[]) AS k(stream, id) ON e.stream = k.stream AND e.id = k.id`),
		eventData: r.Replace(`SELECT data FROM $S.events WHERE position = $1`),
		insertEvents: r.Replace(`INSERT INTO $S.events (position, id, stream, revision, type, content_type, data, metadata, recorded, tags)
			SELECT p, i, s, r, t, c, d, m, $9, g FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[],
				$5::text[], $6::text[], $7::bytea[], $8::bytea[], $10::jsonb[]) AS u(p, i, s, r, t, c, d, m, g)`),
		insertTags: r.Replace(`INSERT INTO $S.event_tags (tag, position, type)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])`),
		// The first event after $1 of any type ($2, or any if empty),
		// among the next $3.
		firstAfter: r.Replace(`SELECT position FROM $S.events WHERE position > $1 AND position <= $1 + $3
			AND (coalesce(cardinality($2::text[]), 0) = 0 OR type = ANY($2)) ORDER BY position LIMIT 1`),
		hasID: r.Replace(`SELECT EXISTS (SELECT 1 FROM $S.events WHERE position = $1 AND id = $2)`),

		// One statement, so one snapshot: a stream's state and the
		// metadata that decides what of it reads show.
		streamAndMetadata: r.Replace(`SELECT s.has_events, s.last_revision, s.last_position, s.soft_deleted, s.tombstoned,
				m.has_events, m.last_revision, m.last_position, e.data
			FROM (VALUES (1)) AS one(x)
			LEFT JOIN $S.streams s ON s.name = $1
			LEFT JOIN $S.streams m ON m.name = $2
			LEFT JOIN $S.events e ON e.position = m.last_position`),
		readStreamForwards: r.Replace(`SELECT $COLS FROM $S.events
			WHERE stream = $1 AND revision >= $2 AND revision <= $3 ORDER BY revision LIMIT $4`),
		readStreamBackwards: r.Replace(`SELECT $COLS FROM $S.events
			WHERE stream = $1 AND revision >= $2 AND revision <= $3 ORDER BY revision DESC LIMIT $4`),
		readAllForwards:  r.Replace(`SELECT $COLS FROM $S.events WHERE position >= $1 ORDER BY position LIMIT $2`),
		readAllBackwards: r.Replace(`SELECT $COLS FROM $S.events WHERE position <= $1 ORDER BY position DESC LIMIT $2`),

		listStreams: listStreamsQuery(r),
	}
}
