package installer

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/ids"
)

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// The templates must name our extension and carry the same settings as the
// helper's managed.json, with only the settings the extension's schema knows.
func TestPolicyTemplatesAgree(t *testing.T) {
	helper := readJSON(t, "policy/detour-managed.json")
	schema := readJSON(t, "policy/extension-managed-schema.json")["properties"].(map[string]any)
	for k := range helper {
		if _, ok := schema[k]; !ok {
			t.Errorf("managed setting %q is missing from the extension's schema", k)
		}
	}
	chromeFamily := func(path string) map[string]any {
		v := readJSON(t, path)
		force := v["ExtensionInstallForcelist"].([]any)
		if len(force) != 1 || !strings.HasPrefix(force[0].(string), ids.ChromeExtensionID+";") {
			t.Errorf("%s: force-install list %v does not name %s", path, force, ids.ChromeExtensionID)
		}
		ext := v["3rdparty"].(map[string]any)["extensions"].(map[string]any)
		return ext[ids.ChromeExtensionID].(map[string]any)
	}
	ff := readJSON(t, "policy/firefox/policies.json")["policies"].(map[string]any)
	if _, ok := ff["ExtensionSettings"].(map[string]any)[ids.FirefoxExtensionID]; !ok {
		t.Errorf("firefox policies.json does not install %s", ids.FirefoxExtensionID)
	}
	for name, got := range map[string]any{
		"chrome":  chromeFamily("policy/chrome/detour.json"),
		"edge":    chromeFamily("policy/edge/detour.json"),
		"firefox": ff["3rdparty"].(map[string]any)["Extensions"].(map[string]any)[ids.FirefoxExtensionID],
	} {
		if !reflect.DeepEqual(got, helper) {
			t.Errorf("%s template settings %v differ from detour-managed.json %v", name, got, helper)
		}
	}
}
