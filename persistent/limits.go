package persistent

import "time"

// Bounds of the engine. Settings beyond them are refused (counts) or
// clamped (buffers), as documented on Settings.
const (
	// MaxGroups bounds the groups of one manager: every definition is kept
	// in memory and written as one event of the config stream.
	MaxGroups = 512
	// MaxGroupNameBytes bounds a group's name.
	MaxGroupNameBytes = 256
	// MaxConsumersPerGroup bounds the consumers connected to one group,
	// whatever the group's MaxSubscriberCount says.
	MaxConsumersPerGroup = 128
	// MaxConsumerBufferSize bounds the messages in flight to one consumer.
	MaxConsumerBufferSize = 1000
	// MaxBufferMessages bounds a group's read buffer (the larger of its
	// history and live buffer sizes is clamped to it).
	MaxBufferMessages = 10_000
	// MaxWindowMessages bounds the events read from the store and not yet
	// released by the checkpoint: one unfinished event holds back every
	// later one, so a group stops reading when this many are pending.
	MaxWindowMessages = 16_384
	// MaxGroupBufferedBytes bounds the event payloads a group holds in
	// memory (buffered, to retry, in flight).
	MaxGroupBufferedBytes = 32 << 20
	// MaxReplayMessages bounds the parked messages one replay brings back;
	// ask again for the rest.
	MaxReplayMessages = 10_000
	// MaxRetryCountLimit bounds MaxRetryCount.
	MaxRetryCountLimit = 1_000_000
	// MaxMessageTimeoutMs bounds MessageTimeoutMs (one day).
	MaxMessageTimeoutMs = 24 * 60 * 60 * 1000
	// MaxCheckpointAfterMs bounds CheckpointAfterMs (one day).
	MaxCheckpointAfterMs = 24 * 60 * 60 * 1000
	// MaxCheckpointCount bounds the checkpoint counts.
	MaxCheckpointCount = 1_000_000

	// tickInterval is how often a running group looks for timed-out
	// messages and due checkpoints.
	tickInterval = 100 * time.Millisecond
	// resubscribeDelay is the pause before a group reading from a failed
	// store subscription tries again.
	resubscribeDelay = time.Second
)
