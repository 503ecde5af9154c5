// Package push fans one stream of messages (each new signed whitelist) out
// to many WebSocket clients.
//
// Each connection has one writer goroutine, the only one that writes to it
// (gorilla/websocket allows one writer at a time), fed by a small bounded
// queue. Publish never waits for a client: a client whose queue is full is
// too slow to keep up and is dropped (its connection closed), so one stalled
// reader cannot delay the others. Messages are encoded once per publish
// (websocket.PreparedMessage) whatever the number of clients.
//
// A client that connects gets the latest message first, then every later
// one, in order.
package push

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Options tune a Hub; zero values take the defaults given.
type Options struct {
	// SendBuffer is how many messages may wait for a client before it is
	// dropped as too slow (default 4).
	SendBuffer int
	// WriteTimeout bounds one write, ping included (default 10 s).
	WriteTimeout time.Duration
	// PingInterval is how often the hub pings an idle client (default 30 s).
	PingInterval time.Duration
	// PongWait is how long the hub waits for any frame, a pong included,
	// before it gives a client up (default 2 × PingInterval).
	PongWait time.Duration
	// ReadLimit is the largest frame a client may send (default 4 KiB:
	// clients have nothing to say beyond control frames).
	ReadLimit int64
	// CheckOrigin decides whether to accept a request (default SameOrigin).
	CheckOrigin func(r *http.Request) bool
	// SocketSendBuffer caps the kernel's send buffer per connection
	// (SO_SNDBUF), in bytes; 0 leaves the system's autotuning, which lets a
	// client that stopped reading absorb megabytes before it counts as slow.
	SocketSendBuffer int
	// MaxClients refuses connections beyond this many with 503 (0: no
	// limit).
	MaxClients int
	// OnRefused, if set, hears of each connection refused because the hub
	// is full or closing (for metrics).
	OnRefused func()
	// OnDelivered, if set, hears how long each published message waited
	// between Publish and its frame being written to one client.
	OnDelivered func(time.Duration)
}

// Hub is a set of connected clients and the latest message.
type Hub struct {
	opts     Options
	upgrader websocket.Upgrader

	mu      sync.Mutex
	clients map[*client]struct{}
	latest  *websocket.PreparedMessage
	closed  bool

	dropped atomic.Int64
}

type client struct {
	conn *websocket.Conn
	send chan queued
	done chan struct{}
	once sync.Once
}

// New makes a Hub.
func New(opts Options) *Hub {
	if opts.SendBuffer <= 0 {
		opts.SendBuffer = 4
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.PongWait <= opts.PingInterval {
		opts.PongWait = 2 * opts.PingInterval
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 4 << 10
	}
	if opts.CheckOrigin == nil {
		opts.CheckOrigin = SameOrigin
	}
	return &Hub{
		opts: opts,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			CheckOrigin:      opts.CheckOrigin,
			// Prepared messages are written straight to the connection, so
			// a write buffer is only needed briefly (for close frames):
			// pooling it keeps idle connections small.
			WriteBufferPool: &sync.Pool{},
		},
		clients: map[*client]struct{}{},
	}
}

// SameOrigin accepts requests without an Origin header (the helper, which
// is not a browser) and browser requests from the hub's own origin, and
// refuses every other origin: a web page elsewhere, or an extension, has no
// business holding the hub's push channel open.
func SameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// queued is a message waiting for one client, with when it was published
// (zero for the latest message sent on connection, which is no delivery of
// a new version).
type queued struct {
	pm *websocket.PreparedMessage
	at time.Time
}

// Publish makes msg the latest message and queues it for every client.
// It never blocks on a client.
func (h *Hub) Publish(msg []byte) error {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, msg)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latest = pm
	q := queued{pm: pm, at: time.Now()}
	for c := range h.clients {
		h.enqueueLocked(c, q)
	}
	return nil
}

// enqueueLocked queues q for c or drops c if its queue is full.
func (h *Hub) enqueueLocked(c *client, q queued) {
	select {
	case c.send <- q:
	default:
		h.dropLocked(c)
		h.dropped.Add(1)
	}
}

func (h *Hub) dropLocked(c *client) {
	delete(h.clients, c)
	c.stop()
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
	c.stop()
}

// stop ends the client: its writer returns and closing the connection
// unblocks a write or read in progress.
func (c *client) stop() {
	c.once.Do(func() {
		close(c.done)
		c.conn.Close()
	})
}

// Clients is the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped is how many clients were dropped for being too slow.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// Close disconnects every client (close code 1001, going away) and refuses
// new ones.
func (h *Hub) Close() { h.closeAll(websocket.CloseGoingAway, "hub closing") }

// Restart disconnects every client with close code 1012 (service restart)
// and refuses new ones: a hub that is draining tells its helpers to come
// back, through the load balancer, to another hub. Helpers wait a random
// delay before they do, so they do not all arrive in the same second.
func (h *Hub) Restart() { h.closeAll(websocket.CloseServiceRestart, "hub restarting: reconnect") }

func (h *Hub) closeAll(code int, reason string) {
	h.mu.Lock()
	h.closed = true
	cs := h.clients
	h.clients = map[*client]struct{}{}
	h.mu.Unlock()
	msg := websocket.FormatCloseMessage(code, reason)
	for c := range cs {
		c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		c.stop()
	}
}

// ServeHTTP upgrades the request and hands the connection to its reader
// and writer goroutines.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	full := h.closed || (h.opts.MaxClients > 0 && len(h.clients) >= h.opts.MaxClients)
	h.mu.Unlock()
	if full {
		if h.opts.OnRefused != nil {
			h.opts.OnRefused()
		}
		w.Header().Set("Retry-After", "5")
		http.Error(w, "push: this hub is not accepting more WebSocket clients; retry later or another hub", http.StatusServiceUnavailable)
		return
	}
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an error status
	}
	if tc, ok := conn.NetConn().(*net.TCPConn); ok && h.opts.SocketSendBuffer > 0 {
		tc.SetWriteBuffer(h.opts.SocketSendBuffer)
	}
	c := &client{
		conn: conn,
		send: make(chan queued, h.opts.SendBuffer),
		done: make(chan struct{}),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		conn.Close()
		return
	}
	h.clients[c] = struct{}{}
	if h.latest != nil {
		c.send <- queued{pm: h.latest} // the queue is empty: cannot block
	}
	h.mu.Unlock()
	// Reader and writer run in fresh goroutines and the handler returns:
	// the request goroutine's stack, grown by the HTTP server, is freed
	// instead of being held for the connection's life.
	go h.write(c)
	go h.read(c)
}

// read consumes what the client sends (pongs and a close, nothing else is
// expected) so that control frames are processed, and gives the client up
// when nothing, not even a pong, arrives within PongWait.
func (h *Hub) read(c *client) {
	defer h.remove(c)
	c.conn.SetReadLimit(h.opts.ReadLimit)
	c.conn.SetReadDeadline(time.Now().Add(h.opts.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(h.opts.PongWait))
	})
	// A client's own ping shows it is alive too; answer it as gorilla's
	// default handler would (WriteControl may run beside the writer).
	c.conn.SetPingHandler(func(data string) error {
		c.conn.SetReadDeadline(time.Now().Add(h.opts.PongWait))
		err := c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(h.opts.WriteTimeout))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	for {
		if _, _, err := c.conn.NextReader(); err != nil {
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(h.opts.PongWait))
	}
}

// write is the connection's only writer: queued messages and pings.
func (h *Hub) write(c *client) {
	defer h.remove(c)
	ping := time.NewTicker(h.opts.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case q := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
			if err := c.conn.WritePreparedMessage(q.pm); err != nil {
				return
			}
			if !q.at.IsZero() && h.opts.OnDelivered != nil {
				h.opts.OnDelivered(time.Since(q.at))
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.opts.WriteTimeout)); err != nil {
				return
			}
		}
	}
}
