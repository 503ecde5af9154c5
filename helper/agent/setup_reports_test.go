package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/shared/whitelist"
)

// fixedView is a WhitelistView holding one document.
type fixedView struct {
	mu   sync.Mutex
	doc  *whitelist.Document
	subs []func(*whitelist.Document)
}

func (v *fixedView) Current() *whitelist.Document { v.mu.Lock(); defer v.mu.Unlock(); return v.doc }
func (v *fixedView) OnUpdate(f func(*whitelist.Document)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.subs = append(v.subs, f)
}
func (v *fixedView) Sync(context.Context) error { return nil }
func (v *fixedView) publish(d *whitelist.Document) {
	v.mu.Lock()
	v.doc = d
	subs := append([]func(*whitelist.Document){}, v.subs...)
	v.mu.Unlock()
	for _, f := range subs {
		f(d)
	}
}

func request(t *testing.T, typ string, params map[string]any) protocol.Request {
	t.Helper()
	params["id"], params["type"] = 1, typ
	b, _ := json.Marshal(params)
	req, err := protocol.ParseRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestReportHandler drives the report and enrol handlers against a real hub
// with the subsystem wired as the agent wires it: not enrolled (7), a host
// outside the catalog (9), diagnosis first when no method is given, a
// tenant subdomain reported as its catalog host, a vendor name turned into
// its fingerprint id, and the service-approved event.
func TestReportHandler(t *testing.T) {
	t.Setenv(ReportDelayEnv, "0")
	t.Setenv(ManagedRootEnv, t.TempDir()) // no managed policy
	h := reportstest.Start(t, "")
	svc, err := h.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	codeA, _, err := svc.CreateCode(context.Background(), "org-a")
	if err != nil {
		t.Fatal(err)
	}
	dirs := testDirs(t)
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	var evMu sync.Mutex
	var events []protocol.Event
	view := &fixedView{doc: reportstest.Doc()}
	var diagnosed []string
	env := &Env{
		Dirs: dirs, Config: cfg, Secrets: keyring.NewFileStore(filepath.Join(dirs.State, "secrets.json")), Log: quiet,
		Reg: NewRegistry(func(e protocol.Event) { evMu.Lock(); events = append(events, e); evMu.Unlock() }),
		Diagnose: func(ctx context.Context, u string) (probe.Verdict, error) {
			diagnosed = append(diagnosed, u)
			if u == "https://zoom.us/" {
				return probe.Verdict{URL: u, Method: "offline"}, nil
			}
			vendor := "Zscaler"
			return probe.Verdict{URL: u, Blocked: true, Method: "http-blockpage", Vendor: &vendor}, nil
		},
		Whitelist: view,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := setupReports(ctx, env); err != nil {
		t.Fatal(err)
	}
	call := func(typ string, p map[string]any) (any, int) {
		res, err := env.Reg.Dispatch(ctx, request(t, typ, p))
		return res, code(err)
	}
	if _, c := call("report", map[string]any{"host": "docs.google.com", "need": "meeting"}); c != protocol.CodeNotEnrolled {
		t.Fatalf("before enrolment: code %d", c)
	}
	if _, c := call("enrol", map[string]any{"hub": h.URL, "code": "dtr-wrong"}); c == 0 {
		t.Fatal("enrolled with a wrong code")
	}
	enrolEvents := func() (out []protocol.EnrolmentChanged) {
		evMu.Lock()
		defer evMu.Unlock()
		for _, e := range events {
			if e.Type == protocol.EventEnrolmentChanged {
				out = append(out, e.Data.(protocol.EnrolmentChanged))
			}
		}
		return out
	}
	if got := enrolEvents(); len(got) != 0 {
		t.Fatalf("a refused enrolment was announced: %+v", got)
	}
	if _, c := call("enrol", map[string]any{"hub": h.URL, "code": codeA}); c != 0 {
		t.Fatalf("enrol: code %d", c)
	}
	// Clients that said hello before enrolling hear of it (a browser
	// connected before the policy's enrolment finished would not know the
	// person's organisation).
	if got := enrolEvents(); len(got) != 1 || !got[0].Enrolled || got[0].Org == nil || *got[0].Org != "org-a" || got[0].Hub == nil || *got[0].Hub != h.URL {
		t.Fatalf("enrolment-changed events %+v", got)
	}
	if en, _ := env.Reg.Snapshot()[SectionEnrolled].(bool); !en {
		t.Fatal("status does not say enrolled")
	}
	for _, c := range []struct {
		name string
		p    map[string]any
		want int
	}{
		{"host outside the catalog", map[string]any{"host": "example.com", "need": "meeting"}, protocol.CodeNotInCatalog},
		{"a URL, not a host", map[string]any{"host": "https://docs.google.com/document/d/x", "need": "meeting"}, protocol.CodeInvalidParams},
		{"unknown need", map[string]any{"host": "docs.google.com", "need": "curiosity"}, protocol.CodeInvalidParams},
		{"unknown method", map[string]any{"host": "docs.google.com", "need": "meeting", "method": "magic"}, protocol.CodeInvalidParams},
	} {
		if _, got := call("report", c.p); got != c.want {
			t.Errorf("%s: code %d, want %d", c.name, got, c.want)
		}
	}
	res, c := call("report", map[string]any{"host": "Tenant.Docs.Google.com.", "need": "shared-document", "now": true})
	if c != 0 {
		t.Fatalf("report: code %d", c)
	}
	if r := res.(protocol.ReportResult); r.State != "sent" || r.Queued != 0 {
		t.Fatalf("result %+v", r)
	}
	if len(diagnosed) != 1 || diagnosed[0] != "https://tenant.docs.google.com/" {
		t.Fatalf("diagnosed %v", diagnosed)
	}
	var host, method, vendor, need, service, org string
	err = h.DB.QueryRowContext(ctx, `SELECT host, method, vendor, need, service, org FROM reports`).Scan(&host, &method, &vendor, &need, &service, &org)
	if err != nil {
		t.Fatal(err)
	}
	if host != "docs.google.com" || method != "http-blockpage" || vendor != "zscaler" || need != "shared-document" || service != "google-docs" || org != "org-a" {
		t.Fatalf("stored %s %s %s %s %s %s", host, method, vendor, need, service, org)
	}
	// A method given by the browser skips the diagnosis; without --now it
	// waits in the queue.
	res, c = call("report", map[string]any{"host": "drive.google.com", "need": "file-exchange", "method": "dns-sinkhole", "vendor": "not a vendor!"})
	if c != 0 || res.(protocol.ReportResult).State != "queued" || len(diagnosed) != 1 {
		t.Fatalf("queued report: %v %d %v", res, c, diagnosed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		h.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports WHERE host = 'drive.google.com' AND vendor = ''`).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queued report never arrived: %+v", env.Reg.Snapshot()[SectionReports])
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A diagnosis that finds no block is reported as unknown, not as a
	// way of blocking.
	if _, c := call("report", map[string]any{"host": "zoom.us", "need": "meeting", "now": true}); c != 0 {
		t.Fatalf("zoom report: code %d", c)
	}
	var zm string
	if err := h.DB.QueryRowContext(ctx, `SELECT method FROM reports WHERE service = 'zoom'`).Scan(&zm); err != nil || zm != "unknown" {
		t.Fatalf("zoom method %q %v", zm, err)
	}
	// The organisation approves what was reported: the person hears of it.
	doc := reportstest.Doc()
	doc.Version++
	doc.Policies[0].Status = whitelist.Approved
	view.publish(doc)
	evMu.Lock()
	defer evMu.Unlock()
	found := false
	for _, e := range events {
		if e.Type == "service-approved" {
			found = found || e.Data.(protocol.ServiceApproved).Service == "google-docs"
		}
	}
	if !found {
		t.Fatalf("no service-approved event in %v", events)
	}
}

func TestParseDelay(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi time.Duration
		ok     bool
	}{
		{"0", 0, 0, true}, {"30s-10m", 30 * time.Second, 10 * time.Minute, true}, {"1ms-1ms", time.Millisecond, time.Millisecond, true},
		{"10m-30s", 0, 0, false}, {"soon", 0, 0, false}, {"5s", 0, 0, false},
	} {
		lo, hi, err := parseDelay(c.in)
		if (err == nil) != c.ok || (c.ok && (lo != c.lo || hi != c.hi)) {
			t.Errorf("%q: %v %v %v", c.in, lo, hi, err)
		}
	}
}

// TestManagedEnrolment: a managed policy with a hub and an enrolment code
// enrols the device at start, without the person doing anything.
func TestManagedEnrolment(t *testing.T) {
	h := reportstest.Start(t, "")
	svc, err := h.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := svc.CreateCode(context.Background(), "org-b")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	policy, _ := json.Marshal(map[string]string{"hub": h.URL, "enrolment_code": code})
	if err := os.MkdirAll(filepath.Join(root, "etc", "detour"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "detour", "managed.json"), policy, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ManagedRootEnv, root)
	dirs := testDirs(t)
	dirs.Ensure()
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Dirs: dirs, Config: cfg, Secrets: keyring.NewFileStore(filepath.Join(dirs.State, "secrets.json")), Log: quiet, Reg: NewRegistry(nil)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := setupReports(ctx, env); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if en, _ := env.Reg.Snapshot()[SectionEnrolled].(bool); en {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not enrolled by the managed policy")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := cfg.Get(); c.Org != "org-b" || c.Hub != h.URL {
		t.Fatalf("config %+v", c)
	}
}
