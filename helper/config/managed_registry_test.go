package config

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestManagedFromRegistry reads the policy key's values as the Windows reader
// hands them over (REG_SZ as string, REG_DWORD as uint32).
func TestManagedFromRegistry(t *testing.T) {
	example, err := os.ReadFile("../../installer/policy/detour-managed.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		WhitelistKeys json.RawMessage `json:"whitelist_keys"`
	}
	if err := json.Unmarshal(example, &ex); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		values  map[string]any
		names   []string
		wantErr string
	}{
		{name: "everything", values: map[string]any{
			"hub": "https://hub.example.org", "org": "cardiff", "enrolment_code": "ABC",
			"report_automatically": uint32(1), "prompts": uint32(0), "whitelist_keys": string(ex.WhitelistKeys),
		}, names: []string{"hub", "whitelist_keys", "org", "report_automatically", "prompts"}},
		{name: "an empty key list is no list", values: map[string]any{"whitelist_keys": " "}, names: nil},
		{name: "a DWORD other than 0 or 1", values: map[string]any{"prompts": uint32(2)}, wantErr: "0 or 1"},
		{name: "a DWORD as a string", values: map[string]any{"report_automatically": "1"}, wantErr: "REG_DWORD"},
		{name: "a string as a DWORD", values: map[string]any{"hub": uint32(1)}, wantErr: "REG_SZ"},
		{name: "an unknown value", values: map[string]any{"Hub URL": "x"}, wantErr: "unknown value"},
		{name: "keys not JSON", values: map[string]any{"whitelist_keys": "[{"}, wantErr: "not valid"},
		{name: "hub not a URL", values: map[string]any{"hub": "ftp://x"}, wantErr: "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ManagedFromRegistry(tc.values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var c Config
			c.ReportAutomatically = true
			m.Apply(&c)
			if !slices.Equal(c.Managed, tc.names) {
				t.Fatalf("managed %v, want %v", c.Managed, tc.names)
			}
			if tc.name == "everything" && (c.Prompts == nil || *c.Prompts || !c.ReportAutomatically || c.Org != "cardiff" || m.EnrolmentCode != "ABC") {
				t.Fatalf("applied %+v from %+v", c, m)
			}
		})
	}
}
