package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/annals/annals"
)

// The admin user's records, as KurrentDB writes them when it starts with
// authentication on: the ACL of $user-admin, a $UserCreated event in
// $user-admin, and a $User event naming it in $users. Clients wait for
// them: the v4 Go client's test fixture and the KurrentDB Go client's
// TestTLS poll $users before anything else.
const (
	adminLogin           = "admin"
	usersStream          = "$users"
	userStreamPrefix     = "$user-"
	eventTypeUserCreated = "$UserCreated"
	eventTypeUser        = "$User"
	adminsRole           = "$admins"
	// adminUserTimeout bounds writing the records when the server starts.
	adminUserTimeout = 30 * time.Second
)

// userData is KurrentDB's user record (camel case, indented, default values
// left out). It carries no password hash: Annals checks credentials against
// its own options, so a hash here would be a stale copy of a secret.
type userData struct {
	LoginName string   `json:"loginName"`
	FullName  string   `json:"fullName"`
	Groups    []string `json:"groups"`
}

// writeAdminUser writes whatever of the admin user's records is missing.
// Each is written at the expected revision "no stream", so a restart, or
// several nodes starting together on one store, write each exactly once.
func writeAdminUser(ctx context.Context, store annals.Store) error {
	stream := userStreamPrefix + adminLogin
	acl, err := json.Marshal(map[string]string{"$w": adminsRole, "$d": adminsRole, "$mw": adminsRole})
	if err != nil {
		return err
	}
	if _, err := store.SetStreamMetadata(ctx, stream, annals.NoStream, annals.StreamMetadata{ACL: acl}); !written(err) {
		return fmt.Errorf("the ACL of %s: %w", stream, err)
	}
	data, err := json.MarshalIndent(userData{LoginName: adminLogin, FullName: "KurrentDB Administrator", Groups: []string{adminsRole}}, "", "  ")
	if err != nil {
		return err
	}
	if _, err := store.Append(ctx, stream, annals.NoStream, annals.EventData{Type: eventTypeUserCreated, ContentType: annals.ContentTypeJSON, Data: data}); !written(err) {
		return fmt.Errorf("%s: %w", stream, err)
	}
	if _, err := store.Append(ctx, usersStream, annals.NoStream, annals.EventData{Type: eventTypeUser, ContentType: annals.ContentTypeBinary, Data: []byte(adminLogin)}); !written(err) {
		return fmt.Errorf("%s: %w", usersStream, err)
	}
	return nil
}

// written reports whether a record is there: written now, or before.
func written(err error) bool {
	return err == nil || errors.Is(err, annals.ErrWrongExpectedRevision)
}

// ensureAdminUser writes the admin user's records on a server that checks
// credentials (KurrentDB has users only with authentication on) and may
// write system streams. A failure fails New: a store that refuses these
// writes would refuse the clients' too.
func ensureAdminUser(store annals.Store, opts Options) error {
	if opts.Credentials == nil || !opts.Limits.AllowSystemStreams {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminUserTimeout)
	defer cancel()
	if err := writeAdminUser(ctx, store); err != nil {
		return fmt.Errorf("server: writing the admin user's records: %w", err)
	}
	opts.Logger.Debug("the admin user's records are in " + usersStream)
	return nil
}
