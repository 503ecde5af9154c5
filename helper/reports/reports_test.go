package reports

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/shared/privacypass"
	"github.com/detour-project/detour/shared/whitelist"
)

// events records what a Reporter publishes.
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) publish(typ string, data any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, fmt.Sprintf("%s %+v", typ, data))
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.all...)
}

func dirsAt(root string) paths.Dirs {
	return paths.Dirs{Config: filepath.Join(root, "config"), State: filepath.Join(root, "state"), Runtime: filepath.Join(root, "run")}
}

// newReporter opens a reporter on root with fast timings for tests.
func newReporter(t testing.TB, root string, ev *events) *Reporter {
	t.Helper()
	dirs := dirsAt(root)
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Dirs: dirs, Config: cfg, Secrets: keyring.NewFileStore(filepath.Join(root, "secrets.json")),
		MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, RefillDelay: 5 * time.Millisecond,
		Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, HTTPTimeout: 5 * time.Second,
	}
	if ev != nil {
		opts.Publish = ev.publish
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testReport() Report {
	return Report{Service: "google-docs", Host: "docs.google.com", Org: "org-a", Method: "dns-sinkhole",
		Vendor: "umbrella", Need: "shared-document", Hour: time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339), ClientVersion: "0.1.0-dev"}
}

func count(t *testing.T, h *reportstest.Hub) int {
	t.Helper()
	var n int
	if err := h.DB.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM report_counts WHERE org = 'org-a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func enrolled(t *testing.T, root string) (*reportstest.Hub, *Reporter) {
	t.Helper()
	h := reportstest.Start(t, "")
	svc, err := h.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := svc.CreateCode(context.Background(), "org-a")
	if err != nil {
		t.Fatal(err)
	}
	r := newReporter(t, root, nil)
	if r.Enrolled() {
		t.Fatal("enrolled before enrolment")
	}
	if _, _, err := r.Enqueue(testReport(), true); err != ErrNotEnrolled {
		t.Fatalf("enqueue before enrolment: %v", err)
	}
	if _, err := r.Enrol(context.Background(), h.URL, "dtr-wrong"); err == nil {
		t.Fatal("enrolled with a wrong code")
	}
	e, err := r.Enrol(context.Background(), h.URL, code)
	if err != nil {
		t.Fatal(err)
	}
	if e.Org != "org-a" || !r.Enrolled() {
		t.Fatalf("enrolment %+v", e)
	}
	cfg := r.opts.Config.Get()
	if cfg.Hub != h.URL || cfg.Org != "org-a" {
		t.Fatalf("config after enrol: %+v", cfg)
	}
	cred, err := r.opts.Secrets.Get(CredentialKey)
	if err != nil || !strings.HasPrefix(cred, "dvc-") {
		t.Fatalf("credential not in the keyring: %q %v", cred, err)
	}
	raw, _ := os.ReadFile(dirsAt(root).ConfigFile())
	if strings.Contains(string(raw), cred) {
		t.Fatal("the credential is in the config file")
	}
	return h, r
}

func TestEnrolReportCounted(t *testing.T) {
	root := t.TempDir()
	h, r := enrolled(t, root)
	ctx := context.Background()
	if err := r.Refill(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.stashLen(); n != 8 {
		t.Fatalf("stash holds %d, want 8", n)
	}
	id, queued, err := r.Enqueue(testReport(), true)
	if err != nil || queued != 1 {
		t.Fatalf("enqueue: %v %d", err, queued)
	}
	if n := r.stashLen(); n != 7 {
		t.Fatalf("token not bound at enqueue: stash %d", n)
	}
	if !r.SendNow(ctx, id) {
		t.Fatalf("not sent: %+v", r.Status())
	}
	if n := count(t, h); n != 1 {
		t.Fatalf("counted %d", n)
	}
	if st := r.Status(); st.Queued != 0 || st.Sent != 1 || st.Failed != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestResendIsIdempotent puts a sent report back in the queue, as a crash
// after the hub stored it and before the file was removed would leave it.
func TestResendIsIdempotent(t *testing.T) {
	root := t.TempDir()
	h, r := enrolled(t, root)
	ctx := context.Background()
	id, _, err := r.Enqueue(testReport(), true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.store.queueDir(), id+".json")
	var statuses []int
	var mu sync.Mutex
	h.Intercept(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		if req.URL.Path == "/api/v1/reports" {
			mu.Lock()
			statuses = append(statuses, rec.Code)
			mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	var before []byte
	// Bind the token and keep the file as it was before the send.
	if _, err := r.bindToken(ctx, mustItem(t, r, id)); err != nil {
		t.Fatal(err)
	}
	before, _ = os.ReadFile(path)
	if !r.SendNow(ctx, id) {
		t.Fatal("first send failed")
	}
	if err := os.WriteFile(path, before, 0o600); err != nil {
		t.Fatal(err)
	}
	if !r.SendNow(ctx, id) {
		t.Fatal("resend failed")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(statuses) != "[202 200]" {
		t.Fatalf("statuses %v, want [202 200]", statuses)
	}
	if n := count(t, h); n != 1 {
		t.Fatalf("counted %d, want 1", n)
	}
}

func mustItem(t *testing.T, r *Reporter, id string) *Item {
	t.Helper()
	items, err := r.store.items()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.ID == id {
			return it
		}
	}
	t.Fatalf("no item %s", id)
	return nil
}

// TestHubDownThenBack: reports wait with backoff while the hub drops every
// connection, and all arrive once it is back.
func TestHubDownThenBack(t *testing.T) {
	root := t.TempDir()
	h, _ := enrolled(t, root)
	ev := &events{}
	r := newReporter(t, root, ev) // a fresh process's view of the same state
	h.Intercept(reportstest.Down)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	for range 3 {
		if _, _, err := r.Enqueue(testReport(), false); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, func() bool {
		st := r.Status()
		return st.LastError != nil && st.Queued == 3
	})
	time.Sleep(300 * time.Millisecond) // several retries while down
	if n := count(t, h); n != 0 {
		t.Fatalf("counted while down: %d", n)
	}
	h.Intercept(nil)
	waitFor(t, 10*time.Second, func() bool { return r.Status().Queued == 0 })
	if n := count(t, h); n != 3 {
		t.Fatalf("counted %d, want 3", n)
	}
	st := r.Status()
	if st.Sent != 3 || st.Failed != 0 || st.LastError != nil {
		t.Fatalf("status %+v", st)
	}
	// The event follows the status change; on a loaded machine (or under
	// -race) it may come a moment later.
	final := func() bool {
		for _, e := range ev.list() {
			if strings.HasPrefix(e, "reports-changed {Queued:0 Sent:3") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !final() {
		if time.Now().After(deadline) {
			t.Fatalf("no reports-changed event with the final counts: %v", ev.list())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestRefusedReportFails: a report the hub refuses for good leaves the
// queue for failed/, and the others still go.
func TestRefusedReportFails(t *testing.T) {
	root := t.TempDir()
	h, r := enrolled(t, root)
	bad := testReport()
	bad.Host = "zoom.us" // not a host of google-docs
	var logged bytes.Buffer
	r.opts.Log = slog.New(slog.NewTextHandler(&logged, nil))
	ctx := context.Background()
	id, _, _ := r.Enqueue(bad, true)
	if !r.SendNow(ctx, id) {
		t.Fatal("a refused report stayed queued")
	}
	// Why it was given up is in the agent's log, not only in failed/.
	if l := logged.String(); !strings.Contains(l, "gave up on a report") || !strings.Contains(l, "HTTP 400") {
		t.Fatalf("the agent log does not say why the report was given up:\n%s", l)
	}
	st := r.Status()
	if st.Failed != 1 || st.Queued != 0 || st.LastError == nil {
		t.Fatalf("status %+v", st)
	}
	if n := count(t, h); n != 0 {
		t.Fatalf("counted %d", n)
	}
}

func TestReconcileDropsBoundTokenFromStash(t *testing.T) {
	root := t.TempDir()
	_, r := enrolled(t, root)
	if err := r.Refill(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := r.store.stash()
	// A crash after the item was written and before the stash was: the
	// token is in both.
	it := &Item{ID: newID(), Report: testReport(), Token: st.Tokens[0], NotBefore: time.Now()}
	if err := r.store.putItem(it); err != nil {
		t.Fatal(err)
	}
	r2 := newReporter(t, root, nil)
	st2, _ := r2.store.stash()
	for _, tok := range st2.Tokens {
		if tok == it.Token {
			t.Fatal("a token bound to a queued report is still in the stash")
		}
	}
	if len(st2.Tokens) != len(st.Tokens)-1 {
		t.Fatalf("stash %d, want %d", len(st2.Tokens), len(st.Tokens)-1)
	}
}

func TestCorruptQueueFileIsSetAside(t *testing.T) {
	root := t.TempDir()
	_, r := enrolled(t, root)
	p := filepath.Join(r.store.queueDir(), "0123456789abcdef01234567.json")
	os.WriteFile(p, []byte(`{"id": "0123`), 0o600)
	if st := r.Status(); st.Queued != 0 {
		t.Fatalf("corrupt file counted: %+v", st)
	}
	if _, err := os.Stat(p + ".corrupt"); err != nil {
		t.Fatal("corrupt file not set aside")
	}
}

func TestServiceApprovedOnce(t *testing.T) {
	root := t.TempDir()
	_, _ = enrolled(t, root)
	ev := &events{}
	r := newReporter(t, root, ev)
	if _, _, err := r.Enqueue(testReport(), false); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(r.store.reportedPath())
	if strings.Contains(string(raw), "google-docs") {
		t.Fatal("reported.json names the service in clear")
	}
	doc := reportstest.Doc()
	r.OnWhitelist(doc) // still blocked
	if len(filterPrefix(ev.list(), "service-approved")) != 0 {
		t.Fatal("approved while blocked")
	}
	doc.Policies = append(doc.Policies, whitelist.Policy{Org: "org-b", Service: "google-docs", Status: "approved"})
	r.OnWhitelist(doc) // another organisation's approval says nothing to us
	doc.Policies[0].Status = "approved"
	r.OnWhitelist(doc)
	r.OnWhitelist(doc)
	got := filterPrefix(ev.list(), "service-approved")
	if len(got) != 1 || !strings.Contains(got[0], "Service:google-docs Name:Google Docs") {
		t.Fatalf("events %v", got)
	}
}

func filterPrefix(all []string, p string) []string {
	var out []string
	for _, s := range all {
		if strings.HasPrefix(s, p) {
			out = append(out, s)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The kill -9 test runs the queue and sender in a child process (this test
// binary, re-executed) so it can be killed at any moment.
func TestMain(m *testing.M) {
	if os.Getenv("DETOUR_REPORTS_CHILD") != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// child: DETOUR_REPORTS_CHILD=enqueue:N queues N reports (printing
// "queued ID" after each returns) while the sender runs; =drain runs the
// sender until the queue is empty and prints "empty".
func child() int {
	root := os.Getenv("DETOUR_REPORTS_ROOT")
	r := newReporter(childTB{}, root, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	mode := os.Getenv("DETOUR_REPORTS_CHILD")
	if n, ok := strings.CutPrefix(mode, "enqueue:"); ok {
		var k int
		fmt.Sscan(n, &k)
		for range k {
			id, _, err := r.Enqueue(testReport(), true)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Printf("queued %s\n", id)
		}
		select {} // until killed
	}
	for r.Status().Queued > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("empty")
	return 0
}

// childTB lets newReporter run outside a test.
type childTB struct{ testing.TB }

func (childTB) Helper() {}
func (childTB) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(3)
}

func TestKillMidSendLosesNothing(t *testing.T) {
	root := t.TempDir()
	h, _ := enrolled(t, root)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The hub stores the first report, then hangs before answering: the
	// child is killed while it waits for the answer.
	held := h.HoldReportAnswers()
	run := func(mode string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "DETOUR_REPORTS_CHILD="+mode, "DETOUR_REPORTS_ROOT="+root)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewScanner(out)
	}
	cmd, out := run("enqueue:4")
	acked := 0
	lines := make(chan string)
	go func() {
		for out.Scan() {
			lines <- out.Text()
		}
		close(lines)
	}()
	select {
	case <-held.Committed():
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no report reached the hub")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for l := range lines {
		if strings.HasPrefix(l, "queued ") {
			acked++
		}
	}
	cmd.Wait()
	held.Release()
	if acked == 0 {
		t.Fatal("the child acknowledged nothing before the kill")
	}

	cmd, out = run("drain")
	if !out.Scan() || out.Text() != "empty" {
		t.Fatalf("drain: %q", out.Text())
	}
	cmd.Wait()

	statuses := held.Statuses()
	accepted, dup := 0, 0
	for _, s := range statuses {
		switch s {
		case 202:
			accepted++
		case 200:
			dup++
		default:
			t.Fatalf("unexpected status %d in %v", s, statuses)
		}
	}
	if dup < 1 {
		t.Fatalf("the report in flight at the kill was not resent idempotently: %v", statuses)
	}
	if n := count(t, h); n != accepted || n < acked {
		t.Fatalf("counted %d, accepted %d, acknowledged %d (statuses %v)", n, accepted, acked, statuses)
	}
	r := newReporter(t, root, nil)
	if st := r.Status(); st.Queued != 0 || st.Failed != 0 {
		t.Fatalf("left behind: %+v", st)
	}
}

// TestFetchIsNotLinedUpWithSend: when a report finds the stash empty, the
// tokens fetched for it are not spent at once; the report waits another
// random delay. A report the person asked to send now does not wait.
func TestFetchIsNotLinedUpWithSend(t *testing.T) {
	root := t.TempDir()
	h, _ := enrolled(t, root)
	dirs := dirsAt(root)
	cfg, _ := config.Open(dirs.ConfigFile())
	r, err := New(Options{Dirs: dirs, Config: cfg, Secrets: keyring.NewFileStore(filepath.Join(root, "secrets.json")),
		MinDelay: time.Hour, MaxDelay: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, _, err := r.Enqueue(testReport(), false)
	if err != nil {
		t.Fatal(err)
	}
	it := mustItem(t, r, id)
	it.NotBefore = time.Now() // due now, stash empty
	r.store.putItem(it)
	done, retry := r.send(ctx, id)
	if done || time.Until(retry) < 59*time.Minute {
		t.Fatalf("sent right after fetching tokens (done %v, retry in %v)", done, time.Until(retry))
	}
	if it := mustItem(t, r, id); it.Token == "" {
		t.Fatal("token not bound before the wait")
	}
	if n := count(t, h); n != 0 {
		t.Fatalf("counted %d", n)
	}
	// With tokens in the stash, an urgent report goes at once.
	id2, _, _ := r.Enqueue(testReport(), true)
	if !r.SendNow(ctx, id2) || count(t, h) != 1 {
		t.Fatal("urgent report not sent at once")
	}
}

// TestUnpublishedIssuerKeyRefused: a hub that hands this device an issuer
// key it does not publish for everyone (which would mark the device's
// tokens) is refused, at enrolment and when it offers a "new" key.
func TestUnpublishedIssuerKeyRefused(t *testing.T) {
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := privacypass.NewPublicKey(&sk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := IssuerKey{KeyID: base64.RawURLEncoding.EncodeToString(pk.ID[:]), PublicKey: base64.RawURLEncoding.EncodeToString(pk.DER)}
	swap := func(path string, status int, edit func(map[string]any)) func(http.ResponseWriter, *http.Request, http.Handler) {
		return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.URL.Path != path {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body map[string]any
			json.Unmarshal(rec.Body.Bytes(), &body)
			edit(body)
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(body)
		}
	}

	h := reportstest.Start(t, "")
	svc, _ := h.OpenReports(context.Background())
	code, _, _ := svc.CreateCode(context.Background(), "org-a")
	h.Intercept(swap("/api/v1/enrol", 200, func(b map[string]any) { b["issuer_keys"] = []any{secret} }))
	r := newReporter(t, t.TempDir(), nil)
	if _, err := r.Enrol(context.Background(), h.URL, code); err == nil || !strings.Contains(err.Error(), "publishes") {
		t.Fatalf("enrolled with a private key: %v", err)
	}
	if r.Enrolled() {
		t.Fatal("enrolled")
	}

	h.Intercept(nil)
	if _, err := r.Enrol(context.Background(), h.URL, code); err != nil {
		t.Fatal(err)
	}
	h.Intercept(swap("/api/v1/tokens", 409, func(b map[string]any) { b["issuer_key"] = secret }))
	if err := r.Refill(context.Background()); err == nil || !strings.Contains(err.Error(), "does not publish") {
		t.Fatalf("took an unpublished key: %v", err)
	}
	if st, _ := r.store.stash(); len(st.Tokens) != 0 || st.IssuerKey.KeyID == secret.KeyID {
		t.Fatalf("stash %+v", st)
	}
}
