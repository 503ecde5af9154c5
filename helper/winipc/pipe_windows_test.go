package winipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

func testPipe(t *testing.T) string {
	t.Helper()
	sid, err := CurrentUserSID()
	if err != nil {
		t.Fatal(err)
	}
	return PipeName(sid, fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()))
}

// TestPipeBothWays writes and reads at the same time in both directions: a
// synchronous pipe handle would serialise the two and stall.
func TestPipeBothWays(t *testing.T) {
	name := testPipe(t)
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE; the agent's named lock
	// is what keeps a second agent out there.
	if ln2, err := Listen(name); err == nil {
		ln2.Close() // its waiting instance would take the clients below
		if !UnderWine() {
			t.Fatal("a second Listen on the same pipe succeeded")
		}
	}
	const n = 3
	ended := make(chan struct{}, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			c, err := ln.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			go func() {
				defer func() { c.Close(); ended <- struct{}{} }()
				b := make([]byte, 32<<10)
				for {
					n, err := c.Read(b)
					if n > 0 {
						if _, err := c.Write(b[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		c, err := Dial(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		msg := make([]byte, 256<<10) // over the pipe buffer: needs both ways at once
		for j := range msg {
			msg[j] = byte(i + j)
		}
		werr := make(chan error, 1)
		go func() { _, err := c.Write(msg); werr <- err }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("conn %d read: %v", i, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("conn %d write: %v", i, err)
		}
		for j := range got {
			if got[j] != msg[j] {
				t.Fatalf("conn %d byte %d differs", i, j)
			}
		}
		c.Close()
		<-ended // the server saw the end of this connection
	}
	wg.Wait()
}

func TestDialMissingAndDeadline(t *testing.T) {
	name := testPipe(t)
	if _, err := Dial(context.Background(), name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dial a missing pipe: %v, want ErrNotExist", err)
	}
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(10 * time.Second) // says nothing
		}
	}()
	c, err := Dial(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want ErrDeadlineExceeded", err)
	}
	// Close unblocks an Accept in progress.
	done := make(chan error, 1)
	ln2, err := Listen(testPipe(t))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, err := ln2.Accept(); done <- err }()
	time.Sleep(100 * time.Millisecond)
	ln2.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close did not end a pending Accept")
	}
	ln.Close()
}

func TestNamedLock(t *testing.T) {
	name := LockName(testPipe(t), "agent")
	release, held, err := NamedLock(name)
	if err != nil || held {
		t.Fatalf("first lock: held=%v err=%v", held, err)
	}
	if _, held, err := NamedLock(name); err != nil || !held {
		t.Fatalf("second lock: held=%v err=%v, want held", held, err)
	}
	release()
	again, held, err := NamedLock(name)
	if err != nil || held {
		t.Fatalf("after release: held=%v err=%v", held, err)
	}
	again()
}
