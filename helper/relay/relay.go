// Package relay is what a browser starts: `detour chrome-extension://ID/` or
// `detour /path/manifest.json ID`. It checks the caller, makes sure the
// per-user agent runs, and passes frames between the browser (stdin/stdout)
// and the agent's socket unchanged. It keeps no state of its own beyond the
// ids of requests in flight, so that it can answer them if the agent goes.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/ids"
	"github.com/detour-project/detour/shared/protocol"
)

// EnvAllowed names extra extension IDs to serve, comma-separated: for
// development builds whose ID differs from the published one.
const EnvAllowed = "DETOUR_ALLOWED_EXTENSIONS"

// maxReconnects bounds how often in a row one relay reconnects to a
// restarted agent: an agent that keeps dying at once is given up on. A
// connection that served for Options.HealthyAfter starts the count again, so
// that a browser open for days outlives any number of agent upgrades.
const maxReconnects = 3

// defaultHealthyAfter is Options.HealthyAfter's default.
const defaultHealthyAfter = time.Minute

// Options configure Run.
type Options struct {
	Args []string  // the arguments the browser passed
	In   io.Reader // the browser's frames (stdin)
	Out  io.Writer // frames to the browser (stdout); nothing else goes there
	Log  *slog.Logger
	Dirs paths.Dirs
	// Exe is the detour binary started as `Exe agent` when no agent runs.
	Exe string
	// Allowed are the extension IDs served; see AllowedIDs.
	Allowed []string
	// HealthyAfter is how long an agent connection must have served for
	// its loss not to count towards giving up (default one minute).
	HealthyAfter time.Duration
}

// AllowedIDs is every ID in shared/ids (development, stores, build-time
// additions) plus those in DETOUR_ALLOWED_EXTENSIONS.
func AllowedIDs() []string {
	out := ids.All()
	for _, s := range strings.Split(os.Getenv(EnvAllowed), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// CallerID extracts the calling extension's ID from the browser's arguments:
// Chrome-family browsers pass the origin chrome-extension://ID/ (and on
// Windows a --parent-window flag after it), Firefox the manifest path and
// the ID.
func CallerID(args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("no caller named")
	}
	if rest, ok := strings.CutPrefix(args[0], "chrome-extension://"); ok {
		id := strings.TrimSuffix(rest, "/")
		if id == "" || strings.ContainsAny(id, "/?#") {
			return "", fmt.Errorf("malformed caller origin %q", args[0])
		}
		return id, nil
	}
	if len(args) >= 2 && strings.HasSuffix(args[0], ".json") && args[1] != "" {
		return args[1], nil
	}
	return "", fmt.Errorf("arguments %q do not name a calling extension", args)
}

// Run relays until the browser closes stdin (exit status 0), or until the
// caller is refused or the agent cannot be reached (status 1).
//
// The two directions run apart, so that backpressure holds in each without
// stalling the other: this goroutine reads the browser's frames and writes
// them to the agent (when the agent stops reading, because it has as many
// requests of this connection in flight as it allows, the relay stops reading
// the browser), while the agent's frames go to the browser from a goroutine
// of their own (when the browser reads slowly, the agent's replies wait in
// the socket). A burst of any size is answered in full; nothing in the relay
// waits on the direction it is not serving.
func Run(ctx context.Context, o Options) int {
	ignoreSIGPIPE()
	r := &relay{o: o, out: nativemsg.NewWriter(o.Out), pending: map[int64]string{}}
	fail := func(code int, err error) int {
		o.Log.Error("relay", "err", err)
		r.toBrowser(protocol.Reply{ID: 0, OK: false, Error: &protocol.Error{Code: code, Message: err.Error()}})
		return 1
	}
	id, err := CallerID(o.Args)
	if err == nil && !slices.Contains(o.Allowed, id) {
		err = fmt.Errorf("extension %q is not one this helper serves", id)
	}
	if err != nil {
		return fail(protocol.CodeCallerRefused, fmt.Errorf("caller refused: %w", err))
	}

	if err := r.connect(ctx); err != nil {
		return fail(protocol.CodeAgentDown, err)
	}
	defer func() { r.detach() }()

	browser := make(chan browserMsg, 16)
	go readBrowser(o.In, browser)
	for {
		select {
		case m, ok := <-browser:
			if !ok {
				return 0
			}
			switch {
			case m.frameErr != nil:
				if err := r.toBrowser(protocol.Reply{ID: 0, OK: false, Error: m.frameErr.ProtocolError()}); err != nil {
					o.Log.Info("browser gone", "err", err)
					return 0
				}
			case m.err != nil:
				if errors.Is(m.err, io.EOF) {
					return 0
				}
				o.Log.Error("reading from the browser", "err", m.err)
				return 1
			default:
				req, perr := protocol.ParseRequest(m.body)
				if perr == nil {
					// What only this computer's command line or tray may ask
					// (contract.json lists each type's callers) never reaches
					// the agent from a browser.
					if refused := protocol.CheckCaller(protocol.CallerBrowser, req.Type); refused != nil {
						if err := r.toBrowser(protocol.Reply{ID: req.ID, Type: req.Type, Error: refused}); err != nil {
							return 0
						}
						continue
					}
					r.mu.Lock()
					r.pending[req.ID] = req.Type
					r.mu.Unlock()
				}
				if err := r.agentW.Write(m.body); err != nil {
					if code := r.dropped(ctx, err); code >= 0 {
						return code
					}
				}
			}
		case why := <-r.agentDone:
			if errors.Is(why, errBrowserGone) {
				o.Log.Info("browser gone")
				return 0
			}
			if code := r.dropped(ctx, why); code >= 0 {
				return code
			}
		}
	}
}

type browserMsg struct {
	body     []byte
	frameErr *nativemsg.FrameError
	err      error
}

// readBrowser reads the browser's frames; empty and oversized frames are
// passed on as frame errors (the relay answers them itself), anything else
// that ends the stream as the last message.
func readBrowser(in io.Reader, ch chan<- browserMsg) {
	r := nativemsg.NewReader(in)
	for {
		b, err := r.Read()
		var fe *nativemsg.FrameError
		switch {
		case errors.As(err, &fe):
			ch <- browserMsg{frameErr: fe}
		case err != nil:
			ch <- browserMsg{err: err}
			close(ch)
			return
		default:
			ch <- browserMsg{body: b}
		}
	}
}

type relay struct {
	o Options

	outMu sync.Mutex // one writer to the browser at a time
	out   *nativemsg.Writer

	agent  net.Conn
	agentW *nativemsg.Writer
	// agentDone receives once why the current agent connection's reader
	// stopped: the agent closed it, or the browser could not be written.
	agentDone chan error
	// pumped is closed when that reader has returned.
	pumped chan struct{}

	mu         sync.Mutex
	pending    map[int64]string // request id → type, until its reply passes
	reconnects int              // in a row, see maxReconnects
	attached   time.Time        // when the current agent connection began
}

// errBrowserGone ends the relay: the browser stopped reading its stdout.
var errBrowserGone = errors.New("the browser stopped reading")

// toBrowser writes one message to the browser.
func (r *relay) toBrowser(v any) error {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	return r.out.WriteJSON(v)
}

// connect makes sure an agent runs and connects to it. A connection only
// counts once the agent has answered on it: a killed agent's listener can
// still take connections into its backlog for a moment while the process is
// torn down, and those end at once.
func (r *relay) connect(ctx context.Context) error {
	deadline := time.Now().Add(localapi.StartTimeout)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			time.Sleep(min(time.Duration(attempt)*20*time.Millisecond, 200*time.Millisecond))
		}
		if err := localapi.EnsureAgent(ctx, r.o.Dirs, r.o.Exe); err != nil {
			return fmt.Errorf("the Detour agent is not running and could not be started: %w", err)
		}
		c, err := localapi.DialConn(ctx, r.o.Dirs)
		if err == nil {
			err = verify(c)
			if err == nil {
				r.attach(c)
				return nil
			}
			c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the Detour agent could not be reached: %w", err)
		}
		r.o.Log.Info("agent not answering yet; retrying", "err", err)
	}
}

// verifyTimeout bounds the first answer on a new connection; the agent
// answers once its subsystems are set up.
const verifyTimeout = 5 * time.Second

// verify sends a status request with id 0 (an id the browser's requests do
// not use for anything the relay passes on) and waits for its reply.
func verify(c net.Conn) error {
	c.SetDeadline(time.Now().Add(verifyTimeout))
	defer c.SetDeadline(time.Time{})
	if err := nativemsg.NewWriter(c).Write([]byte(`{"id":0,"type":"status"}`)); err != nil {
		return err
	}
	rd := nativemsg.NewReader(c)
	for {
		b, err := rd.Read()
		if err != nil {
			return fmt.Errorf("no answer on a new connection: %w", err)
		}
		var env protocol.Envelope
		if json.Unmarshal(b, &env) == nil && env.IsReply() && *env.ID == 0 {
			return nil
		}
	}
}

// attach starts passing the agent's frames from c straight to the browser.
func (r *relay) attach(c net.Conn) {
	r.agent, r.agentW = c, nativemsg.NewWriter(c)
	r.attached = time.Now()
	done := make(chan error, 1)
	pumped := make(chan struct{})
	r.agentDone, r.pumped = done, pumped
	go func() {
		defer close(pumped)
		rd := nativemsg.NewReader(c)
		for {
			b, err := rd.Read()
			var fe *nativemsg.FrameError
			if errors.As(err, &fe) {
				continue // the agent never sends these
			}
			if err != nil {
				done <- errors.New("agent closed the connection")
				return
			}
			var env protocol.Envelope
			if json.Unmarshal(b, &env) == nil && env.IsReply() {
				r.mu.Lock()
				delete(r.pending, *env.ID)
				r.mu.Unlock()
			}
			r.outMu.Lock()
			err = r.out.Write(b)
			r.outMu.Unlock()
			if err != nil {
				done <- fmt.Errorf("%w: %w", errBrowserGone, err)
				return
			}
		}
	}()
}

// detach closes the agent connection and waits for its reader, so that no
// reply of the old connection passes once the relay has answered for it. A
// reader stuck writing to a browser that no longer reads is not waited for
// past pumpWait.
func (r *relay) detach() {
	r.agent.Close()
	select {
	case <-r.pumped:
	case <-time.After(pumpWait):
	}
}

const pumpWait = 2 * time.Second

// dropped handles a lost agent connection: the requests in flight are
// answered with CodeAgentDown (the agent that held them is gone), then the
// relay reconnects, starting a new agent if needed. It returns the exit
// status when the relay must stop, or -1 to go on.
func (r *relay) dropped(ctx context.Context, cause error) int {
	r.detach()
	r.mu.Lock()
	lost := r.pending
	r.pending = map[int64]string{}
	r.mu.Unlock()
	r.o.Log.Warn("lost the agent", "err", cause, "pending", len(lost))
	for id, typ := range lost {
		rep := protocol.Reply{ID: id, Type: typ, Error: protocol.Errorf(protocol.CodeAgentDown, "the Detour agent stopped while answering; try again")}
		if err := r.toBrowser(rep); err != nil {
			return 0
		}
	}
	healthy := r.o.HealthyAfter
	if healthy <= 0 {
		healthy = defaultHealthyAfter
	}
	if time.Since(r.attached) >= healthy {
		r.reconnects = 0
	}
	if r.reconnects >= maxReconnects {
		r.o.Log.Error("the agent keeps stopping; giving up")
		return 1
	}
	r.reconnects++
	if err := r.connect(ctx); err != nil {
		r.o.Log.Error("reconnecting to the agent", "err", err)
		r.toBrowser(protocol.Reply{ID: 0, Error: protocol.Errorf(protocol.CodeAgentDown, "%v", err)})
		return 1
	}
	return -1
}
