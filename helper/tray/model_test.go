package tray

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/shared/protocol"
)

// fakeAgent answers like the agent: status from a canned reply, settings by
// applying `set`, sync by bumping the whitelist version. It records calls.
type fakeAgent struct {
	status protocol.StatusResult
	calls  []string
	fail   error
}

func (f *fakeAgent) Call(_ context.Context, typ string, params any, result any) error {
	p, _ := json.Marshal(params)
	f.calls = append(f.calls, typ+" "+string(p))
	if f.fail != nil {
		return f.fail
	}
	var out any
	switch typ {
	case "status":
		out = f.status
	case "sync":
		v := int64(1)
		if f.status.Whitelist.Version != nil {
			v = *f.status.Whitelist.Version + 1
		}
		f.status.Whitelist.Version = &v
		out = protocol.SyncResult{Version: &v, Changed: true}
	case "settings":
		var sp protocol.SettingsParams
		json.Unmarshal(p, &sp)
		if sp.Set != nil && sp.Set.ReportAutomatically != nil {
			f.status.Settings.ReportAutomatically = *sp.Set.ReportAutomatically
		}
		if sp.Set != nil && sp.Set.PausedUntil.Present {
			f.status.Settings.PausedUntil = sp.Set.PausedUntil.Value
		}
		out = f.status.Settings
	default:
		return protocol.Errorf(protocol.CodeUnknownType, "unknown %s", typ)
	}
	b, _ := json.Marshal(out)
	return json.Unmarshal(b, result)
}

func (f *fakeAgent) Status(ctx context.Context) (r protocol.StatusResult, err error) {
	return r, f.Call(ctx, "status", nil, &r)
}

func (f *fakeAgent) Sync(ctx context.Context) (r protocol.SyncResult, err error) {
	return r, f.Call(ctx, "sync", nil, &r)
}

func (f *fakeAgent) Settings(ctx context.Context, set *protocol.SettingsChange) (r protocol.Settings, err error) {
	return r, f.Call(ctx, "settings", protocol.SettingsParams{Set: set}, &r)
}

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func newModel(t *testing.T, lang string, st protocol.StatusResult) (*Model, *fakeAgent) {
	t.Helper()
	m := New(lang)
	m.SetClock(func() time.Time { return now })
	f := &fakeAgent{status: st}
	if err := m.Connect(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	return m, f
}

func labels(items []Item) map[ItemID]string {
	out := map[ItemID]string{}
	for _, it := range items {
		if !it.Hidden && !it.Separator {
			out[it.ID] = it.Label
		}
	}
	return out
}

func TestItemsFromStatus(t *testing.T) {
	hub := ptr("https://hub.example.org/")
	cases := []struct {
		name string
		lang string
		st   protocol.StatusResult
		want map[ItemID]string
		// hidden lists items that must not show
		hidden []ItemID
	}{
		{
			name: "fresh", lang: "en_GB.UTF-8",
			st: protocol.StatusResult{
				Hub:       protocol.HubStatus{URL: hub, Reachable: ptr(true)},
				Whitelist: protocol.WhitelistStatus{Version: ptr(int64(42)), FetchedAt: ptr(now.Add(-5 * time.Minute))},
				Reports:   protocol.ReportsStatus{Queued: 2},
			},
			want: map[ItemID]string{
				ItemHub:       "Hub: hub.example.org (reachable)",
				ItemWhitelist: "Whitelist: version 42, updated 5 min ago",
				ItemReports:   "Reports waiting: 2",
				ItemSync:      "Sync now",
				ItemPause:     "Pause prompts for an hour",
			},
			hidden: []ItemID{ItemPaused, ItemError},
		},
		{
			name: "stale, unreachable, paused", lang: "C",
			st: protocol.StatusResult{
				Hub:       protocol.HubStatus{URL: hub, Reachable: ptr(false)},
				Whitelist: protocol.WhitelistStatus{Version: ptr(int64(7)), IssuedAt: ptr(now.Add(-3 * 24 * time.Hour)), Stale: true},
				Reports:   protocol.ReportsStatus{Queued: 1, Failed: 1},
				Settings:  protocol.Settings{PausedUntil: ptr(now.Add(30 * time.Minute))},
			},
			want: map[ItemID]string{
				ItemHub:       "Hub: hub.example.org (not reachable)",
				ItemWhitelist: "Whitelist: version 7, out of date (updated 3 days ago)",
				ItemReports:   "Reports waiting: 1 (1 failed)",
				ItemPaused:    "Prompts paused until " + now.Add(30*time.Minute).Local().Format("15:04"),
				ItemPause:     "Resume prompts",
			},
		},
		{
			name: "pause that has ended", lang: "en",
			st: protocol.StatusResult{Settings: protocol.Settings{PausedUntil: ptr(now.Add(-time.Minute))}},
			want: map[ItemID]string{
				ItemHub: "Hub: not set up", ItemWhitelist: "Whitelist: none yet", ItemReports: "No reports waiting",
				ItemPause: "Pause prompts for an hour",
			},
			hidden: []ItemID{ItemPaused},
		},
		{
			name: "Welsh", lang: "cy_GB.UTF-8",
			st: protocol.StatusResult{
				Hub:       protocol.HubStatus{URL: hub},
				Whitelist: protocol.WhitelistStatus{Version: ptr(int64(3)), FetchedAt: ptr(now)},
				Settings:  protocol.Settings{Managed: []string{"report_automatically"}},
			},
			want: map[ItemID]string{
				ItemHub:        "Hwb: hub.example.org (yn cysylltu…)",
				ItemWhitelist:  "Rhestr gymeradwy: fersiwn 3, diweddarwyd newydd",
				ItemSync:       "Cysoni nawr",
				ItemReportAuto: "Adrodd yn awtomatig (wedi'i osod gan eich sefydliad)",
				ItemQuit:       "Gadael",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newModel(t, c.lang, c.st)
			items := m.Items()
			got := labels(items)
			for id, w := range c.want {
				if got[id] != w {
					t.Errorf("item %d: %q, want %q", id, got[id], w)
				}
			}
			for _, id := range c.hidden {
				if !items[id].Hidden {
					t.Errorf("item %d (%q) shown, want hidden", id, items[id].Label)
				}
			}
			for _, id := range []ItemID{ItemHub, ItemWhitelist, ItemReports, ItemPaused} {
				if items[id].Enabled {
					t.Errorf("status line %d is clickable", id)
				}
			}
		})
	}
}

func TestDisconnectedOffersOnlyQuit(t *testing.T) {
	m := New("en")
	items := m.Items()
	if items[ItemHub].Label != "Detour agent is not running" {
		t.Fatalf("hub line %q", items[ItemHub].Label)
	}
	for _, it := range items {
		if it.Enabled != (it.ID == ItemQuit) {
			t.Errorf("item %d %q enabled=%t", it.ID, it.Label, it.Enabled)
		}
	}
	if _, err := m.Activate(context.Background(), ItemSync); err == nil {
		t.Fatal("sync without an agent succeeded")
	}
	if quit, _ := m.Activate(context.Background(), ItemQuit); !quit {
		t.Fatal("Quit does not quit")
	}
}

func TestActivate(t *testing.T) {
	ctx := context.Background()
	m, f := newModel(t, "en", protocol.StatusResult{Hub: protocol.HubStatus{URL: ptr("http://127.0.0.1:1")}})
	<-m.Changed()

	// Report automatically toggles through the agent and back.
	for _, want := range []bool{true, false} {
		if _, err := m.Activate(ctx, ItemReportAuto); err != nil {
			t.Fatal(err)
		}
		if got := m.Items()[ItemReportAuto].Checked; got != want {
			t.Fatalf("checked %t, want %t", got, want)
		}
	}
	last := f.calls[len(f.calls)-1]
	if last != `settings {"set":{"report_automatically":false}}` {
		t.Fatalf("last call %s", last)
	}
	select {
	case <-m.Changed():
	default:
		t.Fatal("no change notification after a click")
	}

	// Pause sets now+1h; the menu then offers Resume, which sends null.
	if _, err := m.Activate(ctx, ItemPause); err != nil {
		t.Fatal(err)
	}
	if want := `settings {"set":{"paused_until":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}}`; f.calls[len(f.calls)-1] != want {
		t.Fatalf("pause sent %s, want %s", f.calls[len(f.calls)-1], want)
	}
	if m.Items()[ItemPause].Label != "Resume prompts" || m.Items()[ItemPaused].Hidden {
		t.Fatal("menu does not show the pause")
	}
	if _, err := m.Activate(ctx, ItemPause); err != nil {
		t.Fatal(err)
	}
	if f.calls[len(f.calls)-1] != `settings {"set":{"paused_until":null}}` {
		t.Fatalf("resume sent %s", f.calls[len(f.calls)-1])
	}
	if m.Items()[ItemPause].Label != "Pause prompts for an hour" {
		t.Fatal("still paused after resume")
	}

	// Sync asks the agent and refreshes the status.
	if _, err := m.Activate(ctx, ItemSync); err != nil {
		t.Fatal(err)
	}
	if n := len(f.calls); f.calls[n-2] != "sync null" || f.calls[n-1] != "status null" {
		t.Fatalf("sync calls %v", f.calls[n-2:])
	}
	if !strings.Contains(m.Items()[ItemWhitelist].Label, "version 1") {
		t.Fatalf("whitelist line after sync: %q", m.Items()[ItemWhitelist].Label)
	}

	// A refusal from the agent shows in the menu until the next success.
	f.fail = protocol.Errorf(protocol.CodeHubUnreachable, "the hub did not answer")
	if _, err := m.Activate(ctx, ItemSync); err == nil {
		t.Fatal("no error")
	}
	if it := m.Items()[ItemError]; it.Hidden || it.Label != "Could not do that: the hub did not answer" {
		t.Fatalf("error line %+v", it)
	}
	f.fail = nil
	m.Activate(ctx, ItemReportAuto)
	if !m.Items()[ItemError].Hidden {
		t.Fatal("error line still shown after a success")
	}
	// Clicking a status line does nothing at all.
	n := len(f.calls)
	m.Activate(ctx, ItemHub)
	if len(f.calls) != n {
		t.Fatal("a status line sent a request")
	}
}

func TestEvents(t *testing.T) {
	m, _ := newModel(t, "en", protocol.StatusResult{
		Hub:       protocol.HubStatus{URL: ptr("http://hub.test"), Reachable: ptr(false)},
		Whitelist: protocol.WhitelistStatus{Version: ptr(int64(1)), Stale: true},
	})
	// Events arrive from the client as raw JSON.
	ev := func(typ, data string) protocol.Event {
		return protocol.Event{Type: typ, Data: json.RawMessage(data)}
	}
	steps := []struct {
		ev      protocol.Event
		refresh bool
		item    ItemID
		want    string
		checked bool
	}{
		{ev: ev("whitelist-updated", `{"version":9,"issued_at":"2026-11-22T09:00:00Z"}`), item: ItemWhitelist, want: "Whitelist: version 9, updated just now"},
		{ev: ev("whitelist-updated", `{"version":9}`), item: ItemHub, want: "Hub: hub.test (reachable)"},
		{ev: ev("reports-changed", `{"queued":4,"sent":1,"failed":0}`), item: ItemReports, want: "Reports waiting: 4"},
		{ev: ev("settings-changed", `{"report_automatically":true,"paused_until":null,"managed":[]}`), item: ItemReportAuto, want: "Report automatically", checked: true},
		{ev: ev("reports-changed", `"garbage"`), refresh: true, item: ItemReports, want: "Reports waiting: 4"},
		{ev: ev("service-approved", `{"service":"zoom","name":"Zoom"}`), item: ItemReports, want: "Reports waiting: 4"},
		{ev: ev("enrolment-changed", `{"enrolled":true,"org":"cardiff","hub":"https://hub.cardiff.example"}`), item: ItemHub, want: "Hub: hub.cardiff.example (reachable)"},
		{ev: ev("enrolment-changed", `[]`), refresh: true, item: ItemHub, want: "Hub: hub.cardiff.example (reachable)"},
	}
	for i, s := range steps {
		if got := m.HandleEvent(s.ev); got != s.refresh {
			t.Errorf("step %d: refresh %t, want %t", i, got, s.refresh)
		}
		it := m.Items()[s.item]
		if it.Label != s.want || it.Checked != s.checked {
			t.Errorf("step %d: item %q checked=%t, want %q checked=%t", i, it.Label, it.Checked, s.want, s.checked)
		}
	}
}

func TestCatalogsComplete(t *testing.T) {
	en := CatalogFor("en")
	for _, lang := range Languages() {
		c := CatalogFor(lang)
		for k, v := range en {
			w, ok := c[k]
			if !ok || w == "" {
				t.Errorf("%s: no %q", lang, k)
			}
			if strings.Count(w, "%") != strings.Count(v, "%") {
				t.Errorf("%s %q: %q has other verbs than %q", lang, k, w, v)
			}
		}
	}
	for env, want := range map[string]string{"cy_GB.UTF-8": "Gadael", "en_US.UTF-8": "Quit", "": "Quit", "fr_FR": "Quit"} {
		if got := CatalogFor(env).T("quit"); got != want {
			t.Errorf("CatalogFor(%q) quit = %q, want %q", env, got, want)
		}
	}
}

func TestRefreshError(t *testing.T) {
	m := New("en")
	f := &fakeAgent{fail: errors.New("boom")}
	if err := m.Connect(context.Background(), f); err == nil {
		t.Fatal("Connect with a failing status succeeded")
	}
}
