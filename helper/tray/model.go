// Package tray is the tray menu as plain Go: the state it shows, derived from
// the agent's `status` replies and pushed events, the menu items that state
// produces, and what each click asks of the agent. helper/cmd/detour-tray
// draws it with getlantern/systray; everything worth testing lives here,
// where it needs neither cgo nor a display nor an agent.
package tray

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/detour-project/detour/shared/protocol"
)

// Client is what the model needs of the agent connection: the typed
// requests a tray may send (*localapi.Client satisfies it).
type Client interface {
	Status(ctx context.Context) (protocol.StatusResult, error)
	Sync(ctx context.Context) (protocol.SyncResult, error)
	Settings(ctx context.Context, set *protocol.SettingsChange) (protocol.Settings, error)
}

// ItemID names a menu item. The menu's shape never changes: items are hidden
// or relabelled, which is what systray can do without rebuilding.
type ItemID int

// The menu, top to bottom.
const (
	ItemHub ItemID = iota
	ItemWhitelist
	ItemReports
	ItemPaused
	ItemError
	ItemSep1
	ItemSync
	ItemReportAuto
	ItemPause
	ItemSep2
	ItemQuit
	itemCount
)

// Item is one menu entry as the view should draw it.
type Item struct {
	ID        ItemID
	Label     string
	Enabled   bool
	Checkable bool
	Checked   bool
	Hidden    bool
	Separator bool
}

// PauseFor is how long "Pause prompts" pauses.
const PauseFor = time.Hour

// State is what the tray knows about the agent.
type State struct {
	Connected bool
	Status    protocol.StatusResult
	// LastError is the last failed click, shown until the next success.
	LastError string
}

// Model holds the state and turns it into menu items. It is safe for use
// from several goroutines: the view's click handlers, the event reader and
// a refresh timer.
type Model struct {
	cat Catalog
	now func() time.Time

	mu      sync.Mutex
	client  Client
	state   State
	changed chan struct{}
}

// New returns a model that speaks lang ("cy…" is Welsh, else English) and
// has no agent yet.
func New(lang string) *Model {
	return &Model{cat: CatalogFor(lang), now: time.Now, changed: make(chan struct{}, 1)}
}

// SetClock replaces the clock, for tests.
func (m *Model) SetClock(now func() time.Time) { m.now = now }

// Changed receives a value after any change of state; the view redraws.
// Changes that come while the view is busy collapse into one.
func (m *Model) Changed() <-chan struct{} { return m.changed }

func (m *Model) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// State returns a copy of the current state.
func (m *Model) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Connect gives the model a connection to the agent and fetches its status.
func (m *Model) Connect(ctx context.Context, c Client) error {
	m.mu.Lock()
	m.client = c
	m.state.Connected = true
	m.mu.Unlock()
	m.notify()
	return m.Refresh(ctx)
}

// Disconnect drops the connection: the menu says the agent is not running
// and offers only Quit.
func (m *Model) Disconnect() {
	m.mu.Lock()
	m.client = nil
	m.state.Connected = false
	m.mu.Unlock()
	m.notify()
}

// Refresh asks the agent for its whole status.
func (m *Model) Refresh(ctx context.Context) error {
	c := m.clientOrNil()
	if c == nil {
		return errNotConnected
	}
	st, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("tray: status: %w", err)
	}
	m.mu.Lock()
	m.state.Status = st
	m.mu.Unlock()
	m.notify()
	return nil
}

var errNotConnected = fmt.Errorf("tray: not connected to the agent")

func (m *Model) clientOrNil() Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client
}

// HandleEvent folds a pushed event into the state. It reports whether the
// event needs a full Refresh to be shown right (an event it cannot read).
func (m *Model) HandleEvent(ev protocol.Event) (refresh bool) {
	m.mu.Lock()
	defer func() {
		m.mu.Unlock()
		m.notify()
	}()
	st := &m.state.Status
	switch ev.Type {
	case protocol.EventWhitelistUpdated:
		var d protocol.WhitelistUpdated
		if ev.DecodeData(&d) != nil {
			return true
		}
		now := m.now()
		st.Whitelist.Version = &d.Version
		st.Whitelist.IssuedAt = &d.IssuedAt
		st.Whitelist.FetchedAt = &now
		st.Whitelist.Stale = false
		// A new version came from the hub, so the hub answered.
		yes := true
		st.Hub.Reachable = &yes
	case protocol.EventReportsChanged:
		var d protocol.ReportsChanged
		if ev.DecodeData(&d) != nil {
			return true
		}
		st.Reports.Queued, st.Reports.Sent, st.Reports.Failed = d.Queued, d.Sent, d.Failed
	case protocol.EventSettingsChanged:
		var d protocol.Settings
		if ev.DecodeData(&d) != nil {
			return true
		}
		st.Settings = d
	case protocol.EventEnrolmentChanged:
		var d protocol.EnrolmentChanged
		if ev.DecodeData(&d) != nil {
			return true
		}
		st.Enrolled, st.Org, st.Hub.URL = d.Enrolled, d.Org, d.Hub
	}
	return false
}

// Items is the menu for the current state.
func (m *Model) Items() []Item {
	m.mu.Lock()
	s := m.state
	m.mu.Unlock()
	now := m.now()
	c := m.cat
	items := make([]Item, itemCount)
	for i := range items {
		items[i].ID = ItemID(i)
	}
	items[ItemSep1].Separator, items[ItemSep2].Separator = true, true
	items[ItemQuit].Label, items[ItemQuit].Enabled = c.T("quit"), true

	st := s.Status
	paused := st.Settings.PausedUntil != nil && st.Settings.PausedUntil.After(now)
	items[ItemSync].Label = c.T("sync")
	items[ItemReportAuto].Label = c.T("report-auto")
	items[ItemReportAuto].Checkable = true
	items[ItemReportAuto].Checked = st.Settings.ReportAutomatically
	items[ItemPause].Label = c.T("pause")
	if paused {
		items[ItemPause].Label = c.T("resume")
	}
	if !s.Connected {
		items[ItemHub].Label = c.T("agent-down")
		for _, id := range []ItemID{ItemWhitelist, ItemReports, ItemPaused, ItemError} {
			items[id].Hidden = true
		}
		return items // actions stay disabled
	}

	items[ItemHub].Label = hubLine(c, st.Hub)
	items[ItemWhitelist].Label = whitelistLine(c, now, st.Whitelist)
	switch {
	case st.Reports.Failed > 0:
		items[ItemReports].Label = c.T("reports-failed", st.Reports.Queued, st.Reports.Failed)
	case st.Reports.Queued > 0:
		items[ItemReports].Label = c.T("reports-waiting", st.Reports.Queued)
	default:
		items[ItemReports].Label = c.T("reports-none")
	}
	items[ItemPaused].Hidden = !paused
	if paused {
		items[ItemPaused].Label = c.T("paused-until", st.Settings.PausedUntil.Local().Format("15:04"))
	}
	items[ItemError].Hidden = s.LastError == ""
	items[ItemError].Label = c.T("error", s.LastError)

	items[ItemSync].Enabled = st.Hub.URL != nil
	items[ItemReportAuto].Enabled = !slices.Contains(st.Settings.Managed, "report_automatically")
	if !items[ItemReportAuto].Enabled {
		items[ItemReportAuto].Label = c.T("managed", items[ItemReportAuto].Label)
	}
	items[ItemPause].Enabled = !slices.Contains(st.Settings.Managed, "paused_until")
	return items
}

func hubLine(c Catalog, h protocol.HubStatus) string {
	if h.URL == nil || *h.URL == "" {
		return c.T("hub-none")
	}
	host := *h.URL
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	switch {
	case h.Reachable == nil:
		return c.T("hub-connecting", host)
	case *h.Reachable:
		return c.T("hub-reachable", host)
	default:
		return c.T("hub-unreachable", host)
	}
}

func whitelistLine(c Catalog, now time.Time, w protocol.WhitelistStatus) string {
	if w.Version == nil {
		return c.T("wl-none")
	}
	when := w.FetchedAt
	if when == nil {
		when = w.IssuedAt
	}
	if w.Stale {
		return c.T("wl-stale", *w.Version, c.age(now, when))
	}
	return c.T("wl-version", *w.Version, c.age(now, when))
}

// Activate does what clicking item id means. quit is true for Quit, which
// ends the tray only: the agent keeps running. A failed request is also
// shown in the menu until the next click succeeds.
func (m *Model) Activate(ctx context.Context, id ItemID) (quit bool, err error) {
	if id == ItemQuit {
		return true, nil
	}
	c := m.clientOrNil()
	if c == nil {
		return false, errNotConnected
	}
	switch id {
	case ItemSync:
		_, err = c.Sync(ctx)
		if err == nil {
			err = m.Refresh(ctx)
		}
	case ItemReportAuto:
		want := !m.State().Status.Settings.ReportAutomatically
		err = m.setSettings(ctx, c, protocol.SettingsChange{ReportAutomatically: &want})
	case ItemPause:
		change := protocol.SettingsChange{PausedUntil: protocol.Optional[time.Time]{Present: true}} // a null value resumes
		if p := m.State().Status.Settings.PausedUntil; p == nil || !p.After(m.now()) {
			until := m.now().Add(PauseFor).UTC().Truncate(time.Second)
			change.PausedUntil.Value = &until
		}
		err = m.setSettings(ctx, c, change)
	default:
		return false, nil // status lines and separators do nothing
	}
	m.mu.Lock()
	m.state.LastError = ""
	if err != nil {
		m.state.LastError = protocolMessage(err)
	}
	m.mu.Unlock()
	m.notify()
	return false, err
}

func (m *Model) setSettings(ctx context.Context, c Client, set protocol.SettingsChange) error {
	s, err := c.Settings(ctx, &set)
	if err != nil {
		return fmt.Errorf("tray: settings: %w", err)
	}
	m.mu.Lock()
	m.state.Status.Settings = s
	m.mu.Unlock()
	return nil
}

// protocolMessage keeps the agent's own sentence when there is one.
func protocolMessage(err error) string {
	if pe := protocol.AsError(err); pe.Code != protocol.CodeInternal {
		return pe.Message
	}
	return err.Error()
}
