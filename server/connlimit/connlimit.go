// Package connlimit keeps a hub answering under connection floods.
//
// Every connection costs a descriptor, and a process has a fixed number: a
// flood of connections that send headers and then nothing, or nothing at
// all, once held them all, and every route (sign-in, whitelist, keys)
// stopped answering. A Limiter caps the connections a server holds below
// what the process can open, and when the cap is reached it makes room by
// closing the connection that is worth least, oldest first within each
// kind:
//
//  1. one that has not finished sending its request headers after a second
//     (slowloris, or a port scan's open connection);
//  2. one still sending a request body after a fraction of a second (headers
//     and a Content-Length, then silence);
//  3. an idle keep-alive connection;
//  4. any other still sending a body, then any other yet to send headers.
//
// Only when none of those exists (every connection is busy being answered,
// or a WebSocket client) is the new connection refused, with a 503 written
// straight to it and Retry-After, so a client knows to try later or another
// hub. Connections are never told apart by address, and no address is kept.
package connlimit

import (
	"container/list"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Grace is how long a connection may wait to send its headers, and
// BodyGrace its body, before it is the first to go when the cap is reached.
const (
	Grace     = time.Second
	BodyGrace = 200 * time.Millisecond
)

type state int

const (
	stNew state = iota
	stIdle
	stActive
	stBody
	stHijacked
)

// Limiter tracks a server's connections and enforces Max.
type Limiter struct {
	// Max is the most connections held at once (0: no cap).
	Max int
	// Refusal is written to a connection refused at the cap before it is
	// closed (nil: just close, e.g. under TLS, where plain text is noise).
	Refusal []byte
	// OnRefused and OnEvicted, if set, hear of each (for metrics).
	OnRefused, OnEvicted func()

	mu    sync.Mutex
	open  int
	lists [stHijacked]*list.List // per evictable state, oldest first
	now   func() time.Time
}

// DefaultRefusal is a complete HTTP/1.1 503 answer.
var DefaultRefusal = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 66\r\n\r\n" +
	"This hub is at its connection limit: retry later or another hub.\r\n")

// Conn is a connection counted by a Limiter.
type Conn struct {
	net.Conn
	l      *Limiter
	st     state
	since  time.Time
	el     *list.Element
	closed atomic.Bool
}

// Close closes the connection and releases its place.
func (c *Conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c)
	}
	return c.Conn.Close()
}

func (l *Limiter) init() {
	if l.lists[0] == nil {
		for i := range l.lists {
			l.lists[i] = list.New()
		}
		if l.now == nil {
			l.now = time.Now
		}
	}
}

// Listen wraps ln so that each accepted connection is counted, and one over
// the cap makes room or is refused.
func (l *Limiter) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, l: l} }

type listener struct {
	net.Listener
	l *Limiter
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		nc, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c := ln.l.admit(nc); c != nil {
			return c, nil
		}
	}
}

// admit counts nc, evicting or refusing when at the cap; nil means refused.
func (l *Limiter) admit(nc net.Conn) *Conn {
	l.mu.Lock()
	l.init()
	var victim *Conn
	if l.Max > 0 && l.open >= l.Max {
		victim = l.victimLocked()
		if victim == nil {
			l.mu.Unlock()
			l.refuse(nc)
			return nil
		}
		// The victim's place passes to the newcomer: take it off the books
		// now so two accepts do not evict for one place.
		victim.closed.Store(true)
		l.unlinkLocked(victim)
		l.open--
	}
	c := &Conn{Conn: nc, l: l, st: stNew, since: l.now()}
	c.el = l.lists[stNew].PushBack(c)
	l.open++
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
		if l.OnEvicted != nil {
			l.OnEvicted()
		}
	}
	return c
}

func (l *Limiter) refuse(nc net.Conn) {
	if l.OnRefused != nil {
		l.OnRefused()
	}
	if l.Refusal != nil {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write(l.Refusal)
	}
	nc.Close()
}

// victimLocked picks the connection worth least (see the package doc).
// Every connection that is not being answered is a candidate; grace only
// orders them, so that a flood that redials as fast as it is closed still
// gives way to a client that sends a whole request at once.
func (l *Limiter) victimLocked() *Conn {
	now := l.now()
	oldest := func(st state, grace time.Duration) *Conn {
		if e := l.lists[st].Front(); e != nil && now.Sub(e.Value.(*Conn).since) >= grace {
			return e.Value.(*Conn)
		}
		return nil
	}
	for _, pick := range []struct {
		st    state
		grace time.Duration
	}{
		{stNew, Grace},      // headers not sent after a second
		{stBody, BodyGrace}, // a body stalled past what any client needs
		{stIdle, 0},         // a keep-alive connection doing nothing
		{stBody, 0},         // any body still coming
		{stNew, 0},          // the oldest connection yet to send headers
	} {
		if c := oldest(pick.st, pick.grace); c != nil {
			return c
		}
	}
	return nil
}

func (l *Limiter) unlinkLocked(c *Conn) {
	if c.el != nil {
		l.lists[c.st].Remove(c.el)
		c.el = nil
	}
}

func (l *Limiter) release(c *Conn) {
	l.mu.Lock()
	l.unlinkLocked(c)
	l.open--
	l.mu.Unlock()
}

// setState moves c to st (a no-op once it is closed).
func (l *Limiter) setState(c *Conn, st state) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed.Load() {
		return
	}
	l.unlinkLocked(c)
	c.st, c.since = st, l.now()
	if st != stActive && st != stHijacked {
		c.el = l.lists[st].PushBack(c)
	}
}

// Open is the number of connections held now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// conn finds the counted connection under what the HTTP server holds (a
// *Conn, or a *tls.Conn around one).
func conn(nc net.Conn) *Conn {
	for {
		switch c := nc.(type) {
		case *Conn:
			return c
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
}

// ConnState is for http.Server.ConnState: it follows each connection
// through new, active, idle and hijacked.
func (l *Limiter) ConnState(nc net.Conn, s http.ConnState) {
	c := conn(nc)
	if c == nil {
		return
	}
	switch s {
	case http.StateActive:
		l.setState(c, stActive)
	case http.StateIdle:
		l.setState(c, stIdle)
	case http.StateHijacked:
		l.setState(c, stHijacked)
	}
}

type ctxKey struct{}

// ConnContext is for http.Server.ConnContext: it lets Body find a request's
// connection.
func (l *Limiter) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	if c := conn(nc); c != nil {
		return context.WithValue(ctx, ctxKey{}, c)
	}
	return ctx
}

// Body bounds the time to read a request's body and marks its connection
// evictable while the body has not arrived: a handler in front of every
// route that reads one. timeout is the whole body's deadline.
func Body(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(timeout))
		c, _ := r.Context().Value(ctxKey{}).(*Conn)
		if c != nil {
			c.l.setState(c, stBody)
		}
		r.Body = &bodyReader{ReadCloser: r.Body, c: c, rc: rc}
		next.ServeHTTP(w, r)
	})
}

// bodyReader notices the end of a body. Then the deadline must go: the
// server's background read (it watches for the client going away while the
// handler works) would hit it and cancel a request that is only slow to
// answer.
type bodyReader struct {
	io.ReadCloser
	c    *Conn
	rc   *http.ResponseController
	done bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		if err == io.EOF {
			b.rc.SetReadDeadline(time.Time{})
		}
		if b.c != nil {
			b.c.l.setState(b.c, stActive) // the body is in (or failed): busy, not stalled
		}
	}
	return n, err
}

// Gate lets at most n requests through next at once; one more waits up to
// wait for a place, then is answered 503 with Retry-After without its body
// being read. In front of the report routes it keeps a flood of them from
// taking every database connection and goroutine the dashboard and the
// whitelist need.
func Gate(n int, wait time.Duration, onRefused func(), next http.Handler) http.Handler {
	if n <= 0 {
		return next
	}
	sem := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
		default:
			t := time.NewTimer(wait)
			select {
			case sem <- struct{}{}:
				t.Stop()
			case <-t.C:
				if onRefused != nil {
					onRefused()
				}
				w.Header().Set("Retry-After", "5")
				w.Header().Set("Connection", "close")
				http.Error(w, "this hub is busy: retry later", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		defer func() { <-sem }()
		next.ServeHTTP(w, r)
	})
}

// Reserve is how many descriptors AutoMax leaves for everything that is not
// a client connection: the listener, the database pool and its listener,
// SQLite's files, logs.
const Reserve = 96

// AutoMax is the connection cap for a process that may open limit
// descriptors: all but Reserve, and never under 32; 0 (no cap) when the
// limit is unknown or effectively unbounded.
func AutoMax(limit int) int {
	if limit <= 0 {
		return 0
	}
	return max(limit-Reserve, 32)
}
