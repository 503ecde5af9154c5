package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/detour-project/detour/server/connlimit"
	"github.com/detour-project/detour/server/hub"
)

func serveMain(args []string, stdout, stderr io.Writer) int {
	var cfg hub.Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	commonFlags(fs, &cfg)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "and this key (PEM)")
	fs.BoolVar(&cfg.Round, "round", false, "round counts at or above k to the nearest 5 (ONS 10-5 style)")
	fs.BoolVar(&cfg.Control, "control", false, "offer the control measurement GET /api/v1/control for catalog hosts (a hub outside its members' networks)")
	fs.BoolVar(&cfg.Examples, "examples", false, "import the fictional example organisations and policies into a catalog that has none (demos)")
	fs.StringVar(&cfg.SSOFile, "sso", "", "single sign-on for the dashboard: a JSON file of OpenID Connect providers (see server/dashboard/README.md)")
	fs.BoolVar(&cfg.RequireTOTP, "require-totp", false, "sector admins' local accounts must set up and use a second factor (TOTP) for the dashboard")
	logFormat := fs.String("log-format", envOr("DETOUR_LOG_FORMAT", "text"), "log format: text or json (one JSON object a line, for a log collector)")
	fs.IntVar(&cfg.MaxWSClients, "max-ws-clients", 50000, "WebSocket clients this hub holds; more are refused with 503 and told to retry (0: no cap)")
	maxConns := fs.Int("max-conns", -1, "connections held at once; at the cap, stalled and idle ones are closed to make room, else new ones get 503 (default: the descriptor limit less a reserve; 0: no cap)")
	proxies := fs.String("trusted-proxy", os.Getenv("DETOUR_TRUSTED_PROXY"), "load balancers in front of this hub (CIDR,CIDR...): their X-Forwarded-For names the client for sign-in limits per source")
	drain := fs.Duration("drain-timeout", 20*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkPublicURL(cfg.PublicURL); err != nil {
		fmt.Fprintf(stderr, "detour-server serve: %v\n", err)
		return 2
	}
	for _, p := range strings.FieldsFunc(*proxies, func(r rune) bool { return r == ',' || r == ' ' }) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			if a, aerr := netip.ParseAddr(p); aerr == nil {
				pfx, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "detour-server serve: --trusted-proxy %q: want an address or CIDR such as 10.0.0.0/8\n", p)
			return 2
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, pfx)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		fmt.Fprintln(stderr, "detour-server serve: --tls-cert and --tls-key go together")
		return 2
	}
	var log *slog.Logger
	switch *logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		fmt.Fprintf(stderr, "detour-server serve: --log-format %q: want text or json\n", *logFormat)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h, err := hub.Open(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "detour-server serve: %v\n", err)
		return 1
	}
	defer h.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "detour-server serve: %v\n", err)
		return 1
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "detour-server listening on %s://%s\n", scheme, ln.Addr())
	// Floods of connections: cap what is held below the descriptor limit,
	// and at the cap make room from stalled and idle connections.
	limit := &connlimit.Limiter{
		Max:       *maxConns,
		Refusal:   connlimit.DefaultRefusal,
		OnRefused: func() { h.Metrics.Refused("connections") },
		OnEvicted: h.Metrics.Evicted,
	}
	if limit.Max < 0 {
		limit.Max = connlimit.AutoMax(connlimit.DescriptorLimit())
	}
	if cfg.TLSCert != "" {
		limit.Refusal = nil // plain text on a TLS port helps no one
	}
	h.Metrics.Gauge("detour_connections_open", "Client connections this hub holds now.", func() float64 { return float64(limit.Open()) })
	h.Metrics.Gauge("detour_connections_max", "The cap on client connections (0: none).", func() float64 { return float64(limit.Max) })
	ln = limit.Listen(ln)
	log.Info("listening", "addr", ln.Addr().String(), "keys", keysWhere(h), "listening_for_changes", h.Listening(), "max_conns", limit.Max)
	srv := &http.Server{
		Handler:           h.Handler(),
		ConnState:         limit.ConnState,
		ConnContext:       limit.ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// The standard library's error log names client addresses; the hub
		// never logs them, so its own log messages go nowhere.
		ErrorLog: nil,
	}
	srv.ErrorLog = hub.DiscardLogger()
	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "detour-server serve: %v\n", err)
			return 1
		}
	}
	// SIGTERM (or ^C): stop taking connections, tell WebSocket clients to
	// reconnect elsewhere, let requests in flight finish, then close.
	log.Info("draining", "timeout", drain.String())
	h.Drain()
	shutdown, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Warn("drain timed out; closing the remaining connections", "err", err)
		srv.Close()
	}
	log.Info("stopped")
	return 0
}

func keysWhere(h *hub.Hub) string {
	k, err := h.WhitelistKeys()
	if err != nil {
		return "none"
	}
	return k.Where()
}
