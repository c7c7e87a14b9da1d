package postgres

import (
	"context"
	"strings"

	"github.com/annals/annals"
)

var _ annals.StreamLister = (*Store)(nil)

// Every metastream ("$$x") sorts after "$$" and before "$%", and nothing
// else does: a listing reads the names up to the one and from the other,
// so it never steps over metastreams one by one.
const (
	beforeMetastreams = "$$"
	afterMetastreams  = "$%"
)

// listStreamsQuery reads one page of the streams table: the names that
// match $1 (a LIKE pattern), are greater than $2 and are not metastreams,
// in byte order (COLLATE "C", whatever the database's collation), at most
// $3 of them. Each branch is a range scan of streams_name_bytes
// (migration 3): a LIKE prefix is an index range under the C collation,
// and plans are made for each run's values (plan_cache_mode, store.go).
func listStreamsQuery(r *strings.Replacer) string {
	branch := func(bound string) string {
		return r.Replace(`(SELECT name, last_revision, last_position, soft_deleted, tombstoned FROM $S.streams
			WHERE name COLLATE "C" LIKE $1 ESCAPE E'\\' AND name COLLATE "C" > $2 AND ` + bound + `
				AND (has_events OR tombstoned)
			ORDER BY name COLLATE "C" LIMIT $3)`)
	}
	return `SELECT name, last_revision, last_position, soft_deleted, tombstoned FROM (` +
		branch(`name COLLATE "C" <= $4`) + ` UNION ALL ` + branch(`name COLLATE "C" >= $5`) +
		`) AS page ORDER BY name COLLATE "C" LIMIT $3`
}

// likePrefix is the LIKE pattern of the names that start with prefix:
// LIKE's own characters in it are escaped, so they match themselves.
func likePrefix(prefix string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(prefix) + "%"
}

// ListStreams implements annals.StreamLister: one statement, so one
// snapshot of committed rows, which is what every read of this store
// shows (read.go).
func (s *Store) ListStreams(ctx context.Context, opts annals.ListStreamsOptions) ([]annals.StreamInfo, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var page []annals.StreamInfo
	err := s.use(ctx, func() error {
		rows, err := s.pool.Query(ctx, s.q.listStreams,
			likePrefix(opts.Prefix), opts.After, opts.PageSize(), beforeMetastreams, afterMetastreams)
		if err != nil {
			return err
		}
		defer rows.Close()
		page = page[:0] // a retry starts afresh
		for rows.Next() {
			var (
				info     annals.StreamInfo
				rev, pos int64
			)
			if err := rows.Scan(&info.Name, &rev, &pos, &info.Deleted, &info.Tombstoned); err != nil {
				return err
			}
			info.LastRevision, info.LastPosition = annals.Revision(rev), annals.Position(pos)
			page = append(page, info)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}
