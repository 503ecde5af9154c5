package probe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLoopbackOnlyGuard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Setenv(EnvLoopbackOnly, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := newDialer().DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("loopback must stay reachable under the guard: %v", err)
	}
	c.Close()
	// 192.0.2.1 is TEST-NET-1; the guard refuses it before connect(2), so
	// nothing is sent.
	for _, addr := range []string{"192.0.2.1:443", "[2001:db8::1]:443", "[::ffff:192.0.2.1]:80"} {
		_, err := newDialer().DialContext(ctx, "tcp", addr)
		if err == nil || !strings.Contains(err.Error(), EnvLoopbackOnly) {
			t.Errorf("dial %s under the guard: err = %v, want a refusal naming %s", addr, err, EnvLoopbackOnly)
		}
	}
	// The resolver's own upstream connections are guarded too.
	if r := systemResolver(); r.Dial == nil {
		t.Error("under the guard the system resolver must dial through the guarded dialer")
	}
}
