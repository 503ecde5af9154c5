package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/shared/protocol"
)

const (
	// replyQueue and eventQueue bound what one connection may have waiting.
	// A full reply queue makes that connection's handlers wait (replies are
	// never dropped); a full event queue drops the event for that client only.
	replyQueue = 32
	eventQueue = 64
	// maxInFlight bounds concurrent requests per connection; the reader
	// stops reading while it is reached, so a flood slows only its sender.
	maxInFlight = 16
	// writeTimeout closes a connection whose peer stops reading.
	writeTimeout = 10 * time.Second
)

// server accepts connections on the agent socket and runs the protocol on
// each: one reader goroutine, one writer goroutine, one goroutine a request.
type server struct {
	log     *slog.Logger
	reg     *Registry
	timeout time.Duration
	// validate, when set, checks a request against the protocol schema
	// before its handler runs; an error is answered with CodeInvalidParams.
	validate func(typ string, body []byte) error

	ready     chan struct{}
	readyOnce sync.Once

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func newServer(log *slog.Logger, timeout time.Duration) *server {
	return &server{log: log, timeout: timeout, ready: make(chan struct{}), conns: map[*conn]struct{}{}}
}

func (s *server) setReady() { s.readyOnce.Do(func() { close(s.ready) }) }

// conn is one client: a relay, the tray or a command.
type conn struct {
	c       net.Conn
	replies chan []byte
	events  chan []byte
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.c.Close()
	})
}

// serve accepts until the listener closes, then ends every connection and
// returns once their goroutines have.
func (s *server) serve(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.closeAll() // runs first: no Accept can add a connection any more
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("accept failed", "err", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return
		}
		c := &conn{c: nc, replies: make(chan []byte, replyQueue), events: make(chan []byte, eventQueue), done: make(chan struct{})}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Add(2)
		go func() { defer wg.Done(); s.write(c) }()
		go func() {
			defer wg.Done()
			s.read(ctx, c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// closeAll ends every connection (at shutdown).
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.close()
	}
}

// broadcast sends an event to every client without waiting for any: a client
// whose event queue is full misses this event.
func (s *server) broadcast(ev protocol.Event) {
	b, err := nativemsg.Marshal(ev)
	if err != nil || len(b) > nativemsg.MaxMessage {
		s.log.Error("event not sent", "type", ev.Type, "err", err, "bytes", len(b))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		select {
		case c.events <- b:
		default:
			if c.dropped.Add(1) == 1 {
				s.log.Warn("client is not reading; dropping events for it", "type", ev.Type)
			}
		}
	}
}

// write is the connection's only writer: replies first, then events.
func (s *server) write(c *conn) {
	defer c.close()
	w := nativemsg.NewWriter(c.c)
	send := func(b []byte) bool {
		c.c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := w.Write(b); err != nil {
			s.log.Debug("client write failed", "err", err)
			return false
		}
		return true
	}
	for {
		select {
		case b := <-c.replies:
			if !send(b) {
				return
			}
			continue
		default:
		}
		select {
		case b := <-c.replies:
			if !send(b) {
				return
			}
		case b := <-c.events:
			if !send(b) {
				return
			}
		case <-c.done:
			return
		}
	}
}

// reply queues a reply; it waits while the queue is full, and gives up only
// when the connection is gone.
func (c *conn) reply(r protocol.Reply) {
	b, err := nativemsg.Marshal(r)
	if err == nil && len(b) > nativemsg.MaxMessage {
		err = errors.New("reply over 1 MiB")
	}
	if err != nil {
		b, _ = nativemsg.Marshal(protocol.Reply{ID: r.ID, Type: r.Type, Error: protocol.Errorf(protocol.CodeInternal, "the %s reply could not be sent: %v", r.Type, err)})
	}
	select {
	case c.replies <- b:
	case <-c.done:
	}
}

func errorReply(id int64, typ string, err error) protocol.Reply {
	pe := protocol.AsError(err)
	return protocol.Reply{ID: id, Type: safeType(typ), OK: false, Error: &protocol.Error{Code: pe.Code, Message: safeText(pe.Message, 500)}}
}

// safeText keeps an error message within what the schema allows for text:
// messages may quote what a client sent, which may be hostile or huge.
func safeText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// safeType echoes a request's type only when it looks like one.
func safeType(t string) string {
	if len(t) == 0 || len(t) > 64 {
		return ""
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return ""
		}
	}
	return t
}

// read is the connection's only reader.
func (s *server) read(ctx context.Context, c *conn) {
	defer c.close()
	r := nativemsg.NewReader(c.c)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		body, err := r.Read()
		if err != nil {
			var fe *nativemsg.FrameError
			if errors.As(err, &fe) {
				c.reply(protocol.Reply{ID: 0, OK: false, Error: fe.ProtocolError()})
				continue
			}
			if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				s.log.Debug("client stream ended", "err", err)
			}
			return
		}
		req, err := protocol.ParseRequest(body)
		if err != nil {
			c.reply(errorReply(0, "", err))
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-c.done:
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rep, returned := s.handle(ctx, req)
			c.reply(rep)
			// A handler that overran its deadline was answered with
			// CodeTimeout, but it holds its slot until it really returns:
			// otherwise a stuck handler could pile up without bound behind
			// replies that say it is over.
			<-returned
		}()
	}
}

// handle runs one request with its deadline. A handler that overruns is
// answered with CodeTimeout; it keeps its cancelled context and its late
// result is dropped. The returned channel is closed when the handler has
// returned (at once when it never ran).
func (s *server) handle(ctx context.Context, req protocol.Request) (protocol.Reply, <-chan struct{}) {
	returned := make(chan struct{})
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	select {
	case <-s.ready:
	case <-ctx.Done():
		close(returned)
		return errorReply(req.ID, req.Type, protocol.Errorf(protocol.CodeTimeout, "the agent was still starting")), returned
	}
	type outcome struct {
		res any
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer close(returned)
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panicked", "type", req.Type, "panic", p)
				done <- outcome{err: protocol.Errorf(protocol.CodeInternal, "%s failed inside the agent", req.Type)}
			}
		}()
		if s.validate != nil && s.reg.has(req.Type) {
			if err := s.validate(req.Type, req.Raw); err != nil {
				done <- outcome{err: protocol.Errorf(protocol.CodeInvalidParams, "%s: %v", req.Type, err)}
				return
			}
		}
		res, err := s.reg.Dispatch(ctx, req)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			if errors.Is(o.err, context.DeadlineExceeded) {
				o.err = protocol.Errorf(protocol.CodeTimeout, "%s ran past its deadline of %s", req.Type, s.timeout)
			}
			return errorReply(req.ID, req.Type, o.err), returned
		}
		if o.res == nil {
			o.res = struct{}{}
		}
		return protocol.Reply{ID: req.ID, Type: req.Type, OK: true, Result: o.res}, returned
	case <-ctx.Done():
		return errorReply(req.ID, req.Type, protocol.Errorf(protocol.CodeTimeout, "%s ran past its deadline of %s", req.Type, s.timeout)), returned
	}
}
