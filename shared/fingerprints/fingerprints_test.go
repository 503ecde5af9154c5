package fingerprints

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("fingerprints.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("fingerprints.schema.json")
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, b []byte) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func TestDataMatchesSchema(t *testing.T) {
	if err := validate(t, compileSchema(t), JSON); err != nil {
		t.Fatalf("fingerprints.json does not match its schema: %v", err)
	}
}

// TestSchemaRejects checks that the schema is not vacuous: each broken
// variant of a valid entry must fail.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	good := `{"id":"x","vendor":"Xv","name":"X page","kind":"block","source":"well-known behaviour","confidence":0.9,"rules":[{"body":["blocked by x"]}],"sample":{"status":200,"body":"blocked by x"}}`
	if err := validate(t, s, []byte(`{"schema":1,"fingerprints":[`+good+`]}`)); err != nil {
		t.Fatalf("valid entry refused: %v", err)
	}
	cases := map[string]string{
		"unknown kind":         strings.Replace(good, `"block"`, `"maybe"`, 1),
		"no source":            strings.Replace(good, `"source":"well-known behaviour",`, ``, 1),
		"confidence over 1":    strings.Replace(good, `0.9`, `1.5`, 1),
		"empty rule":           strings.Replace(good, `{"body":["blocked by x"]}`, `{}`, 1),
		"weight-only rule":     strings.Replace(good, `{"body":["blocked by x"]}`, `{"weight":0.5}`, 1),
		"short pattern":        strings.Replace(good, `"blocked by x"]`, `"x"]`, 1),
		"unknown field":        strings.Replace(good, `"id":"x"`, `"id":"x","regex":"."`, 1),
		"not-a-block, no why":  strings.Replace(good, `"block"`, `"not-a-block"`, 1),
		"bad id":               strings.Replace(good, `"id":"x"`, `"id":"X Y"`, 1),
		"redirect without any": strings.Replace(good, `{"body":["blocked by x"]}`, `{"redirect":{}}`, 1),
	}
	for name, fp := range cases {
		if err := validate(t, s, []byte(`{"schema":1,"fingerprints":[`+fp+`]}`)); err == nil {
			t.Errorf("%s: schema accepted %s", name, fp)
		}
	}
}

// TestSources: every fingerprint cites the page or document it was written
// from (a URL or a repository path).
func TestSources(t *testing.T) {
	f, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range f.Fingerprints {
		if len(fp.Source) < 30 || !(strings.Contains(fp.Source, "http") || strings.Contains(fp.Source, "/")) {
			t.Errorf("%s: source %q cites no page", fp.ID, fp.Source)
		}
	}
}

func TestLoadAndFacts(t *testing.T) {
	f, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Fingerprint{}
	for _, fp := range f.Fingerprints {
		byID[fp.ID] = fp
		for _, d := range fp.DNS {
			if _, err := netip.ParseAddr(d.Addr); err != nil {
				t.Errorf("%s: dns address %q: %v", fp.ID, d.Addr, err)
			}
		}
		if fp.Kind == KindNotBlock && (len(fp.DNS) > 0 || len(fp.TLSIssuers) > 0) {
			t.Errorf("%s: a not-a-block entry must not claim DNS or CA evidence", fp.ID)
		}
	}
	// The vendors the issue names must each have an entry.
	for _, id := range []string{"zscaler", "forcepoint", "bluecoat", "umbrella", "cisco-wsa", "meraki", "fortinet",
		"paloalto", "checkpoint", "sophos", "smoothwall", "netsweeper", "squid", "squidguard", "iboss", "lightspeed",
		"barracuda", "skyhigh", "cloudflare-gateway", "sonicwall", "watchguard", "defender",
		"cloudflare-challenge", "akamai-denied", "squid-upstream", "captive-portal"} {
		if _, ok := byID[id]; !ok {
			t.Errorf("missing fingerprint %q", id)
		}
	}
	// Public facts the probe depends on.
	hasDNS := func(id, addr string) bool {
		for _, d := range byID[id].DNS {
			if d.Addr == addr {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ id, addr string }{
		{"umbrella", "146.112.61.104"}, {"umbrella", "146.112.61.110"},
		{"fortinet", "208.91.112.55"}, {"cloudflare-gateway", "0.0.0.0"}, {"cloudflare-gateway", "::"},
	} {
		if !hasDNS(c.id, c.addr) {
			t.Errorf("%s lacks DNS block address %s", c.id, c.addr)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"duplicate id":  `{"schema":1,"fingerprints":[{"id":"a","rules":[{"body":["abc"]}]},{"id":"a","rules":[{"body":["abc"]}]}]}`,
		"no matchers":   `{"schema":1,"fingerprints":[{"id":"a"}]}`,
		"unknown field": `{"schema":1,"fingerprints":[],"extra":1}`,
		"trailing":      `{"schema":1,"fingerprints":[]} {}`,
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, in)
		}
	}
	var f File
	if err := json.Unmarshal(JSON, &f); err != nil || len(f.Fingerprints) < 25 {
		t.Fatalf("embedded data: %v, %d entries", err, len(f.Fingerprints))
	}
}
