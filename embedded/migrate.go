package embedded

import (
	"encoding/binary"
	"fmt"
	"log/slog"

	"github.com/annals/annals"
	"github.com/cockroachdb/pebble/v2"
)

// formatVersion is the storage layout this build writes (codec.go). A
// store records it under keyFormat; a store without that key is format 1.
//
//	1: the id index holds global ids ('I' id)
//	2: the id index is per stream ('K' stream 0x00 id), as KurrentDB's
//	   idempotency is
const formatVersion = 3

// migrateBatchKeys bounds the keys one migration batch writes, so a large
// store's migration holds a bounded batch in memory.
const migrateBatchKeys = 1 << 16

// checkFormat brings the store in db to formatVersion, or refuses a store
// written by a newer build (it could not read it correctly). A store opened
// read-only on a full disk cannot be migrated: that is refused with a clear
// error.
func checkFormat(db *pebble.DB, readOnly bool, logger *slog.Logger) error {
	v, ok, err := getValue(db, []byte{keyFormat})
	if err != nil {
		return err
	}
	if ok {
		if len(v) != 1 {
			return errCorrupt("format version")
		}
		if v[0] > formatVersion {
			return fmt.Errorf("embedded: the store's format version is %d, newer than this build knows (%d): open it with a newer annals", v[0], formatVersion)
		}
		if v[0] == formatVersion {
			return nil
		}
	}
	if readOnly {
		return fmt.Errorf("the store needs its format upgraded to version %d, which needs free disk space: %w", formatVersion, annals.ErrDiskFull)
	}
	if !ok {
		if err := migrateIDIndex(db, logger); err != nil {
			return err
		}
	}
	return migrateIndexes(db, logger)
}

// migrateIDIndex rebuilds the id index per stream from the log (every event
// has an id key, so the log holds all of them), then drops format 1's
// global index and records the version, in one synced batch. A crash
// before that batch leaves the version unrecorded: the next Open migrates
// again, and rewriting a key with the same value is harmless.
func migrateIDIndex(db *pebble.DB, logger *slog.Logger) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{tableEvent}, UpperBound: []byte{tableEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	var keys, events int
	var key []byte
	for valid := it.First(); valid; valid = it.Next() {
		first := annals.Position(binary.BigEndian.Uint64(it.Key()[1:]))
		c, err := parseChunk(first, it.Value())
		if err != nil {
			return err
		}
		for pos := c.first; pos <= c.last(); pos++ {
			e, err := c.event(pos)
			if err != nil {
				return err
			}
			key = appendIDKey(key[:0], e.Stream, e.ID)
			mustSet(b, key, appendLocation(nil, pos, first))
			keys++
			events++
		}
		if keys >= migrateBatchKeys {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b, keys = db.NewBatch(), 0
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := b.DeleteRange([]byte{tableLegacyID}, []byte{tableLegacyID + 1}, nil); err != nil {
		return err
	}
	mustSet(b, []byte{keyFormat}, []byte{2})
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	if events > 0 {
		logger.Info("embedded store migrated: event ids are now scoped to their stream", "format", 2, "events", events)
	}
	return nil
}
