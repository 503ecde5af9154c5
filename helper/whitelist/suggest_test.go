package whitelist

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/shared/catalog"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// rankingDoc is small enough to reason about by hand:
//
//	approvals: teams 3 (a, b, c), webex 3 (a, b, d), whereby 2 (a, c),
//	           zoom 2 (b, c), meet 0, jitsi 0.
func rankingDoc(t *testing.T) *Index {
	t.Helper()
	svc := func(id, cat string, features ...string) wl.Service {
		return wl.Service{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Vendor: "v", Category: cat,
			Hosts: []string{id + ".example"}, URL: "https://" + id + ".example/", Features: features}
	}
	pol := func(org, service, status string, alts ...string) wl.Policy {
		return wl.Policy{Org: org, Service: service, Status: status, Alternatives: alts}
	}
	noted := func(p wl.Policy, note string) wl.Policy {
		p.Note = note
		return p
	}
	d := &wl.Document{
		Schema: wl.Schema, Version: 1, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
		Categories: wl.Categories,
		Services: []wl.Service{
			svc("zoom", "video", "video", "screen-sharing", "recording", "chat"),
			svc("teams", "video", "video", "screen-sharing", "chat"),
			svc("webex", "video", "video", "screen-sharing", "recording"),
			svc("meet", "video", "video", "screen-sharing", "recording"),
			svc("whereby", "video", "video"),
			svc("jitsi", "video", "video", "end-to-end-encryption"),
			svc("gdocs", "documents", "real-time-co-editing"),
			svc("word", "documents", "real-time-co-editing", "comments"),
		},
		Organisations: []wl.Organisation{
			{ID: "a", Name: "Org A", Sector: "health"}, {ID: "b", Name: "Org B", Sector: "health"},
			{ID: "c", Name: "Org C", Sector: "health"}, {ID: "d", Name: "Org D", Sector: "health"},
		},
		Policies: []wl.Policy{
			noted(pol("a", "zoom", wl.Blocked, "teams", "word"), noteA),
			pol("a", "meet", wl.Blocked),
			pol("a", "teams", wl.Approved), pol("a", "webex", wl.Approved), pol("a", "whereby", wl.Approved),
			noted(pol("a", "jitsi", wl.Restricted), noteHostile),
			pol("a", "gdocs", wl.Blocked, "word"), pol("a", "word", wl.Approved),
			pol("b", "teams", wl.Approved), pol("b", "webex", wl.Approved), noted(pol("b", "zoom", wl.Approved), noteB),
			pol("c", "teams", wl.Approved), pol("c", "whereby", wl.Approved), pol("c", "zoom", wl.Approved),
			pol("d", "webex", wl.Approved),
		},
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewIndex(d)
}

// Policy notes in rankingDoc.
const (
	noteA       = "Use Teams for meetings with other organisations; ask IT for a guest account."
	noteB       = "Approved for meetings with patients.\nUse your work account."
	noteHostile = "  <img src=x onerror=alert(1)> \x1b[31mred\r\n\tand \"quoted\" & more\u009b  "
	// noteHostile as the result carries it: markup kept (it is text), control
	// characters but newline and tab dropped, surrounding space trimmed.
	noteHostileClean = "<img src=x onerror=alert(1)> [31mred\n\tand \"quoted\" & more"
)

type want struct {
	service string
	codes   []string
}

func TestSuggestRanking(t *testing.T) {
	ix := rankingDoc(t)
	const (
		org  = ReasonOrgAlternative
		here = ReasonApprovedHere
		byN  = ReasonApprovedByN
		feat = ReasonSharedFeatures
	)
	cases := []struct {
		name, host, org string
		service         string // "" for not in the catalog
		status          string
		approvals       int
		alts            []want
		note            string
	}{
		{"org's alternatives first, in its order, then approved here by approvals", "zoom.example", "a", "zoom", wl.Blocked, 2, []want{
			{"teams", []string{org, here, byN, feat}},
			{"word", []string{org, here, byN}}, // another category, no shared features
			{"webex", []string{here, byN, feat}},
			{"whereby", []string{here, byN, feat}},
		}, noteA},
		{"equal approvals: more shared features first", "meet.example", "a", "meet", wl.Blocked, 0, []want{
			{"webex", []string{here, byN, feat}}, // 3 shared, beats teams' 2 although it sorts later
			{"teams", []string{here, byN, feat}},
			{"whereby", []string{here, byN, feat}},
		}, ""},
		{"restricted and unknown services are not offered as approved here; a hostile note is cleaned, markup kept as text", "jitsi.example", "a", "jitsi", wl.Restricted, 0, []want{
			{"teams", []string{here, byN, feat}},
			{"webex", []string{here, byN, feat}},
			{"whereby", []string{here, byN, feat}},
		}, noteHostileClean},
		{"no organisation: approvals across organisations", "zoom.example", "", "zoom", wl.Unknown, 2, []want{
			{"teams", []string{byN, feat}},
			{"webex", []string{byN, feat}},
			{"whereby", []string{byN, feat}},
		}, ""}, // zoom at no organisation: nobody's note
		{"organisation the document does not know: as without one", "zoom.example", "nobody", "zoom", wl.Unknown, 2, []want{
			{"teams", []string{byN, feat}},
			{"webex", []string{byN, feat}},
			{"whereby", []string{byN, feat}},
		}, ""},
		{"approved here: status approved, others approved here still listed, the organisation's note", "zoom.example", "b", "zoom", wl.Approved, 2, []want{
			{"teams", []string{here, byN, feat}},
			{"webex", []string{here, byN, feat}},
		}, noteB},
		{"no policy at the organisation: status unknown", "whereby.example", "d", "whereby", wl.Unknown, 2, []want{
			{"webex", []string{here, byN, feat}},
		}, ""},
		{"subdomain, mixed case, trailing dot", "US02web.Zoom.Example.", "a", "zoom", wl.Blocked, 2, nil, noteA},
		{"a policy without a note: no note", "gdocs.example", "a", "gdocs", wl.Blocked, 0, []want{
			{"word", []string{org, here, byN, feat}},
		}, ""},
		{"another organisation's note is not shown", "zoom.example", "c", "zoom", wl.Approved, 2, nil, ""},
		{"host not in the catalog", "intranet.example.org", "a", "", wl.Unknown, 0, []want{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ix.Suggest(tc.host, tc.org, false)
			if got.Note != tc.note {
				t.Errorf("note %q, want %q", got.Note, tc.note)
			}
			if tc.service == "" {
				if got.Service != nil || len(got.Alternatives) != 0 || got.Status != wl.Unknown {
					t.Fatalf("not-in-catalog host gave %+v", got)
				}
				return
			}
			if got.Service == nil || *got.Service != tc.service || got.Status != tc.status || got.Approvals != tc.approvals {
				t.Fatalf("service %v status %q approvals %d; want %s %q %d", got.Service, got.Status, got.Approvals, tc.service, tc.status, tc.approvals)
			}
			if tc.org != "" && (got.Org == nil || *got.Org != tc.org) {
				t.Errorf("org %v, want %q", got.Org, tc.org)
			}
			if tc.alts == nil {
				return
			}
			var gotW []want
			for i, a := range got.Alternatives {
				if a.Rank != i+1 {
					t.Errorf("alternative %d has rank %d", i, a.Rank)
				}
				w := want{service: a.Service}
				for _, r := range a.Reasons {
					w.codes = append(w.codes, r.Code)
					if r.Text == "" {
						t.Errorf("%s: reason %s has no text", a.Service, r.Code)
					}
				}
				gotW = append(gotW, w)
			}
			if fmt.Sprint(gotW) != fmt.Sprint(tc.alts) && !(len(gotW) == 0 && len(tc.alts) == 0) {
				t.Errorf("alternatives\n got  %v\n want %v", gotW, tc.alts)
			}
		})
	}
}

func TestSuggestReasonTexts(t *testing.T) {
	got := rankingDoc(t).Suggest("zoom.example", "a", false)
	first := got.Alternatives[0].Reasons
	texts := map[string]string{}
	for _, r := range first {
		texts[r.Code] = r.Text
	}
	checks := map[string]string{
		ReasonOrgAlternative: "Org A recommends it instead of Zoom.",
		ReasonApprovedHere:   "Org A approves Teams.",
		ReasonApprovedByN:    "Approved by 3 organisations.",
		ReasonSharedFeatures: "Has 3 features in common with Zoom: video, screen-sharing, chat.",
	}
	for code, want := range checks {
		if texts[code] != want {
			t.Errorf("%s: %q, want %q", code, texts[code], want)
		}
	}
	if w := rankingDoc(t).Suggest("meet.example", "a", false).Alternatives[2].Reasons; w[1].Text != "Approved by 2 organisations." || w[2].Text != "Has 1 feature in common with Meet: video." {
		t.Errorf("singular forms: %+v", w)
	}
}

func TestSuggestCapsAlternatives(t *testing.T) {
	d := &wl.Document{Schema: wl.Schema, Version: 1, Categories: wl.Categories,
		Organisations: []wl.Organisation{{ID: "o", Name: "O"}}}
	for i := range 12 {
		id := fmt.Sprintf("s%02d", i)
		d.Services = append(d.Services, wl.Service{ID: id, Category: "wiki", Hosts: []string{id + ".example"}})
		d.Policies = append(d.Policies, wl.Policy{Org: "o", Service: id, Status: wl.Approved})
	}
	d.Policies[0].Status = wl.Blocked
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := len(NewIndex(d).Suggest("s00.example", "o", false).Alternatives); n != MaxAlternatives {
		t.Errorf("%d alternatives, want %d", n, MaxAlternatives)
	}
}

// TestSuggestOnTheDemoData pins the example policies' story, which the demo
// and the documentation tell: the council blocks Zoom and points to Teams,
// which every example organisation approves.
func TestSuggestOnTheDemoData(t *testing.T) {
	d, err := catalog.ExampleDocument(1, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(d)
	s := ix.Suggest("us02web.zoom.us", "example-borough", false)
	if s.Status != wl.Blocked || len(s.Alternatives) == 0 || s.Alternatives[0].Service != "microsoft-teams" {
		t.Fatalf("zoom at the borough: %+v", s)
	}
	s = ix.Suggest("docs.google.com", "example-health", false)
	if s.Status != wl.Blocked || s.Alternatives[0].Service != "microsoft-365" {
		t.Fatalf("google docs at the health board: %+v", s)
	}
	s = ix.Suggest("miro.com", "example-borough", false)
	if s.Status != wl.Approved || s.Approvals != 3 {
		t.Fatalf("miro at the borough: %+v", s)
	}
}

// TestIndexMatchesDocumentLookup: the index gives the same answer as the
// shared reference implementation for every catalog host, a subdomain of
// each, and hosts outside the catalog.
func TestIndexMatchesDocumentLookup(t *testing.T) {
	d, err := catalog.ExampleDocument(1, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(d)
	hosts := []string{"", ".", "com", "google.com", "mail.google.com", "example.org", "a.b.c.d.example.net", "ZOOM.US", "zoom.us."}
	for _, s := range d.Services {
		for _, h := range s.Hosts {
			hosts = append(hosts, h, "x."+h, "a.b."+h, strings.ToUpper(h))
		}
	}
	for _, h := range hosts {
		want, got := d.ServiceForHost(h), ix.ServiceForHost(h)
		if (want == nil) != (got == nil) || (want != nil && want.ID != got.ID) {
			t.Errorf("%q: index %v, document %v", h, got, want)
		}
	}
	if !slices.Contains(hosts, "x.sharepoint.com") {
		t.Error("test data lost sharepoint")
	}
}

func BenchmarkServiceForHost(b *testing.B) {
	d, _ := catalog.ExampleDocument(1, time.Now(), time.Hour)
	ix := NewIndex(d)
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			ix.ServiceForHost("tenant-my.sharepoint.com")
		}
	})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			d.ServiceForHost("tenant-my.sharepoint.com")
		}
	})
}

// TestSuggestResultsMatchProtocolSchema checks every answer on the demo data
// against the protocol's schema for the suggest result, which the extension
// relies on.
func TestSuggestResultsMatchProtocolSchema(t *testing.T) {
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	d, err := catalog.ExampleDocument(1, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(d)
	orgs := []string{"", "example-nowhere"}
	for _, o := range d.Organisations {
		orgs = append(orgs, o.ID)
	}
	hosts := []string{"intranet.example.org"}
	for _, s := range d.Services {
		hosts = append(hosts, s.Hosts[0])
	}
	n := 0
	for _, h := range hosts {
		for _, o := range orgs {
			for _, stale := range []bool{false, true} {
				b, err := json.Marshal(ix.Suggest(h, o, stale))
				if err != nil {
					t.Fatal(err)
				}
				if err := set.ValidateResult("suggest", b); err != nil {
					t.Fatalf("%s at %q: %v\n%s", h, o, err, b)
				}
				n++
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d results checked", n)
	}
}

func TestCleanNote(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"plain", noteA, noteA},
		{"lines and tabs kept, space trimmed", "  one\n\ttwo \n", "one\n\ttwo"},
		{"markup is text", "<b>bold</b> & <script>x</script>", "<b>bold</b> & <script>x</script>"},
		{"controls dropped: C0, DEL, C1, CR", "a\x00b\x07c\x1bd\x7fe\u0085f\u009bg\r\n", "abcdefg"},
		{"invalid UTF-8 replaced", "caf\xe9", "caf\uFFFD"},
		{"Welsh kept", "Defnyddiwch Teams; gofynnwch i'r tîm TG.", "Defnyddiwch Teams; gofynnwch i'r tîm TG."},
		{"long ASCII cut to MaxNote", strings.Repeat("a", MaxNote+500), strings.Repeat("a", MaxNote)},
		{"cut at a character boundary", strings.Repeat("€", MaxNote), strings.Repeat("€", MaxNote/3)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := CleanNote(tc.in); got != tc.want {
				t.Errorf("CleanNote(%q)\n got  %q\n want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestSuggestNoteMatchesProtocolSchema: whatever note a signed document
// holds, the result stays valid for the extension.
func TestSuggestNoteMatchesProtocolSchema(t *testing.T) {
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, note := range []string{"", noteA, noteHostile, strings.Repeat("a", 5000), strings.Repeat("€\r", 2000), "\xff\xfe<x>"} {
		d := &wl.Document{
			Schema: wl.Schema, Version: 1, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour),
			Categories: wl.Categories,
			Services: []wl.Service{{ID: "zoom", Name: "Zoom", Vendor: "v", Category: "video",
				Hosts: []string{"zoom.example"}, URL: "https://zoom.example/"}},
			Organisations: []wl.Organisation{{ID: "a", Name: "Org A", Sector: "health"}},
			Policies:      []wl.Policy{{Org: "a", Service: "zoom", Status: wl.Blocked, Alternatives: []string{}, Note: note}},
		}
		res := NewIndex(d).Suggest("zoom.example", "a", false)
		if note != "" && res.Note == "" {
			t.Errorf("note %.20q lost", note)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.ValidateResult("suggest", b); err != nil {
			t.Errorf("note %.20q: %v", note, err)
		}
	}
}
