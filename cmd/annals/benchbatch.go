package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The official Go client appends with one Append call per append. The .NET
// and Node clients, when a server advertises BatchAppend, pipeline every
// append of a connection on one long-lived BatchAppend call; the bench's
// batch run does the same with the generated client, so both costs are on
// record.

// batchPipe pipelines appends on one BatchAppend call.
type batchPipe struct {
	conn *grpc.ClientConn
	call grpc.BidiStreamingClient[streams.BatchAppendReq, streams.BatchAppendResp]

	sendMu sync.Mutex
	mu     sync.Mutex
	wait   map[uuid.UUID]chan *streams.BatchAppendResp
	err    error // set when the call ended; every later append fails with it
}

// dialBatch opens a connection and a BatchAppend call to the server at url.
func dialBatch(ctx context.Context, url string) (*batchPipe, error) {
	cfg, err := kurrentdb.ParseConnectionString(url)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	if len(cfg.GossipSeeds) > 0 || cfg.Address == "" {
		return nil, usagef("--server: the batch run needs a single host")
	}
	creds := insecure.NewCredentials()
	if !cfg.DisableTLS {
		creds = credentials.NewTLS(&tls.Config{RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.SkipCertificateVerification, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	if cfg.Username != "" {
		basic := base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+basic)
	}
	call, err := streams.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := &batchPipe{conn: conn, call: call, wait: make(map[uuid.UUID]chan *streams.BatchAppendResp)}
	go p.receive()
	return p, nil
}

func (p *batchPipe) receive() {
	for {
		resp, err := p.call.Recv()
		if err != nil {
			p.mu.Lock()
			p.err = err
			for id, ch := range p.wait {
				close(ch)
				delete(p.wait, id)
			}
			p.mu.Unlock()
			return
		}
		id, err := uuidOf(resp.GetCorrelationId())
		p.mu.Lock()
		ch := p.wait[id]
		delete(p.wait, id)
		p.mu.Unlock()
		if err == nil && ch != nil {
			ch <- resp
		}
	}
}

func uuidOf(u *shared.UUID) (uuid.UUID, error) {
	return uuid.Parse(u.GetString_())
}

// append appends one event of benchPayloadBytes to stream, with any
// expected revision, and waits for its answer.
func (p *batchPipe) append(ctx context.Context, stream string) error {
	id := uuid.New()
	ch := make(chan *streams.BatchAppendResp, 1)
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return p.err
	}
	p.wait[id] = ch
	p.mu.Unlock()
	req := &streams.BatchAppendReq{
		CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		Options: &streams.BatchAppendReq_Options{
			StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
			ExpectedStreamPosition: &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}},
		},
		ProposedMessages: []*streams.BatchAppendReq_ProposedMessage{{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
			Metadata: map[string]string{"type": "Bench", "content-type": "application/octet-stream"},
			Data:     make([]byte, benchPayloadBytes),
		}},
		IsFinal: true,
	}
	p.sendMu.Lock()
	err := p.call.Send(req)
	p.sendMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case resp, ok := <-ch:
		switch {
		case !ok:
			return p.err
		case resp.GetError() != nil:
			return fmt.Errorf("batch append: %s", resp.GetError().GetMessage())
		}
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.wait, id)
		p.mu.Unlock()
		return ctx.Err()
	}
}

func (p *batchPipe) close() {
	p.sendMu.Lock()
	p.call.CloseSend()
	p.sendMu.Unlock()
	p.conn.Close()
}

// batchAppends runs single-event appends from writers goroutines pipelined
// on BatchAppend calls, one call per benchWritersPerConn writers.
func (b *bencher) batchAppends(ctx context.Context, writers int) (float64, error) {
	var pipes []*batchPipe
	defer func() {
		for _, p := range pipes {
			p.close()
		}
	}()
	callCtx, cancelCalls := context.WithCancel(ctx)
	defer cancelCalls()
	for len(pipes) < (writers+benchWritersPerConn-1)/benchWritersPerConn {
		p, err := dialBatch(callCtx, b.url)
		if err != nil {
			return 0, err
		}
		pipes = append(pipes, p)
	}
	var n atomic.Int64
	run := uuid.NewString()[:8]
	secs, err := b.run(ctx, writers, func(ctx context.Context, w int, _ *kurrentdb.Client) error {
		err := pipes[w/benchWritersPerConn].append(ctx, fmt.Sprintf("batch-%s-%d", run, w))
		if err == nil {
			n.Add(1)
		} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil // the run is over
		}
		return err
	})
	return float64(n.Load()) / secs, err
}
