package whitelist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/detour-project/detour/helper/sysproxy"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	wl "github.com/detour-project/detour/shared/whitelist"
)

// Push timing. The client pings so that a silently dead connection (a NAT
// that forgot it, a hub that vanished without a FIN) is noticed within
// readTimeout, and the hub's own pings are answered.
const (
	pingEvery    = 30 * time.Second
	readTimeout  = 75 * time.Second
	writeTimeout = 10 * time.Second
	maxBackoff   = 5 * time.Minute
)

// wsURL turns the hub's base URL into the push endpoint's.
func wsURL(hub string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(hub, "/") + "/api/v1/whitelist/ws")
	if err != nil {
		return "", fmt.Errorf("whitelist: hub URL %q: %w", hub, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("whitelist: hub URL %q: scheme must be http or https", hub)
	}
	return u.String(), nil
}

// pushLoop keeps one WebSocket to the hub open, reconnecting with
// exponential backoff and jitter; a connection that lasted a while resets
// the backoff.
func (c *Client) pushLoop(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		hub := c.opt.Settings().Hub
		if hub == "" {
			select {
			case <-ctx.Done():
				return
			case <-c.kickPush:
				continue
			}
		}
		started := time.Now()
		err := c.pushSession(ctx, hub)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		wait, restart := retryDelay(err, backoff)
		if restart {
			backoff = time.Second
		}
		c.opt.Log.Info("whitelist push connection ended", "hub", hub, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-c.kickPush:
			t.Stop()
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// restartSpread is the window within which a helper reconnects after a hub
// said it is restarting (close code 1012, sent by a draining hub): soon,
// since the helper is healthy and another hub is ready, but at a random
// moment so that a hub's many helpers reach the others spread out.
const restartSpread = 5 * time.Second

// retryDelay is how long to wait before reconnecting after err ended a
// connection. Wide jitter either way: after a hub restart, thousands of
// helpers must not come back in the same second.
func retryDelay(err error, backoff time.Duration) (wait time.Duration, restart bool) {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.CloseServiceRestart {
		return restartSpread/20 + time.Duration(rand.Int64N(int64(restartSpread-restartSpread/20))), true
	}
	return jitter(backoff, 0.5), false
}

// pushSession runs one connection until it fails, ctx ends, or the
// configured hub changes.
func (c *Client) pushSession(ctx context.Context, hub string) error {
	u, err := wsURL(hub)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dialer := websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: sysproxy.HTTP}
	hdr := http.Header{}
	c.addHeaders(hdr)
	conn, resp, err := dialer.DialContext(ctx, u, hdr)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("whitelist push: %s answered %s: %w", u, resp.Status, err)
		}
		return fmt.Errorf("whitelist push: %s: %w", u, err)
	}
	defer conn.Close()
	conn.SetReadLimit(MaxEnvelope)
	c.touch()

	// Closing the connection is what unblocks ReadMessage. The pinger is
	// owned by this call: it ends, and is waited for, when the call returns.
	finished := make(chan struct{})
	pinger := make(chan struct{})
	defer func() { close(finished); <-pinger }()
	go func() {
		defer close(pinger)
		t := time.NewTicker(pingEvery)
		defer t.Stop()
		for {
			select {
			case <-finished:
				return
			case <-ctx.Done():
				conn.Close()
				return
			case <-c.kickPush:
				if c.opt.Settings().Hub != hub {
					conn.Close()
					return
				}
			case <-t.C:
				// WriteControl may run beside other writers; it is the only
				// kind of write this client makes.
				if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
					conn.Close()
					return
				}
			}
		}
	}()
	alive := func() {
		conn.SetReadDeadline(time.Now().Add(readTimeout))
		c.touch()
	}
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetPingHandler(func(data string) error {
		alive()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
	for {
		conn.SetReadDeadline(time.Now().Add(readTimeout))
		typ, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("whitelist push: read: %w", err)
		}
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage {
			continue
		}
		c.touch()
		env, err := decodePush(data)
		if err != nil {
			c.opt.Log.Warn("whitelist push refused", "err", err)
			continue
		}
		// A refused version does not end the connection: the next one may
		// be good, and the hub is what it is.
		if _, err := c.accept(env, "", "push from "+hub, hub); err != nil {
			c.opt.Log.Warn("whitelist push refused", "err", err)
		}
	}
}

// decodePush reads a pushed message: the envelope itself, or an object that
// carries it under "envelope" (so a hub may add a message type later).
func decodePush(b []byte) (*wl.Envelope, error) {
	var m struct {
		wl.Envelope
		Wrapped *wl.Envelope `json:"envelope"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("whitelist push: %w: %v", wl.ErrMalformed, err)
	}
	if m.Wrapped != nil {
		return m.Wrapped, nil
	}
	if m.Payload == "" {
		return nil, fmt.Errorf("whitelist push: %w: no payload", wl.ErrMalformed)
	}
	return &m.Envelope, nil
}
