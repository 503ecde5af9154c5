// Package localapitest serves a stand-in agent on a helper's socket, for
// tests of the agent's clients (the localapi client, the relay, doctor) that
// need to control exactly what the agent says.
package localapitest

import (
	"net"
	"testing"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

// Handler answers one frame. req is the parsed request (err set when the
// frame is not one); raw is the frame. It writes any replies or events to w
// and returns false to hang up the connection without reading further.
type Handler func(req protocol.Request, err error, raw []byte, w *nativemsg.Writer) bool

// Serve listens on dirs.Socket() and runs h for every frame on every
// connection until the test ends. It returns the listener so a handler can
// stop accepting (an agent that has died).
func Serve(t testing.TB, dirs paths.Dirs, h Handler) net.Listener {
	t.Helper()
	ln, err := net.Listen("unix", dirs.Socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r, w := nativemsg.NewReader(c), nativemsg.NewWriter(c)
				for {
					b, err := r.Read()
					if err != nil {
						return
					}
					req, perr := protocol.ParseRequest(b)
					if !h(req, perr, b, w) {
						return
					}
				}
			}(c)
		}
	}()
	return ln
}
