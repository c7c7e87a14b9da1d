package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// silentServer accepts TCP connections and never answers on them, as a
// PostgreSQL behind a black hole does. accepted is closed on the first.
func silentServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	var once sync.Once
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(first) })
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), first
}

// interruptHangGuard is far above the moment an interrupted command takes
// to exit, and below postgresOpenTimeout, which bounded the open before it
// followed the signal.
const interruptHangGuard = 20 * time.Second

// Ctrl-C while connecting to a PostgreSQL that never answers stops the
// command at once, for a data command and for serve.
func TestInterruptWhileOpeningPostgres(t *testing.T) {
	for _, args := range [][]string{{"read-all"}, {"serve", "--listen", "127.0.0.1:0"}} {
		t.Run(args[0], func(t *testing.T) {
			addr, accepted := silentServer(t)
			dsn := "postgres://postgres@" + addr + "/test?sslmode=disable"
			cmd := exec.Command(os.Args[0], append(args, "--postgres", dsn)...)
			cmd.Env = append(os.Environ(), "ANNALS_AS_MAIN=1")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-accepted:
			case err := <-exited:
				t.Fatalf("exited before connecting: %v, stderr %q", err, stderr.String())
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err == nil {
					t.Fatalf("exit 0 when interrupted before the store opened; stderr %q", stderr.String())
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("stderr %q does not say interrupted", stderr.String())
				}
			case <-time.After(interruptHangGuard):
				cmd.Process.Kill()
				t.Fatalf("still connecting %v after Ctrl-C", interruptHangGuard)
			}
		})
	}
}
