package localapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

// ErrNoAgent wraps the error Connect returns when no agent answers on the
// socket (and, with Options.Start, none could be started): callers that can
// do the work without an agent (suggest, sync, enrol) fall back on it, and
// doctor reports it as "not running" rather than as a broken agent.
var ErrNoAgent = errors.New("localapi: no agent answers")

// Options configure Connect.
type Options struct {
	Dirs paths.Dirs
	// Caller is who is calling, sent as hello's `browser`: protocol.CallerCLI
	// or protocol.CallerTray (default CallerCLI).
	Caller string
	// Start, when set, is the detour binary to start as `Start agent` when
	// no agent answers (EnsureAgent). Empty: connect to a running agent only.
	Start string
}

// Connect reaches the agent and says hello once, so that every typed method
// on the returned client runs on a connection the agent has accepted. The
// hello reply is kept (Client.Hello). An agent that refuses hello (another
// protocol version) is an error that does not wrap ErrNoAgent.
func Connect(ctx context.Context, o Options) (*Client, error) {
	if o.Start != "" {
		if err := EnsureAgent(ctx, o.Dirs, o.Start); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoAgent, err)
		}
	}
	conn, err := DialConn(ctx, o.Dirs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoAgent, err)
	}
	c := NewClient(conn)
	if err := c.Handshake(ctx, o.Caller); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Handshake sends hello as caller (default protocol.CallerCLI) and keeps the
// reply. Connect does it; a client made with NewClient over a connection of
// its own calls it once before the typed methods.
func (c *Client) Handshake(ctx context.Context, caller string) error {
	if caller == "" {
		caller = protocol.CallerCLI
	}
	var h protocol.HelloResult
	if err := c.Call(ctx, "hello", protocol.HelloParams{Version: protocol.Version, Browser: caller}, &h); err != nil {
		return fmt.Errorf("localapi: hello: %w", err)
	}
	c.mu.Lock()
	c.hello = &h
	c.mu.Unlock()
	return nil
}

// Hello is the agent's answer to the hello sent by Connect (or Handshake):
// its version, capabilities, enrolment and whitelist version at that moment.
// It is the zero value on a client that has not said hello.
func (c *Client) Hello() protocol.HelloResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hello == nil {
		return protocol.HelloResult{}
	}
	return *c.hello
}
