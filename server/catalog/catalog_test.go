package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
)

// fixture is a small catalog: enough services to have alternatives in one
// category and a host per service.
func fixture() *Bundle {
	return &Bundle{
		Categories: whitelist.Categories,
		Services: []whitelist.Service{
			{ID: "docs-a", Name: "Docs A", Vendor: "A", Category: "documents", Hosts: []string{"docs.a.example", "sheets.a.example"}, URL: "https://docs.a.example/", Features: []string{"real-time-co-editing"}},
			{ID: "docs-b", Name: "Docs B", Vendor: "B", Category: "documents", Hosts: []string{"docs.b.example"}, URL: "https://docs.b.example/"},
			{ID: "video-a", Name: "Video A", Vendor: "A", Category: "video", Hosts: []string{"meet.a.example"}, URL: "https://meet.a.example/"},
			{ID: "video-c", Name: "Video C", Vendor: "C", Category: "video", Hosts: []string{"call.c.example"}, URL: "https://call.c.example/"},
		},
	}
}

func examples() *Bundle {
	return &Bundle{
		Organisations: []whitelist.Organisation{
			{ID: "north", Name: "Northshire Council (fictional)", Sector: "local-government"},
			{ID: "south", Name: "South Vale Health Board (fictional)", Sector: "health"},
		},
		Policies: []whitelist.Policy{
			{Org: "north", Service: "video-a", Status: "blocked", Alternatives: []string{"video-c"}, Note: "use C"},
			{Org: "south", Service: "video-c", Status: "approved"},
		},
	}
}

func open(t *testing.T, db *store.DB, opts Options) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOpenSeedsOnceAndMigratesIdempotently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := open(t, db, Options{Seed: fixture()})
		d := c.Document()
		if d.Version != 1 || len(d.Services) != 4 || len(d.Organisations) != 0 {
			t.Fatalf("first open: version %d, %d services, %d orgs; want 1, 4, 0", d.Version, len(d.Services), len(d.Organisations))
		}
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		// Reopening (another process, a restart) neither re-migrates nor
		// re-seeds; asking for examples adds them once.
		c2 := open(t, db, Options{Seed: fixture()})
		if c2.Document().Version != 1 {
			t.Fatalf("reopen issued version %d", c2.Document().Version)
		}
		c3 := open(t, db, Options{Seed: fixture(), Examples: examples()})
		if d := c3.Document(); d.Version != 2 || len(d.Organisations) != 2 || len(d.Policies) != 2 {
			t.Fatalf("examples: version %d, %d orgs, %d policies", d.Version, len(d.Organisations), len(d.Policies))
		}
		c4 := open(t, db, Options{Seed: fixture(), Examples: examples()})
		if c4.Document().Version != 2 {
			t.Fatalf("examples imported twice: version %d", c4.Document().Version)
		}
	})
}

func TestEmptyCatalogStillHasAVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := open(t, db, Options{})
		if d := c.Document(); d == nil || d.Version != 1 || len(d.Services) != 0 {
			t.Fatalf("document %+v", d)
		}
	})
}

func TestBadImportsChangeNothing(t *testing.T) {
	cases := []struct {
		name string
		b    Bundle
		want string
	}{
		{"host claimed by an existing service", Bundle{Services: []whitelist.Service{
			{ID: "docs-z", Name: "Z", Category: "documents", Hosts: []string{"DOCS.B.example."}, URL: "https://z.example/"}}}, `host "docs.b.example" is claimed by both "docs-b" and "docs-z"`},
		{"host claimed twice in the file", Bundle{Services: []whitelist.Service{
			{ID: "x1", Name: "X1", Category: "chat", Hosts: []string{"x.example"}, URL: "https://x.example/"},
			{ID: "x2", Name: "X2", Category: "chat", Hosts: []string{"x.example"}, URL: "https://x.example/"}}}, "claimed by both"},
		{"unknown category", Bundle{Services: []whitelist.Service{
			{ID: "x1", Name: "X1", Category: "email", Hosts: []string{"x.example"}, URL: "https://x.example/"}}}, `unknown category "email"`},
		{"unknown category in the list", Bundle{Categories: []string{"documents", "games"}}, `unknown category "games"`},
		{"repeated service id", Bundle{Services: []whitelist.Service{
			{ID: "x1", Name: "X1", Category: "chat", Hosts: []string{"x.example"}, URL: "https://x.example/"},
			{ID: "x1", Name: "X1", Category: "chat", Hosts: []string{"y.example"}, URL: "https://x.example/"}}}, "appears twice"},
		{"not a host", Bundle{Services: []whitelist.Service{
			{ID: "x1", Name: "X1", Category: "chat", Hosts: []string{"https://x.example/path"}, URL: "https://x.example/"}}}, "is not a host name"},
		{"not a URL", Bundle{Services: []whitelist.Service{
			{ID: "x1", Name: "X1", Category: "chat", Hosts: []string{"x.example"}, URL: "javascript:alert(1)"}}}, "not an http(s) URL"},
		{"unknown alternative", Bundle{Policies: []whitelist.Policy{
			{Org: "north", Service: "docs-a", Status: "blocked", Alternatives: []string{"docs-b", "nope"}}}}, `unknown alternative "nope"`},
		{"unknown organisation", Bundle{Policies: []whitelist.Policy{
			{Org: "west", Service: "docs-a", Status: "blocked"}}}, `unknown organisation "west"`},
		{"unknown status", Bundle{Policies: []whitelist.Policy{
			{Org: "north", Service: "docs-a", Status: "allowed"}}}, `status "allowed"`},
		{"NUL in a name", Bundle{Organisations: []whitelist.Organisation{{ID: "west", Name: "West\x00"}}}, "control character"},
		{"bad organisation id", Bundle{Organisations: []whitelist.Organisation{{ID: "West Side", Name: "West"}}}, "organisation id"},
		// A valid part before the bad one must not be written either.
		{"valid service then bad policy", Bundle{
			Services: []whitelist.Service{{ID: "new-one", Name: "New", Category: "chat", Hosts: []string{"new.example"}, URL: "https://new.example/"}},
			Policies: []whitelist.Policy{{Org: "north", Service: "new-one", Status: "approved", Alternatives: []string{"ghost"}}}}, "unknown alternative"},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := open(t, db, Options{Seed: fixture(), Examples: examples()})
		before, err := c.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v := c.Document().Version
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := tc.b
				_, err := c.Import(ctx, &b, "test")
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want ErrInvalid mentioning %q", err, tc.want)
				}
				after, err := c.Export(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(before, after) {
					t.Fatal("a refused import changed the catalog")
				}
				if got := c.Document().Version; got != v {
					t.Fatalf("a refused import published version %d (was %d)", got, v)
				}
			})
		}
		// The counter was rolled back too: the next good change is v+1.
		nv, err := c.SetPolicy(ctx, whitelist.Policy{Org: "north", Service: "docs-a", Status: "approved"}, "test")
		if err != nil || nv != v+1 {
			t.Fatalf("next version %d, %v; want %d", nv, err, v+1)
		}
	})
}

func TestImportMovesHostAndUpdates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := open(t, db, Options{Seed: fixture()})
		// sheets.a.example moves from docs-a to docs-b in one import.
		_, err := c.Import(ctx, &Bundle{Services: []whitelist.Service{
			{ID: "docs-b", Name: "Docs B", Category: "documents", Hosts: []string{"docs.b.example", "sheets.a.example"}, URL: "https://docs.b.example/"},
			{ID: "docs-a", Name: "Docs A2", Category: "documents", Hosts: []string{"docs.a.example"}, URL: "https://docs.a.example/"},
		}}, "test")
		if err != nil {
			t.Fatal(err)
		}
		d := c.Document()
		if s := d.ServiceForHost("sheets.a.example"); s == nil || s.ID != "docs-b" {
			t.Fatalf("sheets.a.example belongs to %+v", s)
		}
		if s := d.ServiceForHost("docs.a.example"); s == nil || s.Name != "Docs A2" {
			t.Fatalf("docs-a not updated: %+v", s)
		}
	})
}

func TestSetPolicyRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := open(t, db, Options{Seed: fixture(), Examples: examples()})
		cases := []struct {
			p    whitelist.Policy
			want string // "" = accepted
		}{
			{whitelist.Policy{Org: "north", Service: "docs-a", Status: "restricted", Alternatives: []string{"docs-b"}, Note: "guests only"}, ""},
			{whitelist.Policy{Org: "north", Service: "docs-a", Status: "unknown"}, ""},
			{whitelist.Policy{Org: "north", Service: "docs-a", Status: "blocked", Alternatives: []string{"docs-a"}}, "its own alternative"},
			{whitelist.Policy{Org: "north", Service: "docs-a", Status: "blocked", Alternatives: []string{"docs-b", "docs-b"}}, "listed twice"},
			{whitelist.Policy{Org: "north", Service: "nope", Status: "blocked"}, "unknown service"},
			{whitelist.Policy{Org: "north", Service: "docs-a", Status: ""}, "status"},
		}
		for _, tc := range cases {
			before := c.Document().Version
			v, err := c.SetPolicy(ctx, tc.p, "test")
			if tc.want == "" {
				if err != nil || v != before+1 || c.Document().Version != v {
					t.Fatalf("%+v: version %d (doc %d), %v; want %d", tc.p, v, c.Document().Version, err, before+1)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%+v: got %v, want %q", tc.p, err, tc.want)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_audit WHERE action = 'policy set' AND actor = 'test'`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("audit rows %d, %v; want 2", n, err)
		}
	})
}

func TestConcurrentSetPolicyVersionsAreMonotonic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Two catalogs on one database stand for the serving hub and an
		// admin command.
		a := open(t, db, Options{Seed: fixture(), Examples: examples()})
		b := open(t, db, Options{Seed: fixture(), Examples: examples()})
		start := a.Document().Version
		var published []int64
		var pmu sync.Mutex
		a.OnPublish(func(d *whitelist.Document) {
			pmu.Lock()
			published = append(published, d.Version)
			pmu.Unlock()
		})
		const n = 16
		versions := make([]int64, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := a
				if i%2 == 1 {
					c = b
				}
				p := whitelist.Policy{Org: "north", Service: "docs-a", Status: "blocked", Note: fmt.Sprintf("change %d", i)}
				v, err := c.SetPolicy(ctx, p, "test")
				if err != nil {
					t.Error(err)
				}
				versions[i] = v
			}()
		}
		wg.Wait()
		sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
		for i, v := range versions {
			if v != start+1+int64(i) {
				t.Fatalf("versions %v: want each of %d..%d once", versions, start+1, start+n)
			}
		}
		// Each stored version carries its own number, and the last one holds
		// the last committed note.
		rows, err := db.QueryContext(ctx, `SELECT version, payload FROM whitelist_versions ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int64
			var payload string
			rows.Scan(&v, &payload)
			var d whitelist.Document
			if err := json.Unmarshal([]byte(payload), &d); err != nil || d.Version != v {
				t.Fatalf("stored version %d holds %d (%v)", v, d.Version, err)
			}
		}
		if err := a.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if a.Document().Version != start+n {
			t.Fatalf("a holds %d, want %d", a.Document().Version, start+n)
		}
		pmu.Lock()
		defer pmu.Unlock()
		for i := 1; i < len(published); i++ {
			if published[i] <= published[i-1] {
				t.Fatalf("published out of order: %v", published)
			}
		}
	})
}

func TestHostileStringsRoundTrip(t *testing.T) {
	hostile := []string{
		`<script>alert("x")</script>`,
		`'; DROP TABLE policies; --`,
		"line one\nline two\ttabbed",
		"Cyngor Sir Ddinbych — ŵ ŷ 🙂 \u202eevil",
		`\u0000 not a NUL, just text ? $1 %s`,
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := open(t, db, Options{Seed: fixture()})
		for i, s := range hostile {
			id := fmt.Sprintf("org-%d", i)
			name := strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "\t", " ")
			if _, err := c.AddOrganisation(ctx, whitelist.Organisation{ID: id, Name: name, Sector: s[:3]}, s[:5]); err != nil {
				t.Fatalf("org %q: %v", name, err)
			}
			if _, err := c.SetPolicy(ctx, whitelist.Policy{Org: id, Service: "docs-a", Status: "blocked", Note: s}, name); err != nil {
				t.Fatalf("note %q: %v", s, err)
			}
		}
		// A second catalog reads them back from the database.
		other := open(t, db, Options{})
		d := other.Document()
		for i, s := range hostile {
			var found bool
			for _, p := range d.Policies {
				if p.Org == fmt.Sprintf("org-%d", i) {
					found = p.Note == s
				}
			}
			if !found {
				t.Fatalf("note %q did not round-trip", s)
			}
		}
		exp, err := other.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(exp)
		back, err := ParseBundle(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Policies, exp.Policies) || !reflect.DeepEqual(back.Organisations, exp.Organisations) {
			t.Fatal("export did not parse back to itself")
		}
	})
}

func TestReissueBeforeExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
		c := open(t, db, Options{Seed: fixture(), Now: func() time.Time { return now }})
		d := c.Document()
		if !d.ExpiresAt.Equal(d.IssuedAt.Add(DefaultTTL)) {
			t.Fatalf("expires %v, issued %v", d.ExpiresAt, d.IssuedAt)
		}
		steps := []struct {
			after time.Duration
			want  int64 // 0: not due
		}{
			{24 * time.Hour, 0},
			{5*24*time.Hour - time.Second, 0},
			{5*24*time.Hour + time.Second, 2},
			{5*24*time.Hour + 2*time.Second, 0}, // the fresh one is not due
		}
		for _, s := range steps {
			now = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC).Add(s.after)
			v, err := c.Reissue(ctx, "test")
			if err != nil || v != s.want {
				t.Fatalf("at +%v: reissued %d, %v; want %d", s.after, v, err, s.want)
			}
		}
		if d := c.Document(); d.Version != 2 || !d.ExpiresAt.After(now.Add(6*24*time.Hour)) {
			t.Fatalf("after reissue: %d expiring %v", d.Version, d.ExpiresAt)
		}
	})
}

func TestParseBundleRefusesUnknownKeys(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{`{"organisatons": []}`, `unknown key "organisatons"`},
		{`{"services": [{"id": "x", "hostz": []}]}`, `unknown field "hostz"`},
		{`[1, 2]`, "not a JSON object"},
		{`{"$schema": "x", "_comment": "ok", "services": []}`, ""},
	}
	for _, tc := range cases {
		_, err := ParseBundle(strings.NewReader(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.in, err, tc.want)
		}
	}
}
