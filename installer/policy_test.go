package installer

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/detour-project/detour/helper/config"
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

// managedFields are the JSON names of config.Managed: the helper's policy
// settings, whatever the platform carries them in.
func managedFields(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	rt := reflect.TypeOf(config.Managed{})
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// The templates name our extension, the helper's settings are config.Managed's
// (and parse), and the extension's settings are the ones its managed schema
// knows, the same in every browser's template.
func TestPolicyTemplatesAgree(t *testing.T) {
	b, err := os.ReadFile("policy/detour-managed.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.ParseManaged(b); err != nil {
		t.Errorf("detour-managed.json: %v", err)
	}
	fields := managedFields(t)
	for k := range readJSON(t, "policy/detour-managed.json") {
		if !fields[k] {
			t.Errorf("detour-managed.json: %q is not a field of config.Managed", k)
		}
	}
	schema := readJSON(t, "policy/extension-managed-schema.json")["properties"].(map[string]any)
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
	var first map[string]any
	for name, got := range map[string]map[string]any{
		"chrome":  chromeFamily("policy/chrome/detour.json"),
		"edge":    chromeFamily("policy/edge/detour.json"),
		"firefox": ff["3rdparty"].(map[string]any)["Extensions"].(map[string]any)[ids.FirefoxExtensionID].(map[string]any),
	} {
		for k := range got {
			if _, ok := schema[k]; !ok {
				t.Errorf("%s template: extension setting %q is not in extension-managed-schema.json", name, k)
			}
		}
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Errorf("%s template's extension settings %v differ from another's %v", name, got, first)
		}
	}
}
