package agent

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/detour-project/detour/shared/protocol"
)

// The organisation's policy reaches the extension through the settings
// reply: prompts off is carried as prompts:false and every managed name
// (hub, org, prompts…) is one the schema allows, so the extension can mark
// each as set by the organisation. Before, a policy that set hub or prompts
// produced a reply outside the schema and prompts never left the helper.
func TestPolicyReachesSettingsReply(t *testing.T) {
	dirs := testDirs(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "detour"), 0o755); err != nil {
		t.Fatal(err)
	}
	policy := `{"hub":"http://127.0.0.1:9","org":"example-borough","prompts":false,"report_automatically":true}`
	if err := os.WriteFile(filepath.Join(root, "etc", "detour", "managed.json"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ManagedRootEnv, root)
	runAgent(t, dirs, Options{})
	c := dial(t, dirs)
	var raw json.RawMessage
	if err := c.Call(context.Background(), "settings", nil, &raw); err != nil {
		t.Fatal(err)
	}
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := set.ValidateResult("settings", raw); err != nil {
		t.Fatalf("settings reply outside the schema: %v\n%s", err, raw)
	}
	var s protocol.Settings
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Prompts == nil || *s.Prompts {
		t.Fatalf("prompts = %v, want false from the policy (%s)", s.Prompts, raw)
	}
	for _, name := range []string{"hub", "org", "prompts", SettingReportAutomatically} {
		if !slices.Contains(s.Managed, name) {
			t.Errorf("managed %v lacks %q", s.Managed, name)
		}
	}
}
