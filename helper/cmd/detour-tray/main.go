// Command detour-tray is the tray icon and menu: a thin view of helper/tray's
// model, drawn with getlantern/systray, talking to `detour agent` over the
// local socket like any other client. The agent starts it on a desktop and
// restarts it if it crashes; Quit ends the tray only.
//
// It is a separate binary because systray needs cgo, GTK and AppIndicator,
// and ends the process with status 1 when there is no display: the agent and
// the relay must never share that fate.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/getlantern/systray"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/tray"
	"github.com/detour-project/detour/shared/protocol"
)

// callTimeout bounds each request a click makes.
const callTimeout = 30 * time.Second

// refreshEvery is how often the tray asks for the whole status.
const refreshEvery = time.Minute

func main() {
	log.SetPrefix("detour-tray: ")
	log.SetFlags(0)
	if len(os.Args) > 1 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
		fmt.Println("usage: detour-tray   (the Detour tray icon; the agent starts it on a desktop)")
		return
	}
	if runtime.GOOS != "windows" && os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		// GTK would end the process with status 1 and a cryptic message.
		log.Print("no display: the tray needs a desktop session")
		os.Exit(1)
	}
	dirs, err := paths.Default()
	if err != nil {
		log.Fatal(err)
	}
	// One icon per user: a tray started by hand, whose agent then starts
	// another, must not show two. Exit 0, so the agent does not restart it.
	release, err := tray.SingleInstance(dirs)
	if errors.Is(err, tray.ErrRunning) {
		log.Print(err)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer release()
	m := tray.New(tray.LangFromEnv())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		systray.Quit()
	}()
	systray.Run(func() { onReady(ctx, m, dirs) }, cancel)
}

// onReady builds the menu once, in the model's fixed order, and starts one
// goroutine per item that is already waiting on ClickedCh before the item can
// be clicked (systray drops a click that finds nobody waiting).
func onReady(ctx context.Context, m *tray.Model, dirs paths.Dirs) {
	if runtime.GOOS == "windows" {
		systray.SetIcon(icoFromPNG(icon)) // the notification area takes .ico
	} else {
		systray.SetIcon(icon)
	}
	systray.SetTitle("")
	systray.SetTooltip(tray.CatalogFor(tray.LangFromEnv()).T("title"))

	items := m.Items()
	views := make([]*systray.MenuItem, len(items))
	for i, it := range items {
		if it.Separator {
			systray.AddSeparator()
			continue
		}
		var mi *systray.MenuItem
		if it.Checkable {
			mi = systray.AddMenuItemCheckbox(it.Label, "", it.Checked)
		} else {
			mi = systray.AddMenuItem(it.Label, "")
		}
		views[i] = mi
		go func(id tray.ItemID, ch <-chan struct{}) {
			for range ch {
				go click(ctx, m, id)
			}
		}(it.ID, mi.ClickedCh)
	}
	render(m.Items(), views)
	go func() {
		tick := time.NewTicker(time.Minute) // ages in the labels move on
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.Changed():
			case <-tick.C:
			}
			render(m.Items(), views)
		}
	}()
	go connectLoop(ctx, m, dirs)
}

func click(ctx context.Context, m *tray.Model, id tray.ItemID) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	quit, err := m.Activate(ctx, id)
	if err != nil {
		log.Printf("menu item %d: %v", id, err)
	}
	if quit {
		systray.Quit()
	}
}

// render brings the drawn items in line with the model. Only this goroutine
// (and onReady before it) touches the items.
func render(items []tray.Item, views []*systray.MenuItem) {
	for i, it := range items {
		v := views[i]
		if v == nil {
			continue
		}
		if it.Hidden {
			v.Hide()
			continue
		}
		v.SetTitle(it.Label)
		if it.Enabled {
			v.Enable()
		} else {
			v.Disable()
		}
		if it.Checkable {
			if it.Checked {
				v.Check()
			} else {
				v.Uncheck()
			}
		}
		v.Show()
	}
}

// connectLoop keeps the model connected to the agent: it starts the agent
// once if none answers (the tray may have been started by hand), then
// reconnects with backoff whenever the connection ends.
func connectLoop(ctx context.Context, m *tray.Model, dirs paths.Dirs) {
	opts := localapi.Options{Dirs: dirs, Caller: protocol.CallerTray}
	if exe, err := os.Executable(); err == nil {
		name := "detour"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		agent := filepath.Join(filepath.Dir(exe), name)
		if _, err := os.Stat(agent); err == nil {
			opts.Start = agent // only the first connection starts it
		}
	}
	backoff := 250 * time.Millisecond
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, callTimeout+localapi.StartTimeout)
		c, err := localapi.Connect(cctx, opts)
		cancel()
		opts.Start = ""
		if err == nil {
			err = serve(ctx, m, c)
			backoff = 250 * time.Millisecond
		}
		m.Disconnect()
		if ctx.Err() != nil {
			return
		}
		log.Printf("agent connection: %v (retrying in %s)", err, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// serve runs one connection (hello already said by Connect): status, then
// events until it ends.
func serve(ctx context.Context, m *tray.Model, c *localapi.Client) error {
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	err := m.Connect(cctx, c)
	cancel()
	if err != nil {
		return err
	}
	// Hub reachability has no event of its own: ask for the whole status
	// now and then as well.
	poll := time.NewTicker(refreshEvery)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			rctx, cancel := context.WithTimeout(ctx, callTimeout)
			err := m.Refresh(rctx)
			cancel()
			if err != nil {
				return err
			}
		case ev, ok := <-c.Events():
			if !ok {
				return localapi.ErrClosed
			}
			if m.HandleEvent(ev) {
				rctx, cancel := context.WithTimeout(ctx, callTimeout)
				if err := m.Refresh(rctx); err != nil {
					log.Print(err)
				}
				cancel()
			}
		}
	}
}
