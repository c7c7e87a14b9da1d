package server

import (
	"context"
	"errors"

	"github.com/annals/annals"
	ps "github.com/annals/annals/persistent"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// KurrentDB's exception names for persistent subscriptions.
const (
	exceptionGroupNotFound  = "persistent-subscription-does-not-exist"
	exceptionGroupExists    = "persistent-subscription-exists"
	exceptionMaxSubscribers = "maximum-subscribers-reached"
	exceptionDropped        = "persistent-subscription-dropped"
)

// persistentServer serves PersistentSubscriptions with a persistent.Manager.
type persistentServer struct {
	persistent.UnimplementedPersistentSubscriptionsServer
	m        *ps.Manager
	stopping context.Context
}

// persistentStatus maps an engine error to a status and its trailers.
func persistentStatus(err error, stream, group string) (error, metadata.MD) {
	names := func(exception string) metadata.MD {
		return metadata.Pairs("exception", exception, "stream-name", stream, "group-name", group)
	}
	// The texts are KurrentDB's: the clients show them, and the Node
	// client's tests compare them.
	switch {
	case errors.Is(err, ps.ErrGroupNotFound):
		return status.Errorf(codes.NotFound, "Subscription group %s on stream %s does not exist.", group, stream), names(exceptionGroupNotFound)
	case errors.Is(err, ps.ErrGroupExists):
		return status.Errorf(codes.AlreadyExists, "Subscription group %s on stream %s exists.", group, stream), names(exceptionGroupExists)
	case errors.Is(err, ps.ErrMaxSubscribers):
		return status.Errorf(codes.FailedPrecondition, "Maximum subscriptions reached for subscription group %s on stream %s.", group, stream), names(exceptionMaxSubscribers)
	case errors.Is(err, ps.ErrTooManyGroups):
		return status.Error(codes.ResourceExhausted, err.Error()), nil
	case errors.Is(err, ps.ErrDropped):
		return status.Errorf(codes.Aborted, "Subscription group %s on stream %s was dropped.", group, stream), names(exceptionDropped)
	case errors.Is(err, ps.ErrStopped):
		return status.Error(codes.Aborted, err.Error()), names(exceptionDropped)
	case errors.Is(err, ps.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down"), nil
	}
	return toStatus(err)
}

func (p *persistentServer) unary(ctx context.Context, err error, stream, group string) error {
	st, md := persistentStatus(err, stream, group)
	if md != nil {
		_ = grpc.SetTrailer(ctx, md)
	}
	return st
}

func (p *persistentServer) Create(ctx context.Context, req *persistent.CreateReq) (*persistent.CreateResp, error) {
	c, err := createConfig(req)
	if err != nil {
		return nil, persistentBadRequest(ctx, err)
	}
	if err := p.m.Create(ctx, c); err != nil {
		return nil, p.unary(ctx, err, c.Stream, c.Group)
	}
	return &persistent.CreateResp{}, nil
}

func (p *persistentServer) Update(ctx context.Context, req *persistent.UpdateReq) (*persistent.UpdateResp, error) {
	c, err := updateConfig(req)
	if err != nil {
		return nil, persistentBadRequest(ctx, err)
	}
	if err := p.m.Update(ctx, c); err != nil {
		return nil, p.unary(ctx, err, c.Stream, c.Group)
	}
	return &persistent.UpdateResp{}, nil
}

func (p *persistentServer) Delete(ctx context.Context, req *persistent.DeleteReq) (*persistent.DeleteResp, error) {
	o := req.GetOptions()
	stream, err := groupStream(o)
	if err != nil {
		return nil, persistentBadRequest(ctx, err)
	}
	if err := p.m.Delete(ctx, stream, o.GetGroupName()); err != nil {
		return nil, p.unary(ctx, err, stream, o.GetGroupName())
	}
	return &persistent.DeleteResp{}, nil
}

func (p *persistentServer) GetInfo(ctx context.Context, req *persistent.GetInfoReq) (*persistent.GetInfoResp, error) {
	o := req.GetOptions()
	stream, err := groupStream(o)
	if err != nil {
		return nil, persistentBadRequest(ctx, err)
	}
	info, err := p.m.Info(stream, o.GetGroupName())
	if err != nil {
		return nil, p.unary(ctx, err, stream, o.GetGroupName())
	}
	return &persistent.GetInfoResp{SubscriptionInfo: infoToProto(info)}, nil
}

func (p *persistentServer) List(ctx context.Context, req *persistent.ListReq) (*persistent.ListResp, error) {
	o := req.GetOptions()
	var stream string
	switch {
	case o.GetListAllSubscriptions() != nil:
	case o.GetListForStream().GetAll() != nil:
		stream = annals.AllStream
	case o.GetListForStream().GetStream() != nil:
		stream = string(o.GetListForStream().GetStream().GetStreamName())
	default:
		return nil, persistentBadRequest(ctx, errors.New("list options name neither all groups nor a stream"))
	}
	infos, err := p.m.List(stream)
	if err != nil {
		return nil, p.unary(ctx, err, stream, "")
	}
	if stream != "" && len(infos) == 0 {
		// KurrentDB answers a stream without groups as a missing group.
		return nil, p.unary(ctx, ps.ErrGroupNotFound, stream, "")
	}
	resp := &persistent.ListResp{}
	for _, i := range infos {
		resp.Subscriptions = append(resp.Subscriptions, infoToProto(i))
	}
	return resp, nil
}

func (p *persistentServer) ReplayParked(ctx context.Context, req *persistent.ReplayParkedReq) (*persistent.ReplayParkedResp, error) {
	o := req.GetOptions()
	stream, err := groupStream(o)
	if err != nil {
		return nil, persistentBadRequest(ctx, err)
	}
	var stopAt annals.Revision
	if o.GetNoLimit() == nil {
		if o.GetStopAt() < 0 {
			return nil, persistentBadRequest(ctx, errors.New("stop_at is negative"))
		}
		stopAt = annals.Revision(o.GetStopAt())
	}
	if err := p.m.ReplayParked(ctx, stream, o.GetGroupName(), stopAt); err != nil {
		return nil, p.unary(ctx, err, stream, o.GetGroupName())
	}
	return &persistent.ReplayParkedResp{}, nil
}

func (p *persistentServer) RestartSubsystem(ctx context.Context, _ *shared.Empty) (*shared.Empty, error) {
	if err := p.m.Restart(ctx); err != nil {
		return nil, p.unary(ctx, err, "", "")
	}
	return &shared.Empty{}, nil
}

// Read connects a consumer: options, then a confirmation with the
// consumer's id, then events while the client acks and nacks them by id.
// The consumer's unacknowledged events go to the others when the call
// ends, however it ends.
func (p *persistentServer) Read(stream grpc.BidiStreamingServer[persistent.ReadReq, persistent.ReadResp]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(p.stopping, cancel) // Shutdown ends consumers
	defer stop()

	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return invalidArgument(errors.New("a persistent read starts with its options"))
	}
	name, err := groupStream(opts)
	if err != nil {
		return invalidArgument(err)
	}
	from := ""
	if pr, ok := peer.FromContext(ctx); ok {
		from = pr.Addr.String()
	}
	c, err := p.m.Connect(name, opts.GetGroupName(), ps.ConnectOptions{BufferSize: int(opts.GetBufferSize()), Name: from})
	if err != nil {
		st, md := persistentStatus(err, name, opts.GetGroupName())
		if md != nil {
			stream.SetTrailer(md)
		}
		return st
	}
	defer c.Close()
	uuidAsString := opts.GetUuidOption().GetString_() != nil
	if err := stream.Send(&persistent.ReadResp{Content: &persistent.ReadResp_SubscriptionConfirmation_{
		SubscriptionConfirmation: &persistent.ReadResp_SubscriptionConfirmation{SubscriptionId: c.ID()}}}); err != nil {
		return err
	}

	// Acks and nacks arrive while events go out.
	recvErr := make(chan error, 1)
	go func() {
		defer cancel()
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if err := applyAcks(c, req); err != nil {
				recvErr <- invalidArgument(err)
				return
			}
		}
	}()
	for {
		d, err := c.Next(ctx)
		if err != nil {
			select {
			case rerr := <-recvErr:
				if status.Code(rerr) == codes.InvalidArgument {
					return rerr
				}
			default:
			}
			switch {
			case p.stopping.Err() != nil:
				return status.Error(codes.Unavailable, "the server is shutting down")
			case ctx.Err() != nil:
				return status.FromContextError(ctx.Err()).Err()
			}
			st, md := persistentStatus(err, name, opts.GetGroupName())
			if md != nil {
				stream.SetTrailer(md)
			}
			return st
		}
		if err := stream.Send(persistentEvent(d, uuidAsString)); err != nil {
			return err // the client went away
		}
	}
}

// applyAcks hands a client's ack or nack to its consumer.
func applyAcks(c *ps.Consumer, req *persistent.ReadReq) error {
	var wire []*shared.UUID
	switch {
	case req.GetAck() != nil:
		wire = req.GetAck().GetIds()
	case req.GetNack() != nil:
		wire = req.GetNack().GetIds()
	default:
		return errors.New("after its options a persistent read takes only acks and nacks")
	}
	ids := make([]uuid.UUID, 0, len(wire))
	for _, w := range wire {
		id, err := uuidFromProto(w)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if n := req.GetNack(); n != nil {
		action := ps.NackAction(n.GetAction())
		if action < ps.NackUnknown || action > ps.NackStop {
			return errors.New("unknown nack action")
		}
		c.Nack(action, n.GetReason(), ids...)
		return nil
	}
	c.Ack(ids...)
	return nil
}

// persistentBadRequest answers a malformed request.
func persistentBadRequest(ctx context.Context, err error) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", exceptionInvalidArgument))
	return invalidArgument(err)
}
