package catalog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/detour-project/detour/shared/whitelist"
)

func compile(t *testing.T, name string, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sch, err := c.Compile(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, data []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("instance is not JSON: %v", err)
	}
	return sch.Validate(inst)
}

func TestFilesMatchTheirSchemas(t *testing.T) {
	if err := validate(t, compile(t, "services.schema.json", ServicesSchemaJSON), ServicesJSON); err != nil {
		t.Errorf("services.json: %v", err)
	}
	if err := validate(t, compile(t, "examples.schema.json", ExamplesSchemaJSON), ExamplesJSON); err != nil {
		t.Errorf("examples.json: %v", err)
	}
}

// TestServicesSchemaRejects makes sure the schema is not vacuous: each edit
// of one real service must be refused.
func TestServicesSchemaRejects(t *testing.T) {
	sch := compile(t, "services.schema.json", ServicesSchemaJSON)
	cases := []struct {
		name string
		edit func(s map[string]any)
	}{
		{"uppercase host", func(s map[string]any) { s["hosts"] = []any{"Docs.Google.com"} }},
		{"wildcard host", func(s map[string]any) { s["hosts"] = []any{"*.sharepoint.com"} }},
		{"single-label host", func(s map[string]any) { s["hosts"] = []any{"localhost"} }},
		{"trailing dot", func(s map[string]any) { s["hosts"] = []any{"zoom.us."} }},
		{"host with a path", func(s map[string]any) { s["hosts"] = []any{"docs.google.com/forms"} }},
		{"no hosts", func(s map[string]any) { s["hosts"] = []any{} }},
		{"http url", func(s map[string]any) { s["url"] = "http://zoom.us/" }},
		{"unknown category", func(s map[string]any) { s["category"] = "email" }},
		{"unknown feature", func(s map[string]any) { s["features"] = []any{"blockchain"} }},
		{"extra field", func(s map[string]any) { s["note"] = "x" }},
		{"missing vendor", func(s map[string]any) { delete(s, "vendor") }},
		{"bad id", func(s map[string]any) { s["id"] = "Google Docs" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f map[string]any
			if err := json.Unmarshal(ServicesJSON, &f); err != nil {
				t.Fatal(err)
			}
			tc.edit(f["services"].([]any)[0].(map[string]any))
			b, _ := json.Marshal(f)
			if err := validate(t, sch, b); err == nil {
				t.Errorf("schema accepted a service with %s", tc.name)
			}
		})
	}
}

func TestExamplesSchemaRejects(t *testing.T) {
	sch := compile(t, "examples.schema.json", ExamplesSchemaJSON)
	cases := []struct {
		name string
		edit func(f map[string]any)
	}{
		{"real-sounding organisation", func(f map[string]any) {
			f["organisations"].([]any)[0].(map[string]any)["name"] = "Cardiff Council"
		}},
		{"unknown sector", func(f map[string]any) { f["organisations"].([]any)[0].(map[string]any)["sector"] = "retail" }},
		{"unknown status", func(f map[string]any) { f["policies"].([]any)[0].(map[string]any)["status"] = "maybe" }},
		{"policy extra field", func(f map[string]any) { f["policies"].([]any)[0].(map[string]any)["by"] = "me" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f map[string]any
			if err := json.Unmarshal(ExamplesJSON, &f); err != nil {
				t.Fatal(err)
			}
			tc.edit(f)
			b, _ := json.Marshal(f)
			if err := validate(t, sch, b); err == nil {
				t.Errorf("schema accepted examples with %s", tc.name)
			}
		})
	}
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validHost is written independently of the schema's pattern, so a mistake
// in one is caught by the other.
func validHost(h string) bool {
	if len(h) > 253 || h != strings.ToLower(h) {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return false
		}
	}
	tld := labels[len(labels)-1]
	return tld[0] >= 'a' && tld[0] <= 'z'
}

func TestSeedCatalog(t *testing.T) {
	cats, svcs, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cats, whitelist.Categories) {
		t.Errorf("categories %v, want %v", cats, whitelist.Categories)
	}
	if len(svcs) < 60 {
		t.Errorf("%d services, want at least 60", len(svcs))
	}
	perCat := map[string]int{}
	owner := map[string]string{}
	ids := map[string]bool{}
	for _, s := range svcs {
		if ids[s.ID] {
			t.Errorf("service id %q repeated", s.ID)
		}
		ids[s.ID] = true
		perCat[s.Category]++
		u, err := url.Parse(s.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			t.Errorf("%s: url %q is not a plain https URL", s.ID, s.URL)
		}
		if len(s.Hosts) == 0 {
			t.Errorf("%s: no hosts", s.ID)
		}
		for _, h := range s.Hosts {
			if !validHost(h) {
				t.Errorf("%s: host %q is not a lowercase DNS name", s.ID, h)
			}
			if other, dup := owner[h]; dup {
				t.Errorf("host %q claimed by %s and %s", h, other, s.ID)
			}
			owner[h] = s.ID
		}
	}
	for _, c := range whitelist.Categories {
		if perCat[c] < 5 {
			t.Errorf("category %s has %d services, want at least 5", c, perCat[c])
		}
	}
}

// TestEveryHostFindsItsService checks the lookup rule on the real data: a
// host listed by a service resolves to that service even when another
// service lists a parent of it (forms.office.com under office.com).
func TestEveryHostFindsItsService(t *testing.T) {
	doc, err := ExampleDocument(1, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Services {
		for _, h := range s.Hosts {
			if got := doc.ServiceForHost(h); got == nil || got.ID != s.ID {
				t.Errorf("ServiceForHost(%q) = %v, want %s", h, got, s.ID)
			}
		}
	}
	cases := map[string]string{
		"example.sharepoint.com":        "sharepoint",
		"example-my.sharepoint.com":     "sharepoint",
		"us02web.zoom.us":               "zoom",
		"word-edit.officeapps.live.com": "microsoft-365",
		"forms.office.com":              "microsoft-forms",
		"paper.dropbox.com":             "dropbox-paper",
		"www.dropbox.com":               "dropbox",
		"example.atlassian.net":         "atlassian-cloud",
		"app.slack.com":                 "slack",
		"Meet.Google.COM.":              "google-meet",
		"google.com":                    "",
		"mail.google.com":               "",
		"live.com":                      "",
		"example.org":                   "",
	}
	for host, want := range cases {
		got := doc.ServiceForHost(host)
		switch {
		case want == "" && got != nil:
			t.Errorf("ServiceForHost(%q) = %s, want none", host, got.ID)
		case want != "" && (got == nil || got.ID != want):
			t.Errorf("ServiceForHost(%q) = %v, want %s", host, got, want)
		}
	}
}

func TestExamples(t *testing.T) {
	_, svcs, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]whitelist.Service{}
	for _, s := range svcs {
		byID[s.ID] = s
	}
	orgs, pols, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) < 4 {
		t.Errorf("%d example organisations, want at least 4", len(orgs))
	}
	orgIDs := map[string]bool{}
	for _, o := range orgs {
		orgIDs[o.ID] = true
		if !strings.HasPrefix(o.Name, "Example ") {
			t.Errorf("organisation %q is not clearly fictional", o.Name)
		}
	}
	seen := map[[2]string]bool{}
	blockedWithAlt := 0
	for _, p := range pols {
		k := [2]string{p.Org, p.Service}
		if seen[k] {
			t.Errorf("two policies for %s/%s", p.Org, p.Service)
		}
		seen[k] = true
		if !orgIDs[p.Org] {
			t.Errorf("policy names unknown organisation %q", p.Org)
		}
		if _, ok := byID[p.Service]; !ok {
			t.Errorf("policy names unknown service %q", p.Service)
		}
		for _, a := range p.Alternatives {
			if _, ok := byID[a]; !ok {
				t.Errorf("%s/%s: unknown alternative %q", p.Org, p.Service, a)
			}
			if a == p.Service {
				t.Errorf("%s/%s: a service is not its own alternative", p.Org, p.Service)
			}
		}
		if p.Alternatives == nil {
			t.Errorf("%s/%s: alternatives is nil, want an empty list", p.Org, p.Service)
		}
		if p.Status == whitelist.Blocked && len(p.Alternatives) > 0 {
			blockedWithAlt++
		}
	}
	if blockedWithAlt < 5 {
		t.Errorf("%d blocked-with-alternative policies, want enough for a demo (5)", blockedWithAlt)
	}
}

// TestExampleDocumentSignsAndVerifies: a document built from the seed and
// the examples survives the real signing path, within the 1 MiB a native
// message may carry even if it were ever sent whole.
func TestExampleDocumentSignsAndVerifies(t *testing.T) {
	doc, err := ExampleDocument(7, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := whitelist.Sign(doc, priv)
	if err != nil {
		t.Fatal(err)
	}
	got, payload, err := whitelist.Verify(env, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 7 || len(got.Services) != len(doc.Services) || len(got.Policies) != len(doc.Policies) {
		t.Errorf("round trip lost data: version %d, %d services, %d policies", got.Version, len(got.Services), len(got.Policies))
	}
	if len(payload) > 1<<20 {
		t.Errorf("payload is %d bytes", len(payload))
	}
}
