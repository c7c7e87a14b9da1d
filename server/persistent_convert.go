package server

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/annals/annals"
	ps "github.com/annals/annals/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
)

// ticksPerMs: KurrentDB's older clients send durations in .NET ticks.
const ticksPerMs = 10_000

// settingsProto is what CreateReq_Settings and UpdateReq_Settings have in
// common.
type settingsProto interface {
	GetResolveLinks() bool
	GetExtraStatistics() bool
	GetMaxRetryCount() int32
	GetMinCheckpointCount() int32
	GetMaxCheckpointCount() int32
	GetMaxSubscriberCount() int32
	GetLiveBufferSize() int32
	GetReadBatchSize() int32
	GetHistoryBufferSize() int32
	GetMessageTimeoutTicks() int64
	GetMessageTimeoutMs() int32
	GetCheckpointAfterTicks() int64
	GetCheckpointAfterMs() int32
}

// settingsFromProto reads the settings common to Create and Update;
// strategy is already read (the two messages carry it differently).
func settingsFromProto(p settingsProto, strategy ps.Strategy) (ps.Settings, error) {
	if p == nil {
		return ps.Settings{}, errors.New("the settings are missing")
	}
	s := ps.Settings{
		ResolveLinkTos:       p.GetResolveLinks(),
		ExtraStatistics:      p.GetExtraStatistics(),
		MaxRetryCount:        int(p.GetMaxRetryCount()),
		CheckpointLowerBound: int(p.GetMinCheckpointCount()),
		CheckpointUpperBound: int(p.GetMaxCheckpointCount()),
		MaxSubscriberCount:   int(p.GetMaxSubscriberCount()),
		LiveBufferSize:       int(p.GetLiveBufferSize()),
		ReadBatchSize:        int(p.GetReadBatchSize()),
		HistoryBufferSize:    int(p.GetHistoryBufferSize()),
		MessageTimeoutMs:     int64(p.GetMessageTimeoutMs()),
		CheckpointAfterMs:    int64(p.GetCheckpointAfterMs()),
		Strategy:             strategy,
	}
	if t := p.GetMessageTimeoutTicks(); t != 0 {
		s.MessageTimeoutMs = t / ticksPerMs
	}
	if t := p.GetCheckpointAfterTicks(); t != 0 {
		s.CheckpointAfterMs = t / ticksPerMs
	}
	return s, s.Validate()
}

func strategyFromEnum(v int32) (ps.Strategy, error) {
	switch v {
	case int32(persistent.CreateReq_DispatchToSingle):
		return ps.DispatchToSingle, nil
	case int32(persistent.CreateReq_RoundRobin):
		return ps.RoundRobin, nil
	case int32(persistent.CreateReq_Pinned):
		return ps.Pinned, nil
	}
	return "", fmt.Errorf("unknown consumer strategy %d", v)
}

// createConfig reads a Create request.
func createConfig(req *persistent.CreateReq) (ps.Config, error) {
	o := req.GetOptions()
	if o == nil {
		return ps.Config{}, errors.New("create options are missing")
	}
	set := o.GetSettings()
	strategy := ps.Strategy(set.GetConsumerStrategy())
	if strategy == "" {
		var err error
		if strategy, err = strategyFromEnum(int32(set.GetNamedConsumerStrategy())); err != nil {
			return ps.Config{}, err
		}
	}
	s, err := settingsFromProto(set, strategy)
	if err != nil {
		return ps.Config{}, err
	}
	c := ps.Config{Group: o.GetGroupName()}
	switch {
	case o.GetAll() != nil:
		all := o.GetAll()
		c.Stream = annals.AllStream
		s.StartFrom = positionStart(all.GetStart() != nil, all.GetEnd() != nil || all.GetAllOption() == nil, all.GetPosition().GetCommitPosition())
		if c.Filter, err = persistentFilter(all.GetFilter()); err != nil {
			return ps.Config{}, err
		}
	case o.GetStream() != nil:
		so := o.GetStream()
		c.Stream = string(so.GetStreamIdentifier().GetStreamName())
		s.StartFrom = revisionStart(so.GetStart() != nil, so.GetEnd() != nil || so.GetRevisionOption() == nil, so.GetRevision())
	default:
		// Clients before 21.10 name the stream outside the oneof and the
		// start in the settings (^0 is the end).
		c.Stream = string(o.GetStreamIdentifier().GetStreamName())
		s.StartFrom = set.GetRevision()
	}
	c.Settings = s
	return c, nil
}

// updateConfig reads an Update request.
func updateConfig(req *persistent.UpdateReq) (ps.Config, error) {
	o := req.GetOptions()
	if o == nil {
		return ps.Config{}, errors.New("update options are missing")
	}
	strategy, err := strategyFromEnum(int32(o.GetSettings().GetNamedConsumerStrategy()))
	if err != nil {
		return ps.Config{}, err
	}
	s, err := settingsFromProto(o.GetSettings(), strategy)
	if err != nil {
		return ps.Config{}, err
	}
	c := ps.Config{Group: o.GetGroupName()}
	switch {
	case o.GetAll() != nil:
		all := o.GetAll()
		c.Stream = annals.AllStream
		s.StartFrom = positionStart(all.GetStart() != nil, all.GetEnd() != nil || all.GetAllOption() == nil, all.GetPosition().GetCommitPosition())
	case o.GetStream() != nil:
		so := o.GetStream()
		c.Stream = string(so.GetStreamIdentifier().GetStreamName())
		s.StartFrom = revisionStart(so.GetStart() != nil, so.GetEnd() != nil || so.GetRevisionOption() == nil, so.GetRevision())
	default:
		c.Stream = string(o.GetStreamIdentifier().GetStreamName())
		s.StartFrom = o.GetSettings().GetRevision()
	}
	c.Settings = s
	return c, nil
}

// revisionStart and positionStart are where a group starts: KurrentDB's
// persistent subscriptions start at the revision or position they name
// (unlike catch-up subscriptions, which start after it).
func revisionStart(start, end bool, rev uint64) uint64 {
	switch {
	case start:
		return annals.Start
	case end:
		return annals.End
	}
	return rev
}

func positionStart(start, end bool, pos uint64) uint64 {
	switch {
	case start:
		return annals.Start
	case end:
		return annals.End
	}
	return pos
}

func persistentFilter(f *persistent.CreateReq_AllOptions_FilterOptions) (*annals.Filter, error) {
	switch {
	case f == nil:
		return nil, nil
	case f.GetStreamIdentifier() != nil:
		return filterOf(annals.FilterStreamName, f.GetStreamIdentifier())
	case f.GetEventType() != nil:
		return filterOf(annals.FilterEventType, f.GetEventType())
	}
	return nil, errors.New("the filter names neither stream names nor event types")
}

// streamOption is the stream-or-$all choice of the Delete, GetInfo,
// ReplayParked and Read options.
type streamOption interface {
	GetStreamIdentifier() *shared.StreamIdentifier
	GetAll() *shared.Empty
}

func groupStream(o streamOption) (string, error) {
	switch {
	case o.GetAll() != nil:
		return annals.AllStream, nil
	case o.GetStreamIdentifier() != nil:
		return string(o.GetStreamIdentifier().GetStreamName()), nil
	}
	return "", errors.New("the options name neither a stream nor $all")
}

// persistentEvent puts a delivery on the wire.
func persistentEvent(d ps.Delivery, uuidAsString bool) *persistent.ReadResp {
	r := recordedToProto(&d.Event, uuidAsString).GetEvent()
	return &persistent.ReadResp{Content: &persistent.ReadResp_Event{Event: &persistent.ReadResp_ReadEvent{
		Event: &persistent.ReadResp_ReadEvent_RecordedEvent{
			Id: r.Id, StreamIdentifier: r.StreamIdentifier, StreamRevision: r.StreamRevision,
			PreparePosition: r.PreparePosition, CommitPosition: r.CommitPosition,
			Metadata: r.Metadata, CustomMetadata: r.CustomMetadata, Data: r.Data,
		},
		Position: &persistent.ReadResp_ReadEvent_CommitPosition{CommitPosition: uint64(d.Event.Position)},
		Count:    &persistent.ReadResp_ReadEvent_RetryCount{RetryCount: int32(min(d.RetryCount, 1<<31-1))},
	}}}
}

// where writes a revision, or an $all position as KurrentDB does.
func where(all bool, v uint64) string {
	if all {
		return fmt.Sprintf("C:%d/P:%d", v, v)
	}
	return strconv.FormatUint(v, 10)
}

// startText is where a group starts, as KurrentDB reports it: -1 (and
// C:-1/P:-1 on $all) for a group asked to start at the end.
func startText(all bool, s ps.Settings) string {
	switch {
	case s.FromEnd && all:
		return "C:-1/P:-1"
	case s.FromEnd:
		return "-1"
	}
	return where(all, s.StartFrom)
}

func clamp32(v int64) int32 { return int32(min(max(v, -1<<31), 1<<31-1)) }

// infoToProto describes a group with the fields Annals tracks; the rates
// and extra statistics KurrentDB measures are left zero.
func infoToProto(i ps.GroupInfo) *persistent.SubscriptionInfo {
	all := i.Stream == annals.AllStream
	s := i.Settings
	out := &persistent.SubscriptionInfo{
		EventSource:                 i.Stream,
		GroupName:                   i.Group,
		Status:                      i.Status,
		ResolveLinkTos:              s.ResolveLinkTos,
		StartFrom:                   startText(all, s),
		MessageTimeoutMilliseconds:  clamp32(s.MessageTimeoutMs),
		ExtraStatistics:             s.ExtraStatistics,
		MaxRetryCount:               clamp32(int64(s.MaxRetryCount)),
		LiveBufferSize:              clamp32(int64(s.LiveBufferSize)),
		BufferSize:                  clamp32(int64(s.HistoryBufferSize)),
		ReadBatchSize:               clamp32(int64(s.ReadBatchSize)),
		CheckPointAfterMilliseconds: clamp32(s.CheckpointAfterMs),
		MinCheckPointCount:          clamp32(int64(s.CheckpointLowerBound)),
		MaxCheckPointCount:          clamp32(int64(s.CheckpointUpperBound)),
		RetryBufferCount:            clamp32(int64(i.Retrying)),
		TotalInFlightMessages:       clamp32(int64(i.InFlight)),
		OutstandingMessagesCount:    clamp32(int64(i.Outstanding)),
		NamedConsumerStrategy:       string(s.Strategy),
		MaxSubscriberCount:          clamp32(int64(s.MaxSubscriberCount)),
		ParkedMessageCount:          i.Parked,
		TotalItems:                  int64(min(i.Delivered, 1<<63-1)),
	}
	if i.Status == ps.StatusLive {
		out.LiveBufferCount = int64(i.Buffered)
	} else {
		out.ReadBufferCount = clamp32(int64(i.Buffered))
	}
	// KurrentDB reports the last event processed; Annals' checkpoint is
	// the first one not processed.
	if i.HasCheckpoint && i.Checkpoint > 0 {
		out.LastCheckpointedEventPosition = where(all, i.Checkpoint-1)
	}
	if i.HasLastKnown {
		out.LastKnownEventPosition = where(all, i.LastKnown)
	}
	for _, c := range i.Connections {
		out.Connections = append(out.Connections, &persistent.SubscriptionInfo_ConnectionInfo{
			From:             c.Name,
			TotalItems:       int64(min(c.Delivered, 1<<63-1)),
			AvailableSlots:   clamp32(int64(c.BufferSize - c.InFlight)),
			InFlightMessages: clamp32(int64(c.InFlight)),
			ConnectionName:   c.ID,
		})
	}
	return out
}
