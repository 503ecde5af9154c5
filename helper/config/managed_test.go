package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const goodKey = `{"key_id":"%s","public_key":"%s"}`

func TestReadManaged(t *testing.T) {
	example, err := os.ReadFile("../../installer/policy/detour-managed.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		absent     bool
		wantErr    string
		wantNames  []string
	}{
		{name: "absent", absent: true},
		{name: "the shipped example", body: string(example), wantNames: []string{"hub", "whitelist_keys", "org", "report_automatically", "prompts"}},
		{name: "hub only", body: `{"hub":"https://hub.example.org"}`, wantNames: []string{"hub"}},
		{name: "report off is still managed", body: `{"report_automatically":false}`, wantNames: []string{"report_automatically"}},
		{name: "typo in a field", body: `{"report_automaticaly":true}`, wantErr: "unknown field"},
		{name: "hub not a URL", body: `{"hub":"ftp://x"}`, wantErr: "want http:// or https://"},
		{name: "hub with a query (enrolment would refuse it)", body: `{"hub":"https://hub.example/?a=1"}`, wantErr: "query"},
		{name: "bad key", body: `{"whitelist_keys":[{"key_id":"k","public_key":"AAAA"}]}`, wantErr: "whitelist key"},
		{name: "not JSON", body: `{`, wantErr: "not valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if !c.absent {
				p := filepath.Join(root, ManagedPath)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(c.body), 0o644)
			}
			m, err := ReadManaged(root)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.absent {
				if m != nil {
					t.Fatalf("policy %+v from no file", m)
				}
				return
			}
			cfg := Config{ReportAutomatically: true, Hub: "http://mine"}
			m.Apply(&cfg)
			if !slices.Equal(cfg.Managed, c.wantNames) {
				t.Fatalf("managed %v, want %v", cfg.Managed, c.wantNames)
			}
			if m.ReportAutomatically != nil && cfg.ReportAutomatically != *m.ReportAutomatically {
				t.Fatal("report_automatically not applied")
			}
			if m.Hub != "" && cfg.Hub != m.Hub {
				t.Fatal("hub not applied")
			}
		})
	}
}
