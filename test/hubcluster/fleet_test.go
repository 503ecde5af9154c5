//go:build linux

package hubcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/shared/whitelist"
	"github.com/gorilla/websocket"
)

// A fleet is a child process holding many WebSocket helpers: one process
// may hold only RLIMIT_NOFILE descriptors (20,000 here, and the hard limit
// cannot be raised), so 100,000 helpers need several. The child is this
// test binary started with fleetEnv set to a fleetConfig; TestMain turns it
// into the fleet. It talks to the benchmark over its stdin and stdout, one
// line each way:
//
//	stdout: "connected N" every 100 ms (helpers holding an open push socket)
//	stdin:  "target V"    time the first arrival of a verified version >= V
//	stdin:  "dump"        answer with one JSON fleetDump line
//
// It ends when its stdin closes.
const fleetEnv = "DETOUR_HUBCLUSTER_FLEET"

type fleetConfig struct {
	URLs  []string `json:"urls"`  // every hub's push URL
	N     int      `json:"n"`     // helpers in this fleet
	First int      `json:"first"` // helper i starts on hub (First+i) % len(URLs)
	Local []string `json:"local"` // loopback source addresses to dial from, in turn
	Keys  [][]byte `json:"keys"`  // the whitelist keys a pushed document must verify with
}

// fleetDump is each helper's record, index by index: the hub it held last
// (-1: none), when it last lost a connection and when it next held one
// again (unix ns, 0: never), and when the target version arrived (0: not
// yet).
type fleetDump struct {
	Hub    []int   `json:"hub"`
	LostAt []int64 `json:"lost_at"`
	BackAt []int64 `json:"back_at"`
	GotAt  []int64 `json:"got_at"`
}

// helper is one simulated helper's push connection state.
type fleetHelper struct {
	hub    atomic.Int64 // -1 while not connected
	lostAt atomic.Int64
	backAt atomic.Int64
	gotAt  atomic.Int64
}

// verifiedCache knows the pushed messages already verified, so a fleet of
// 17,000 helpers receiving the same 28 KB envelope checks its signature
// once: every later copy must be equal to the byte to a verified one.
type verifiedCache struct {
	trusted []ed25519.PublicKey
	mu      sync.RWMutex
	known   [][]byte
	version []int64
}

func (v *verifiedCache) versionOf(msg []byte) (int64, error) {
	v.mu.RLock()
	for i, k := range v.known {
		if bytes.Equal(k, msg) {
			ver := v.version[i]
			v.mu.RUnlock()
			return ver, nil
		}
	}
	v.mu.RUnlock()
	var env whitelist.Envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		return 0, fmt.Errorf("fleet: pushed message: %w", err)
	}
	doc, _, err := whitelist.Verify(&env, v.trusted)
	if err != nil {
		return 0, fmt.Errorf("fleet: pushed message: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.known = append(v.known, bytes.Clone(msg))
	v.version = append(v.version, doc.Version)
	if len(v.known) > 8 {
		v.known, v.version = v.known[1:], v.version[1:]
	}
	return doc.Version, nil
}

var msgBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// bindNoPort is IP_BIND_ADDRESS_NO_PORT: a socket bound to a source address
// gets its port at connect time, per destination, so each source address
// is not limited to one ephemeral range for all hubs together.
func bindNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// runFleet is the child's main.
func runFleet(cfgJSON string) int {
	var cfg fleetConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: config:", err)
		return 2
	}
	cache := &verifiedCache{}
	for _, k := range cfg.Keys {
		cache.trusted = append(cache.trusted, ed25519.PublicKey(k))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	helpers := make([]fleetHelper, cfg.N)
	var connected, target atomic.Int64
	// Dials in flight are bounded, as helpers starting over minutes would
	// be: 100,000 SYNs at once would overflow the hubs' accept queues.
	dialSlots := make(chan struct{}, 64)
	dialers := make([]*websocket.Dialer, len(cfg.Local))
	for i, src := range cfg.Local {
		nd := &net.Dialer{Timeout: 10 * time.Second, Control: bindNoPort, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		dialers[i] = &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: 15 * time.Second,
			// The helper reads whole messages; a small frame buffer and a
			// pooled write buffer (it only writes control frames) keep
			// 17,000 idle connections small.
			ReadBufferSize:  1024,
			WriteBufferPool: &sync.Pool{},
		}
	}
	var wg sync.WaitGroup
	for i := range helpers {
		h := &helpers[i]
		h.hub.Store(-1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			runHelper(ctx, cfg, i, h, dialers[i%len(dialers)], dialSlots, cache, &connected, &target)
		}()
	}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			fmt.Printf("connected %d\n", connected.Load())
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "target":
			v, _ := strconv.ParseInt(arg, 10, 64)
			target.Store(v)
		case "dump":
			d := fleetDump{Hub: make([]int, cfg.N), LostAt: make([]int64, cfg.N), BackAt: make([]int64, cfg.N), GotAt: make([]int64, cfg.N)}
			for i := range helpers {
				d.Hub[i] = int(helpers[i].hub.Load())
				d.LostAt[i], d.BackAt[i], d.GotAt[i] = helpers[i].lostAt.Load(), helpers[i].backAt.Load(), helpers[i].gotAt.Load()
			}
			b, _ := json.Marshal(d)
			fmt.Printf("dump %s\n", b)
		}
	}
	cancel()
	wg.Wait()
	return 0
}

// runHelper keeps one helper's push connection, reconnecting as the real
// helper does (helper/whitelist/push.go): after a dropped connection a
// pause of 0.5-1.5 s, doubling with each failure. The load balancer in
// front of the hubs is played here too: each connection goes to a random
// hub, and a connection a dead hub refuses is redispatched at once to
// another not yet tried (as HAProxy's `option redispatch` does), so the helper's backoff
// counts only whole failures.
func runHelper(ctx context.Context, cfg fleetConfig, i int, h *fleetHelper, d *websocket.Dialer, slots chan struct{}, cache *verifiedCache, connected, target *atomic.Int64) {
	hub := (cfg.First + i) % len(cfg.URLs)
	backoff := time.Second
	for ctx.Err() == nil {
		var c *websocket.Conn
		var err error
		tried := make([]bool, len(cfg.URLs))
		for {
			slots <- struct{}{}
			c, _, err = d.DialContext(ctx, cfg.URLs[hub], nil)
			<-slots
			if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			tried[hub] = true
			if hub = untried(tried); hub < 0 {
				break
			}
		}
		if err != nil {
			wait := backoff/2 + rand.N(backoff)
			backoff = min(2*backoff, time.Minute)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			hub = rand.IntN(len(cfg.URLs))
			continue
		}
		backoff = time.Second
		h.hub.Store(int64(hub))
		if h.lostAt.Load() != 0 && h.backAt.Load() == 0 {
			h.backAt.Store(time.Now().UnixNano())
		}
		connected.Add(1)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		c.SetPingHandler(func(data string) error {
			err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
			if errors.Is(err, websocket.ErrCloseSent) {
				return nil
			}
			return err
		})
		for {
			_, r, err := c.NextReader()
			if err != nil {
				break
			}
			// A buffer only while a message is read: held per helper,
			// 17,000 copies of the whitelist would be half a gigabyte.
			buf := msgBufs.Get().(*bytes.Buffer)
			buf.Reset()
			_, err = io.Copy(buf, r)
			if v := target.Load(); err == nil && v > 0 && h.gotAt.Load() == 0 {
				if ver, verr := cache.versionOf(buf.Bytes()); verr == nil && ver >= v {
					h.gotAt.Store(time.Now().UnixNano())
				}
			}
			msgBufs.Put(buf)
			if err != nil {
				break
			}
		}
		stop()
		c.Close()
		connected.Add(-1)
		h.hub.Store(-1)
		if ctx.Err() != nil {
			return
		}
		h.lostAt.Store(time.Now().UnixNano())
		h.backAt.Store(0)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		hub = rand.IntN(len(cfg.URLs))
	}
}

// untried picks one of the hubs not tried yet at random (-1: none left).
func untried(tried []bool) int {
	var left []int
	for i, t := range tried {
		if !t {
			left = append(left, i)
		}
	}
	if len(left) == 0 {
		return -1
	}
	return left[rand.IntN(len(left))]
}

// fleetProc is a running fleet child, seen from the benchmark.
type fleetProc struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	connected atomic.Int64
	dumps     chan fleetDump
	logs      *lockedWriter
}

// startFleet starts a fleet child of cfg.N helpers.
func startFleet(t testing.TB, cfg fleetConfig) *fleetProc {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetEnv+"="+string(b))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &fleetProc{cmd: cmd, stdin: stdin, dumps: make(chan fleetDump, 1), logs: &lockedWriter{}}
	cmd.Stderr = f.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			cmd, arg, _ := strings.Cut(sc.Text(), " ")
			switch cmd {
			case "connected":
				n, _ := strconv.ParseInt(arg, 10, 64)
				f.connected.Store(n)
			case "dump":
				var d fleetDump
				if err := json.Unmarshal([]byte(arg), &d); err == nil {
					f.dumps <- d
				}
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		<-done
		cmd.Wait()
		timer.Stop()
		if t.Failed() {
			t.Logf("fleet log:\n%s", tail(f.logs.String(), 2000))
		}
	})
	return f
}

func (f *fleetProc) send(line string) {
	fmt.Fprintln(f.stdin, line)
}

func (f *fleetProc) dump(t testing.TB) fleetDump {
	t.Helper()
	f.send("dump")
	select {
	case d := <-f.dumps:
		return d
	case <-time.After(30 * time.Second):
		t.Fatalf("fleet did not answer dump within 30 s\n%s", tail(f.logs.String(), 2000))
		return fleetDump{}
	}
}
