package persistent

import (
	"context"
	"time"

	"github.com/annals/annals"
	"github.com/google/uuid"
)

// Delivery is one event handed to a consumer.
type Delivery struct {
	Event annals.Event
	// RetryCount is how many times the event was retried before this
	// delivery (0 the first time).
	RetryCount int
}

// ConnectOptions describe a consumer.
type ConnectOptions struct {
	// BufferSize is how many events the consumer may hold unacknowledged
	// (1 to MaxConsumerBufferSize; 0 means 10, the clients' default).
	BufferSize int
	// Name tells the consumer apart in GroupInfo (an address, say).
	Name string
}

// Consumer is one connection to a group. Next, Ack, Nack and Close may be
// called from different goroutines.
type Consumer struct {
	g *group
	k *consumer
}

// Connect joins a group as a consumer. The group starts reading when its
// first consumer connects.
func (m *Manager) Connect(stream, name string, opts ConnectOptions) (*Consumer, error) {
	if opts.BufferSize == 0 {
		opts.BufferSize = 10
	}
	if opts.BufferSize < 0 || opts.BufferSize > MaxConsumerBufferSize {
		return nil, invalid("bufferSize", "is %d, must be from 1 to %d", opts.BufferSize, MaxConsumerBufferSize)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g, err := m.lookup(stream, name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped != nil {
		return nil, g.stopped // a restart that could not load it again
	}
	if len(g.core.consumers) >= g.def.Settings.consumerCap() {
		return nil, ErrMaxSubscribers
	}
	k := &consumer{id: uuid.NewString(), name: opts.Name, bufferSize: opts.BufferSize,
		connectedAt: time.Now().UTC(), wake: make(chan struct{}, 1)}
	g.core.connect(k)
	g.start()
	g.core.dispatch(time.Now())
	return &Consumer{g: g, k: k}, nil
}

// ID identifies the consumer (KurrentDB's subscription id).
func (c *Consumer) ID() string { return c.k.id }

// Next waits for the next delivery. It fails with ErrDropped, ErrStopped
// or ErrClosed when the consumer was cut off, or ctx's error.
func (c *Consumer) Next(ctx context.Context) (Delivery, error) {
	for {
		c.g.mu.Lock()
		d, ok := c.g.core.take(c.k)
		dropped := c.k.dropped
		c.g.mu.Unlock()
		if ok {
			return d, nil
		}
		if dropped != nil {
			return Delivery{}, dropped
		}
		select {
		case <-c.k.wake:
		case <-ctx.Done():
			return Delivery{}, ctx.Err()
		}
	}
}

// Ack marks events handled. Ids the group does not hold (acknowledged
// already, or never delivered) are ignored.
func (c *Consumer) Ack(ids ...uuid.UUID) {
	c.g.mu.Lock()
	c.g.core.ack(ids)
	c.g.core.dispatch(time.Now())
	c.g.mu.Unlock()
	c.g.signalRoom()
}

// Nack reports events this consumer could not handle and what to do with
// them. Ids not in flight to this consumer are ignored. reason is for the
// log only.
func (c *Consumer) Nack(action NackAction, reason string, ids ...uuid.UUID) {
	c.g.mu.Lock()
	if c.g.core.nack(c.k, action, ids) {
		c.g.core.disconnect(c.k, ErrStopped)
	}
	parking := len(c.g.core.parking) > 0
	c.g.core.dispatch(time.Now())
	c.g.mu.Unlock()
	if parking {
		c.g.signalKick()
	}
	c.g.signalRoom()
}

// Close leaves the group: the events in flight to the consumer go to the
// others.
func (c *Consumer) Close() {
	c.g.mu.Lock()
	if c.k.dropped == nil {
		c.g.core.disconnect(c.k, ErrClosed)
		c.g.core.dispatch(time.Now())
	}
	c.g.mu.Unlock()
	c.g.signalRoom()
}
