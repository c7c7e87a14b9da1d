package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/annals/annals"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/projections"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// KurrentDB's words in a projection's statistics, as its clients and UI
// read them: the status is the name of its managed state ("Running",
// "Stopped", "Faulted"; Disable leaves a projection "Stopped"), the mode
// the name of its mode.
const (
	kurrentRunning    = "Running"
	kurrentStopped    = "Stopped"
	kurrentFaulted    = "Faulted"
	kurrentContinuous = "Continuous"
	// fullProgress is the progress, in percent, of a projection that has
	// caught up with the log.
	fullProgress = 100
)

// The states of a projection (ProjectionStatus.State) that KurrentDB's
// Running and Stopped stand for.
const (
	stateRunning    = "running"
	stateRebuilding = "rebuilding"
	statePaused     = "paused"
	stateStopped    = "stopped"
	stateStandby    = "standby"
)

// notJavaScript is why the methods that manage JavaScript projections are
// not served.
const notJavaScript = "Annals projections are Go code registered in the server process (package projection), not JavaScript queries: "

// projectionsServer serves KurrentDB's Projections service over
// Options.Projections, so that the clients' projection management lists
// the registered projections and pauses, resumes and resets them. Their
// code is Go, compiled into the process: what creates, updates, deletes
// or queries a JavaScript projection has no counterpart and answers
// Unimplemented.
type projectionsServer struct {
	projections.UnimplementedProjectionsServer
	reg Projections
}

// Statistics streams the status of the projections asked for: all of
// them for the modes "all" and "continuous" (every Annals projection is
// continuous), none for "transient" and "one_time", one for a name.
func (p *projectionsServer) Statistics(req *projections.StatisticsReq, call grpc.ServerStreamingServer[projections.StatisticsResp]) error {
	ctx := call.Context()
	var statuses []ProjectionStatus
	switch mode := req.GetOptions().GetMode().(type) {
	case *projections.StatisticsReq_Options_Name:
		c, err := p.lookup(mode.Name)
		if err != nil {
			return err
		}
		st, err := c.Status(ctx)
		if err != nil {
			return projectionError(err)
		}
		statuses = []ProjectionStatus{st}
	case *projections.StatisticsReq_Options_All, *projections.StatisticsReq_Options_Continuous:
		// A projection whose status fails is listed (Faulted, with the
		// error as its reason) rather than failing the whole list.
		all, err := p.reg.Statuses(ctx)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return projectionError(ctxErr)
		}
		if all == nil && err != nil {
			return projectionError(err)
		}
		statuses = all
	case *projections.StatisticsReq_Options_Transient, *projections.StatisticsReq_Options_OneTime:
		return nil
	default:
		return status.Error(codes.InvalidArgument, "statistics options name no mode")
	}
	for _, st := range statuses {
		if err := call.Send(&projections.StatisticsResp{Details: statisticsDetails(st)}); err != nil {
			return err
		}
	}
	return nil
}

// Disable pauses the projection. write_checkpoint (Disable rather than
// Abort) changes nothing: a projector commits its checkpoint in the
// target with every batch it applies, so there is never one to write.
func (p *projectionsServer) Disable(ctx context.Context, req *projections.DisableReq) (*projections.DisableResp, error) {
	c, err := p.lookup(req.GetOptions().GetName())
	if err != nil {
		return nil, err
	}
	if err := c.Pause(); err != nil {
		return nil, projectionError(err)
	}
	return &projections.DisableResp{}, nil
}

// Enable resumes a paused projection, or runs a failed one again from its
// checkpoint (package projection's Controller.Resume says what it does in
// each state; a stopped or standby projection is refused).
func (p *projectionsServer) Enable(ctx context.Context, req *projections.EnableReq) (*projections.EnableResp, error) {
	c, err := p.lookup(req.GetOptions().GetName())
	if err != nil {
		return nil, err
	}
	if err := c.Resume(); err != nil {
		return nil, projectionError(err)
	}
	return &projections.EnableResp{}, nil
}

// Reset empties the read model and replays the log into it (a paused
// projection replays once enabled). write_checkpoint changes nothing, as
// for Disable.
func (p *projectionsServer) Reset(ctx context.Context, req *projections.ResetReq) (*projections.ResetResp, error) {
	c, err := p.lookup(req.GetOptions().GetName())
	if err != nil {
		return nil, err
	}
	if err := c.Reset(ctx); err != nil {
		return nil, projectionError(err)
	}
	return &projections.ResetResp{}, nil
}

func (p *projectionsServer) Create(context.Context, *projections.CreateReq) (*projections.CreateResp, error) {
	return nil, status.Error(codes.Unimplemented, notJavaScript+"register a projection.Projector in the server's projection.Registry instead")
}

func (p *projectionsServer) Update(context.Context, *projections.UpdateReq) (*projections.UpdateResp, error) {
	return nil, status.Error(codes.Unimplemented, notJavaScript+"change its code and redeploy, then rebuild it (POST /api/projections/{name}/rebuild)")
}

func (p *projectionsServer) Delete(context.Context, *projections.DeleteReq) (*projections.DeleteResp, error) {
	return nil, status.Error(codes.Unimplemented, notJavaScript+"remove it from the server's code")
}

func (p *projectionsServer) State(context.Context, *projections.StateReq) (*projections.StateResp, error) {
	return nil, status.Error(codes.Unimplemented, notJavaScript+"its state is the read model in its target; query that")
}

func (p *projectionsServer) Result(context.Context, *projections.ResultReq) (*projections.ResultResp, error) {
	return nil, status.Error(codes.Unimplemented, notJavaScript+"its result is the read model in its target; query that")
}

// RestartSubsystem is not served: the projectors belong to the process
// that registers them, which alone starts and stops them; an OK that
// restarted nothing would mislead.
func (p *projectionsServer) RestartSubsystem(context.Context, *shared.Empty) (*shared.Empty, error) {
	return nil, status.Error(codes.Unimplemented, notJavaScript+"the projectors are started and stopped by the process that runs them, not restarted over gRPC")
}

// lookup finds the projection called name. An empty name is refused
// (KurrentDB's Statistics would list every projection, which a client
// asking for one status would take as that one's); an unknown one is
// NotFound, as KurrentDB answers it.
func (p *projectionsServer) lookup(name string) (ProjectionControl, error) {
	switch {
	case name == "":
		return nil, status.Error(codes.InvalidArgument, "a projection name is required")
	case len(name) > MaxProjectionNameBytes:
		return nil, status.Errorf(codes.InvalidArgument, "projection name of %d bytes, at most %d", len(name), MaxProjectionNameBytes)
	}
	c, ok := p.reg.Get(name)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Projection '%s' not found", name)
	}
	return c, nil
}

// projectionError maps a projector's error to a status: a state that
// refuses the action is FailedPrecondition with the projector's message.
func projectionError(err error) error {
	switch {
	case errors.Is(err, ErrProjectionRefused):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrProjectionInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, annals.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// statisticsDetails is a status in KurrentDB's terms (see docs/projections.md
// for the mapping). The KurrentDB status names a state; Annals' own state
// goes in stateReason, which KurrentDB fills only for a faulted projection.
func statisticsDetails(st ProjectionStatus) *projections.StatisticsResp_Details {
	kstatus, reason := kurrentStatus(st)
	pos := kurrentPosition(st.Position)
	return &projections.StatisticsResp_Details{
		Name:          st.Name,
		EffectiveName: st.Name,
		Status:        kstatus,
		StateReason:   reason,
		Mode:          kurrentContinuous,
		Position:      pos,
		// The checkpoint is committed with the model, so the position is
		// always the last checkpoint.
		LastCheckpoint: pos,
		Progress:       progress(st),
		// The epoch counts the read model's generations, which a
		// blue/green rebuild advances as a reset starts a new epoch in
		// KurrentDB.
		Epoch: int64(st.Generation),
		// A projector counts no events per run: its checkpoint, the
		// global position it dealt with last, says how far it got.
		EventsProcessedAfterRestart: int64(st.Position),
		// A projector reads one subscription and writes one transaction
		// at a time, and keeps no partitions or write buffers: the
		// remaining counters stay 0.
	}
}

// kurrentStatus is the KurrentDB status of st and the reason that goes
// with it: Annals' state, and the last error when it failed.
func kurrentStatus(st ProjectionStatus) (string, string) {
	reason := st.State
	switch st.State {
	case stateRunning, stateRebuilding:
		if st.Rebuild != nil {
			reason += fmt.Sprintf(" (generation %d rebuilding at position %d)", st.Rebuild.Generation, st.Rebuild.Position)
		}
		return kurrentRunning, reason
	case statePaused, stateStopped, stateStandby:
		return kurrentStopped, reason
	}
	// Failed, or a status that could not be read ("unknown").
	if st.LastError != "" {
		reason += ": " + st.LastError
	}
	return kurrentFaulted, reason
}

// kurrentPosition writes a global position as KurrentDB writes a
// checkpoint of $all: commit and prepare positions, which are one number
// in Annals.
func kurrentPosition(pos annals.Position) string {
	return fmt.Sprintf("C:%d/P:%d", pos, pos)
}

// progress is how far the projection is through the log, in percent: its
// checkpoint over the store's head, and all the way once it has no lag.
func progress(st ProjectionStatus) float32 {
	if st.Lag == 0 || st.Head == 0 {
		return fullProgress
	}
	return float32(float64(st.Position) / float64(st.Head) * fullProgress)
}
