// Package localapi is the client side of the agent's local socket: the relay,
// the command line and the tray use it to reach `detour agent`, starting the
// agent when none runs. The socket speaks the native-messaging framing and
// protocol (shared/protocol/PROTOCOL.md).
package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

// ErrClosed is returned by Call once the connection to the agent has ended.
var ErrClosed = errors.New("localapi: connection to the agent closed")

// eventBuffer is how many events a client holds for a consumer that is not
// reading; beyond it events are dropped (they describe state that a status
// call can fetch again), never replies.
const eventBuffer = 64

// Client is one connection to the agent. Calls may run concurrently.
type Client struct {
	conn   net.Conn
	w      *nativemsg.Writer
	events chan protocol.Event
	done   chan struct{}

	mu      sync.Mutex
	next    int64
	pending map[int64]chan protocol.Envelope
	err     error
	hello   *protocol.HelloResult
}

// DialConn connects to the agent's socket without starting anything; the
// relay uses the raw connection to pass frames through unchanged.
func DialConn(ctx context.Context, dirs paths.Dirs) (net.Conn, error) {
	return dial(ctx, dirs)
}

// Dial connects to a running agent without saying hello. Use Connect, which
// also starts the agent when asked and says hello once.
func Dial(ctx context.Context, dirs paths.Dirs) (*Client, error) {
	conn, err := DialConn(ctx, dirs)
	if err != nil {
		return nil, err
	}
	return NewClient(conn), nil
}

// NewClient runs the protocol over an established connection (the agent's
// socket, or one end of a net.Pipe in tests).
func NewClient(conn net.Conn) *Client {
	c := &Client{
		conn:    conn,
		w:       nativemsg.NewWriter(conn),
		events:  make(chan protocol.Event, eventBuffer),
		done:    make(chan struct{}),
		pending: map[int64]chan protocol.Envelope{},
	}
	go c.readLoop()
	return c
}

// Events delivers the events the agent pushes. The channel is closed when the
// connection ends. A consumer that falls behind loses events, not replies.
func (c *Client) Events() <-chan protocol.Event { return c.events }

// Done is closed when the connection ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close ends the connection; pending calls return ErrClosed.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Call sends a request of type typ with the fields of params (a struct or
// map that encodes as a JSON object, or nil) and decodes the reply's result
// into result (nil to discard it). A reply with ok:false is returned as a
// *protocol.Error.
func (c *Client) Call(ctx context.Context, typ string, params any, result any) error {
	ch := make(chan protocol.Envelope, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	body, err := EncodeRequest(id, typ, params)
	if err != nil {
		forget()
		return err
	}
	if err := c.w.Write(body); err != nil {
		forget()
		return fmt.Errorf("localapi: send %s: %w", typ, err)
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return c.closedErr()
		}
		if !*rep.OK {
			if rep.Error == nil {
				return protocol.Errorf(protocol.CodeInternal, "%s failed without an error", typ)
			}
			return rep.Error
		}
		if result != nil && len(rep.Result) > 0 {
			if err := json.Unmarshal(rep.Result, result); err != nil {
				return fmt.Errorf("localapi: decode %s result: %w", typ, err)
			}
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("localapi: %s: %w", typ, ctx.Err())
	}
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// EncodeRequest builds the frame body {"id":id,"type":typ,...params}.
func EncodeRequest(id int64, typ string, params any) ([]byte, error) {
	t, err := json.Marshal(typ)
	if err != nil {
		return nil, fmt.Errorf("localapi: encode type: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%d,"type":%s`, id, t)
	if params != nil {
		p, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("localapi: encode %s params: %w", typ, err)
		}
		p = bytes.TrimSpace(p)
		if len(p) < 2 || p[0] != '{' {
			if string(p) != "null" {
				return nil, fmt.Errorf("localapi: %s params must encode as a JSON object, not %.20s", typ, p)
			}
			p = []byte("{}")
		}
		if inner := bytes.TrimSpace(p[1 : len(p)-1]); len(inner) > 0 {
			b.WriteByte(',')
			b.Write(inner)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (c *Client) readLoop() {
	r := nativemsg.NewReader(c.conn)
	var err error
	for {
		var body []byte
		body, err = r.Read()
		if err != nil {
			var fe *nativemsg.FrameError
			if errors.As(err, &fe) {
				continue // the agent never sends these; skip and read on
			}
			break
		}
		var env protocol.Envelope
		if json.Unmarshal(body, &env) != nil {
			continue
		}
		switch {
		case env.IsReply():
			c.mu.Lock()
			ch := c.pending[*env.ID]
			delete(c.pending, *env.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- env
			}
		case env.IsEvent():
			ev := protocol.Event{Type: env.Type, Data: env.Data}
			select {
			case c.events <- ev:
			default: // the consumer is behind: drop the event
			}
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %v", ErrClosed, err)
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	c.conn.Close()
	close(c.events)
	close(c.done)
}
