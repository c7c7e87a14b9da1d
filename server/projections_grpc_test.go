package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/annals/annals/projection"
	"github.com/annals/annals/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/projections"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// projectionClient serves reg with the projections of serveProjections
// ("orders", running over five events, and "shop/orders", never started)
// and returns the official client's projection management connected to
// it, the address and the running projector.
func projectionClient(t *testing.T, reg *projection.Registry, opts server.Options) (*kurrentdb.ProjectionClient, string, *projection.Projector[projection.KV]) {
	t.Helper()
	base, pr := serveProjections(t, reg, opts)
	addr := strings.TrimPrefix(base, "http://")
	cfg, err := kurrentdb.ParseConnectionString(fmt.Sprintf("kurrentdb://%s?tls=false", addr))
	if err != nil {
		t.Fatal(err)
	}
	client, err := kurrentdb.NewProjectionClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client, addr, pr
}

// rawConn dials addr without the official client, for requests it would
// not send.
func rawConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitStatus polls GetStatus until ok accepts it.
func waitStatus(t *testing.T, ctx context.Context, client *kurrentdb.ProjectionClient, name string, ok func(*kurrentdb.ProjectionStatus) bool) *kurrentdb.ProjectionStatus {
	t.Helper()
	for {
		st, err := client.GetStatus(ctx, name, kurrentdb.GenericProjectionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: last status %+v", name, st)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// statistics sends a raw Statistics request and returns the names
// listed, or the error.
func statistics(ctx context.Context, conn *grpc.ClientConn, opts *projections.StatisticsReq_Options) ([]string, error) {
	call, err := projections.NewProjectionsClient(conn).Statistics(ctx, &projections.StatisticsReq{Options: opts})
	if err != nil {
		return nil, err
	}
	var names []string
	for {
		resp, err := call.Recv()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return names, err
		}
		names = append(names, resp.GetDetails().GetName())
	}
}

func TestProjectionsGRPCList(t *testing.T) {
	client, addr, _ := projectionClient(t, projection.NewRegistry(), server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()

	for _, list := range []func(context.Context, kurrentdb.GenericProjectionOptions) ([]kurrentdb.ProjectionStatus, error){client.ListAll, client.ListContinuous} {
		got, err := list(ctx, kurrentdb.GenericProjectionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "orders" || got[1].Name != "shop/orders" {
			t.Fatalf("listed %+v", got)
		}
		orders, shop := got[0], got[1]
		if orders.Status != "Running" || orders.StateReason != "running" || orders.Mode != "Continuous" ||
			orders.Progress != 100 || orders.Position != "C:5/P:5" || orders.LastCheckpoint != "C:5/P:5" ||
			orders.EffectiveName != "orders" || orders.EventsProcessedAfterRestart != 5 {
			t.Errorf("orders: %+v", orders)
		}
		// Never started: stopped at its stored checkpoint 0, none of the
		// five events dealt with.
		if shop.Status != "Stopped" || shop.StateReason != "stopped" || shop.Progress != 0 || shop.Position != "C:0/P:0" {
			t.Errorf("shop/orders: %+v", shop)
		}
	}

	st, err := client.GetStatus(ctx, "shop/orders", kurrentdb.GenericProjectionOptions{})
	if err != nil || st.Name != "shop/orders" || st.Status != "Stopped" {
		t.Fatalf("GetStatus: %+v, %v", st, err)
	}

	// Annals has no transient or one-time (JavaScript) projections.
	conn := rawConn(t, addr)
	for _, opts := range []*projections.StatisticsReq_Options{
		{Mode: &projections.StatisticsReq_Options_Transient{Transient: &shared.Empty{}}},
		{Mode: &projections.StatisticsReq_Options_OneTime{OneTime: &shared.Empty{}}},
	} {
		if names, err := statistics(ctx, conn, opts); err != nil || len(names) != 0 {
			t.Errorf("%v: %v, %v; want none", opts, names, err)
		}
	}

	// The methods served are advertised.
	methods, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(ctx, &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	advertised := map[string]bool{}
	for _, m := range methods.GetMethods() {
		if m.GetServiceName() == "event_store.client.projections.projections" {
			advertised[m.GetMethodName()] = true
		}
	}
	if len(advertised) != 4 || !advertised["statistics"] || !advertised["disable"] || !advertised["enable"] || !advertised["reset"] {
		t.Errorf("advertised projection methods %v", advertised)
	}
}

func TestProjectionsGRPCControl(t *testing.T) {
	client, _, pr := projectionClient(t, projection.NewRegistry(), server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	opts := kurrentdb.GenericProjectionOptions{}

	// Disable pauses: KurrentDB shows a disabled projection Stopped.
	if err := client.Disable(ctx, "orders", opts); err != nil {
		t.Fatal(err)
	}
	if st, _ := pr.Status(ctx); st.State != projection.Paused {
		t.Fatalf("after Disable: %+v", st)
	}
	if st := waitStatus(t, ctx, client, "orders", func(*kurrentdb.ProjectionStatus) bool { return true }); st.Status != "Stopped" || st.StateReason != "paused" {
		t.Fatalf("disabled: %+v", st)
	}
	// Abort is Disable without a checkpoint to write: the same here.
	if err := client.Abort(ctx, "orders", opts); err != nil {
		t.Fatal(err)
	}

	// Reset while paused: the model emptied and the checkpoint back to 0,
	// where it stays until Enable.
	if err := client.Reset(ctx, "orders", kurrentdb.ResetProjectionOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := waitStatus(t, ctx, client, "orders", func(*kurrentdb.ProjectionStatus) bool { return true }); st.Position != "C:0/P:0" || st.Progress != 0 || st.Status != "Stopped" {
		t.Fatalf("reset while disabled: %+v", st)
	}
	// Enable resumes: the replay catches up with the log.
	if err := client.Enable(ctx, "orders", opts); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, ctx, client, "orders", func(st *kurrentdb.ProjectionStatus) bool { return st.Position == "C:5/P:5" })
	if st.Status != "Running" || st.Progress != 100 {
		t.Fatalf("after Enable: %+v", st)
	}
	if st, _ := pr.Status(ctx); st.State != projection.Running || st.Position != 5 {
		t.Fatalf("after Enable: %+v", st)
	}
	// Reset while running: replays at once.
	if err := client.Reset(ctx, "orders", kurrentdb.ResetProjectionOptions{WriteCheckpoint: true}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, client, "orders", func(st *kurrentdb.ProjectionStatus) bool { return st.Position == "C:5/P:5" && st.Status == "Running" })

	// A projection without a Reset func refuses, with the projector's
	// reason.
	err := client.Reset(ctx, "shop/orders", kurrentdb.ResetProjectionOptions{})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "no Reset func") {
		t.Fatalf("Reset of shop/orders: %v", err)
	}
	// Enable cannot start a projector its process did not start.
	err = client.Enable(ctx, "shop/orders", opts)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Enable of shop/orders: %v", err)
	}
	// Nor can Disable pause it: refused, not a success that did nothing.
	err = client.Disable(ctx, "shop/orders", opts)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Disable of shop/orders: %v", err)
	}
}

func TestProjectionsGRPCErrors(t *testing.T) {
	client, addr, pr := projectionClient(t, projection.NewRegistry(), server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	opts := kurrentdb.GenericProjectionOptions{}

	// An unknown name: the client's not-found error from GetStatus, and
	// NotFound from the unary calls (which the client passes on as is).
	if _, err := client.GetStatus(ctx, "missing", opts); code(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Fatalf("GetStatus of an unknown projection: %v", err)
	}
	for name, call := range map[string]func() error{
		"Disable": func() error { return client.Disable(ctx, "missing", opts) },
		"Enable":  func() error { return client.Enable(ctx, "missing", opts) },
		"Reset":   func() error { return client.Reset(ctx, "missing", kurrentdb.ResetProjectionOptions{}) },
	} {
		if err := call(); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "missing") {
			t.Errorf("%s of an unknown projection: %v", name, err)
		}
	}

	// JavaScript projections' methods.
	for name, call := range map[string]func() error{
		"Create": func() error {
			return client.Create(ctx, "counter", "fromAll().when({})", kurrentdb.CreateProjectionOptions{})
		},
		"Update": func() error {
			return client.Update(ctx, "orders", "fromAll().when({})", kurrentdb.UpdateProjectionOptions{})
		},
		"Delete": func() error { return client.Delete(ctx, "orders", kurrentdb.DeleteProjectionOptions{}) },
		"GetState": func() error {
			_, err := client.GetState(ctx, "orders", kurrentdb.GetStateProjectionOptions{})
			return err
		},
		"GetResult": func() error {
			_, err := client.GetResult(ctx, "orders", kurrentdb.GetResultProjectionOptions{})
			return err
		},
		"RestartSubsystem": func() error { return client.RestartSubsystem(ctx, opts) },
	} {
		if err := call(); status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "Go code") {
			t.Errorf("%s: %v, want Unimplemented", name, err)
		}
	}

	// Bad input: no name, a name too long, no mode.
	for name, call := range map[string]func() error{
		"GetStatus": func() error { _, err := client.GetStatus(ctx, "", opts); return err },
		"Disable":   func() error { return client.Disable(ctx, "", opts) },
		"Enable":    func() error { return client.Enable(ctx, "", opts) },
		"Reset":     func() error { return client.Reset(ctx, "", kurrentdb.ResetProjectionOptions{}) },
		"Disable long": func() error {
			return client.Disable(ctx, strings.Repeat("x", projection.MaxNameBytes+1), opts)
		},
	} {
		err := call()
		if e := (*kurrentdb.Error)(nil); errors.As(err, &e) {
			err = e.Unwrap()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s with a bad name: %v, want InvalidArgument", name, err)
		}
	}
	if _, err := statistics(ctx, rawConn(t, addr), &projections.StatisticsReq_Options{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Statistics without a mode: %v", err)
	}
	if st, _ := pr.Status(ctx); st.State != projection.Running || st.Position != 5 {
		t.Fatalf("refused calls acted: %+v", st)
	}
}

func TestProjectionsGRPCNotServed(t *testing.T) {
	_, addr, _ := projectionClient(t, nil, server.Options{})
	_, err := statistics(context.Background(), rawConn(t, addr), &projections.StatisticsReq_Options{Mode: &projections.StatisticsReq_Options_All{All: &shared.Empty{}}})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("without a registry: %v, want Unimplemented", err)
	}
}

func TestProjectionsGRPCCredentials(t *testing.T) {
	_, addr, pr := projectionClient(t, projection.NewRegistry(), server.Options{Credentials: server.AdminCredentials("secret")})
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	conn := rawConn(t, addr)
	all := &projections.StatisticsReq_Options{Mode: &projections.StatisticsReq_Options_All{All: &shared.Empty{}}}
	basic := func(user, pass string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	}

	if _, err := statistics(ctx, conn, all); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Statistics without credentials: %v", err)
	}
	if _, err := statistics(basic("admin", "wrong"), conn, all); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Statistics with bad credentials: %v", err)
	}
	disable := &projections.DisableReq{Options: &projections.DisableReq_Options{Name: "orders"}}
	if _, err := projections.NewProjectionsClient(conn).Disable(ctx, disable); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Disable without credentials: %v", err)
	}
	if st, _ := pr.Status(ctx); st.State != projection.Running {
		t.Fatalf("a refused Disable acted: %+v", st)
	}

	if names, err := statistics(basic("admin", "secret"), conn, all); err != nil || len(names) != 2 {
		t.Errorf("Statistics with credentials: %v, %v", names, err)
	}
	if _, err := projections.NewProjectionsClient(conn).Disable(basic("admin", "secret"), disable); err != nil {
		t.Fatal(err)
	}
	if st, _ := pr.Status(ctx); st.State != projection.Paused {
		t.Fatalf("after Disable with credentials: %+v", st)
	}
}
