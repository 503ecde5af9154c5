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
	"os"
	"os/signal"
	"syscall"
	"time"

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
	fs.BoolVar(&cfg.Examples, "examples", false, "import the fictional example organisations and policies into a catalog that has none (demos)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkPublicURL(cfg.PublicURL); err != nil {
		fmt.Fprintf(stderr, "detour-server serve: %v\n", err)
		return 2
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		fmt.Fprintln(stderr, "detour-server serve: --tls-cert and --tls-key go together")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
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
	srv := &http.Server{
		Handler:           h.Handler(),
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
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	log.Info("stopped")
	return 0
}
