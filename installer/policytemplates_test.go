package installer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/shared/ids"
)

// The policy templates in installer/policy, each read as the platform reads
// it: ADMX/ADML as XML, .reg as regedit does, the .mobileconfig with the
// helper's own plist parser, Intune's OMA-URIs against the ADMX. Every
// setting named must exist in the schema it targets (config.Managed for the
// helper, extension-managed-schema.json for the extension) and every
// extension ID must be one of shared/ids.

type admx struct {
	Namespaces struct {
		Target struct {
			Prefix    string `xml:"prefix,attr"`
			Namespace string `xml:"namespace,attr"`
		} `xml:"target"`
	} `xml:"policyNamespaces"`
	Categories []struct {
		Name        string `xml:"name,attr"`
		DisplayName string `xml:"displayName,attr"`
	} `xml:"categories>category"`
	Supported []struct {
		Name        string `xml:"name,attr"`
		DisplayName string `xml:"displayName,attr"`
	} `xml:"supportedOn>definitions>definition"`
	Policies []struct {
		Name         string `xml:"name,attr"`
		Class        string `xml:"class,attr"`
		DisplayName  string `xml:"displayName,attr"`
		ExplainText  string `xml:"explainText,attr"`
		Presentation string `xml:"presentation,attr"`
		Key          string `xml:"key,attr"`
		ValueName    string `xml:"valueName,attr"`
		Parent       struct {
			Ref string `xml:"ref,attr"`
		} `xml:"parentCategory"`
		Enabled *struct {
			Decimal struct {
				Value string `xml:"value,attr"`
			} `xml:"decimal"`
		} `xml:"enabledValue"`
		Text []struct {
			ID        string `xml:"id,attr"`
			ValueName string `xml:"valueName,attr"`
		} `xml:"elements>text"`
	} `xml:"policies>policy"`
}

type adml struct {
	DisplayName string `xml:"displayName"`
	Strings     []struct {
		ID   string `xml:"id,attr"`
		Text string `xml:",chardata"`
	} `xml:"resources>stringTable>string"`
	Presentations []struct {
		ID        string `xml:"id,attr"`
		TextBoxes []struct {
			RefID string `xml:"refId,attr"`
			Label string `xml:"label"`
		} `xml:"textBox"`
	} `xml:"resources>presentationTable>presentation"`
}

// decodeXML parses strictly: well formed to the end, nothing after the root.
func decodeXML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) == 0 {
			continue
		}
		if _, ok := tok.(xml.Comment); ok {
			continue
		}
		t.Fatalf("%s: content after the root element: %v", path, tok)
	}
}

// managedFieldsWant are config.Managed's fields; "prompts" is named by the
// templates ahead of the helper when config.Managed does not have it yet
// (issue 11 adds it), and only then.
func managedFieldsWant(t *testing.T) (fields map[string]bool, pending []string) {
	fields = managedFields(t)
	if !fields["prompts"] {
		t.Log(`config.Managed has no "prompts" yet: the templates name it ahead of the helper`)
		fields["prompts"] = true
		pending = []string{"prompts"}
	}
	return fields, pending
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestADMXAndADML(t *testing.T) {
	var a admx
	decodeXML(t, "policy/windows/detour.admx", &a)
	fields, _ := managedFieldsWant(t)
	var names []string
	strRefs := map[string]bool{}
	presRefs := map[string][]string{}
	ref := regexp.MustCompile(`^\$\((string|presentation)\.([A-Za-z0-9_]+)\)$`)
	need := func(s string) {
		m := ref.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("ADMX: %q is not a $(string.X) reference", s)
			return
		}
		strRefs[m[2]] = true
	}
	for _, c := range a.Categories {
		need(c.DisplayName)
	}
	for _, s := range a.Supported {
		need(s.DisplayName)
	}
	for _, p := range a.Policies {
		need(p.DisplayName)
		need(p.ExplainText)
		if p.Key != `SOFTWARE\Policies\Detour` || p.Class != "Machine" {
			t.Errorf("policy %s: key %q class %q, want SOFTWARE\\Policies\\Detour, Machine", p.Name, p.Key, p.Class)
		}
		if p.Parent.Ref != "Detour" {
			t.Errorf("policy %s: parent category %q", p.Name, p.Parent.Ref)
		}
		switch {
		case p.ValueName != "" && len(p.Text) == 0 && p.Enabled != nil:
			names = append(names, p.ValueName) // REG_DWORD 1/0
			if p.Enabled.Decimal.Value != "1" {
				t.Errorf("policy %s: enabled value %q", p.Name, p.Enabled.Decimal.Value)
			}
		case p.ValueName == "" && len(p.Text) == 1:
			names = append(names, p.Text[0].ValueName) // REG_SZ
			m := ref.FindStringSubmatch(p.Presentation)
			if m == nil || m[1] != "presentation" {
				t.Errorf("policy %s: presentation %q", p.Name, p.Presentation)
			} else {
				presRefs[m[2]] = append(presRefs[m[2]], p.Text[0].ID)
			}
		default:
			t.Errorf("policy %s: neither one DWORD value nor one text element", p.Name)
		}
	}
	sort.Strings(names)
	if want := sortedKeys(fields); !slices.Equal(names, want) {
		t.Errorf("ADMX value names %v, want exactly config.Managed's fields %v", names, want)
	}

	var texts []map[string]string
	for _, lang := range []string{"en-GB", "cy-GB"} {
		var l adml
		decodeXML(t, filepath.Join("policy/windows", lang, "detour.adml"), &l)
		s := map[string]string{}
		for _, e := range l.Strings {
			if strings.TrimSpace(e.Text) == "" {
				t.Errorf("%s: string %s is empty", lang, e.ID)
			}
			s[e.ID] = e.Text
		}
		for id := range strRefs {
			if _, ok := s[id]; !ok {
				t.Errorf("%s: no string %s, which the ADMX uses", lang, id)
			}
		}
		pres := map[string][]string{}
		for _, p := range l.Presentations {
			for _, tb := range p.TextBoxes {
				if strings.TrimSpace(tb.Label) == "" {
					t.Errorf("%s: presentation %s has an empty label", lang, p.ID)
				}
				pres[p.ID] = append(pres[p.ID], tb.RefID)
			}
		}
		for id, refs := range presRefs {
			if !slices.Equal(pres[id], refs) {
				t.Errorf("%s: presentation %s names %v, the ADMX's elements are %v", lang, id, pres[id], refs)
			}
		}
		texts = append(texts, s)
	}
	// The Welsh is a translation, not a copy (names and numbers aside).
	for id, en := range texts[0] {
		if cy := texts[1][id]; cy == en && id != "Detour" {
			t.Errorf("cy-GB string %s is the English text", id)
		}
	}
	if len(texts[0]) != len(texts[1]) {
		t.Errorf("en-GB has %d strings, cy-GB %d", len(texts[0]), len(texts[1]))
	}
}

// regFile is a .reg file as regedit reads it: keys and their values.
type regValue struct{ Name, Type, Data string }

func parseReg(t *testing.T, path string) map[string][]regValue {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != "Windows Registry Editor Version 5.00" {
		t.Fatalf("%s: no regedit 5 header", path)
	}
	keys := map[string][]regValue{}
	key := ""
	val := regexp.MustCompile(`^"((?:[^"\\]|\\.)*)"=(?:"((?:[^"\\]|\\.)*)"|dword:([0-9a-f]{8}))$`)
	for n := 2; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "" || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			key = line[1 : len(line)-1]
			if !strings.HasPrefix(key, `HKEY_LOCAL_MACHINE\SOFTWARE\Policies\`) {
				t.Errorf("%s:%d: key %s is not under HKLM\\SOFTWARE\\Policies", path, n, key)
			}
		default:
			m := val.FindStringSubmatch(line)
			if m == nil || key == "" {
				t.Fatalf("%s:%d: not a value line: %s", path, n, line)
			}
			unq := strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace
			if m[3] != "" {
				keys[key] = append(keys[key], regValue{unq(m[1]), "REG_DWORD", m[3]})
			} else {
				keys[key] = append(keys[key], regValue{unq(m[1]), "REG_SZ", unq(m[2])})
			}
		}
	}
	if !bytes.Contains(b, []byte("\r\n")) {
		t.Errorf("%s: regedit expects CRLF line ends", path)
	}
	return keys
}

func extensionSchema(t *testing.T) map[string]any {
	return readJSON(t, "policy/extension-managed-schema.json")["properties"].(map[string]any)
}

// checkExtensionSettings: every name is in the extension's schema with the
// JSON type it has there.
func checkExtensionSettings(t *testing.T, where string, got map[string]any) {
	t.Helper()
	schema := extensionSchema(t)
	if len(got) == 0 {
		t.Errorf("%s: no extension settings", where)
	}
	for k, v := range got {
		p, ok := schema[k].(map[string]any)
		if !ok {
			t.Errorf("%s: %q is not in extension-managed-schema.json", where, k)
			continue
		}
		typ := map[string]string{"bool": "boolean", "string": "string"}[strings.TrimPrefix(reflectKind(v), "")]
		if typ != p["type"] {
			t.Errorf("%s: %q is a %s, the schema says %v", where, k, reflectKind(v), p["type"])
		}
	}
}

func reflectKind(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case string:
		return "string"
	case float64, int64, int:
		return "number"
	}
	return "other"
}

func TestRegFiles(t *testing.T) {
	for _, c := range []struct{ file, base string }{
		{"policy/windows/detour-chrome.reg", `HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Google\Chrome`},
		{"policy/windows/detour-edge.reg", `HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Edge`},
	} {
		keys := parseReg(t, c.file)
		force := keys[c.base+`\ExtensionInstallForcelist`]
		if len(force) != 1 || !strings.HasPrefix(force[0].Data, ids.ChromeExtensionID+";https://") {
			t.Errorf("%s: force-install %v", c.file, force)
		}
		if al := keys[c.base+`\NativeMessagingAllowlist`]; len(al) != 1 || al[0].Data != ids.NativeHost {
			t.Errorf("%s: NativeMessagingAllowlist %v", c.file, al)
		}
		var settings map[string]map[string]any
		for _, v := range keys[c.base] {
			if v.Name == "ExtensionSettings" {
				if err := json.Unmarshal([]byte(v.Data), &settings); err != nil {
					t.Errorf("%s: ExtensionSettings is not JSON: %v", c.file, err)
				}
			}
		}
		if settings[ids.ChromeExtensionID]["installation_mode"] != "force_installed" {
			t.Errorf("%s: ExtensionSettings %v", c.file, settings)
		}
		third := keys[c.base+`\3rdparty\extensions\`+ids.ChromeExtensionID+`\policy`]
		got := map[string]any{}
		for _, v := range third {
			if v.Type == "REG_DWORD" {
				got[v.Name] = v.Data != "00000000"
			} else {
				got[v.Name] = v.Data
			}
		}
		checkExtensionSettings(t, c.file, got)
	}
	keys := parseReg(t, "policy/windows/detour-helper.reg")
	fields, _ := managedFieldsWant(t)
	for _, v := range keys[`HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Detour`] {
		if !fields[v.Name] {
			t.Errorf("detour-helper.reg: %q is not a field of config.Managed", v.Name)
		}
		if v.Name == "whitelist_keys" && !json.Valid([]byte(v.Data)) {
			t.Errorf("detour-helper.reg: whitelist_keys is not JSON")
		}
	}
}

func TestMobileconfig(t *testing.T) {
	b, err := os.ReadFile("policy/macos/detour.mobileconfig")
	if err != nil {
		t.Fatal(err)
	}
	v, err := config.ParsePlist(b)
	if err != nil {
		t.Fatalf("detour.mobileconfig does not parse: %v", err)
	}
	prof := v.(map[string]any)
	if prof["PayloadType"] != "Configuration" {
		t.Fatalf("PayloadType %v", prof["PayloadType"])
	}
	uuids := map[any]bool{prof["PayloadUUID"]: true}
	types := map[string]map[string]any{}
	for _, p := range prof["PayloadContent"].([]any) {
		d := p.(map[string]any)
		ty, _ := d["PayloadType"].(string)
		if uuids[d["PayloadUUID"]] || d["PayloadIdentifier"] == nil || d["PayloadVersion"] == nil {
			t.Errorf("payload %s: UUID repeated or identifier/version missing", ty)
		}
		uuids[d["PayloadUUID"]] = true
		settings := map[string]any{}
		for k, v := range d {
			if !strings.HasPrefix(k, "Payload") {
				settings[k] = v
			}
		}
		types[ty] = settings
	}
	want := []string{"com.google.Chrome", "com.google.Chrome.extensions." + ids.ChromeExtensionID, "com.microsoft.Edge",
		"com.microsoft.Edge.extensions." + ids.ChromeExtensionID, "org.detour.helper", "org.mozilla.firefox"}
	if got := sortedKeys(boolSet(types)); !slices.Equal(got, want) {
		t.Fatalf("payloads %v, want %v", got, want)
	}
	for _, br := range []string{"com.google.Chrome", "com.microsoft.Edge"} {
		s := types[br]
		force := s["ExtensionInstallForcelist"].([]any)
		if len(force) != 1 || !strings.HasPrefix(force[0].(string), ids.ChromeExtensionID+";") {
			t.Errorf("%s: force-install %v", br, force)
		}
		if al := s["NativeMessagingAllowlist"].([]any); len(al) != 1 || al[0] != ids.NativeHost {
			t.Errorf("%s: NativeMessagingAllowlist %v", br, al)
		}
		checkExtensionSettings(t, br+".extensions", types[br+".extensions."+ids.ChromeExtensionID])
	}
	ff := types["org.mozilla.firefox"]
	if ff["EnterprisePoliciesEnabled"] != true {
		t.Error("Firefox payload: EnterprisePoliciesEnabled is not true")
	}
	checkExtensionSettings(t, "Firefox 3rdparty", ff["3rdparty"].(map[string]any)["Extensions"].(map[string]any)[ids.FirefoxExtensionID].(map[string]any))
	if ff["ExtensionSettings"].(map[string]any)[ids.FirefoxExtensionID] == nil {
		t.Error("Firefox payload does not install the extension")
	}
	// The helper's payload is what macOS writes to
	// /Library/Managed Preferences/org.detour.helper.plist: it must parse as
	// the helper parses that file.
	helper := types["org.detour.helper"]
	fields, pending := managedFieldsWant(t)
	for k := range helper {
		if !fields[k] {
			t.Errorf("org.detour.helper: %q is not a field of config.Managed", k)
		}
	}
	for _, k := range pending {
		delete(helper, k)
	}
	j, _ := json.Marshal(helper)
	if _, err := config.ParseManaged(j); err != nil {
		t.Errorf("org.detour.helper payload: %v", err)
	}
}

func boolSet[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func TestIntuneOMAURIs(t *testing.T) {
	var a admx
	decodeXML(t, "policy/windows/detour.admx", &a)
	elems := map[string][]string{}
	for _, p := range a.Policies {
		elems[p.Name] = nil
		for _, e := range p.Text {
			elems[p.Name] = append(elems[p.Name], e.ID)
		}
	}
	var doc struct {
		Settings []struct {
			Name, OMAURI, DataType, Value, ValueFile string
		} `json:"settings"`
	}
	b, err := os.ReadFile("policy/intune/oma-uri.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Settings []map[string]string `json:"settings"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, s := range raw.Settings {
		doc.Settings = append(doc.Settings, struct{ Name, OMAURI, DataType, Value, ValueFile string }{s["name"], s["oma_uri"], s["data_type"], s["value"], s["value_file"]})
	}
	dataID := regexp.MustCompile(`<data id="([^"]+)" value="([^"]*)"/>`)
	seen := 0
	for _, s := range doc.Settings {
		switch {
		case strings.HasPrefix(s.OMAURI, "./Device/Vendor/MSFT/Policy/ConfigOperations/ADMXInstall/Detour/Policy/"):
			if _, err := os.Stat(filepath.Join("policy/intune", s.ValueFile)); err != nil {
				t.Errorf("%s: value file: %v", s.Name, err)
			}
		case strings.HasPrefix(s.OMAURI, "./Device/Vendor/MSFT/Policy/Config/Detour~Policy~Detour/"):
			pol := strings.TrimPrefix(s.OMAURI, "./Device/Vendor/MSFT/Policy/Config/Detour~Policy~Detour/")
			want, ok := elems[pol]
			if !ok {
				t.Errorf("%s: %s is not a policy in detour.admx", s.Name, pol)
			}
			var got []string
			for _, m := range dataID.FindAllStringSubmatch(s.Value, -1) {
				got = append(got, m[1])
			}
			if !slices.Equal(got, want) && !(s.Value == "<disabled/>" && got == nil) {
				t.Errorf("%s: data ids %v, the ADMX's elements are %v", s.Name, got, want)
			}
			seen++
		case strings.Contains(s.OMAURI, "~Policy~"):
		default:
			t.Errorf("%s: unexpected OMA-URI %s", s.Name, s.OMAURI)
		}
		if s.DataType != "String" {
			t.Errorf("%s: data type %q", s.Name, s.DataType)
		}
		if !strings.HasPrefix(s.Value, "<enabled/>") && s.Value != "<disabled/>" && s.ValueFile == "" {
			t.Errorf("%s: value %q neither enables nor disables", s.Name, s.Value)
		}
	}
	if seen != len(elems) {
		t.Errorf("Intune examples set %d of the ADMX's %d policies", seen, len(elems))
	}
}

// Every extension ID any template names is one shared/ids admits.
func TestTemplateIDsAreSharedIDs(t *testing.T) {
	chrome := regexp.MustCompile(`\b[a-p]{32}\b`)
	gecko := regexp.MustCompile(`[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+`)
	admitted := ids.All()
	named := map[string]bool{}
	err := filepath.WalkDir("policy", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, id := range chrome.FindAll(b, -1) {
			named[string(id)] = true
			if !slices.Contains(admitted, string(id)) {
				t.Errorf("%s names extension ID %s, which shared/ids does not list", p, id)
			}
		}
		for _, id := range gecko.FindAll(b, -1) {
			if strings.HasPrefix(string(id), "detour@") && !slices.Contains(admitted, string(id)) {
				t.Errorf("%s names gecko id %s, which shared/ids does not list", p, id)
			}
			named[string(id)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ids.ChromeExtensionID, ids.FirefoxExtensionID} {
		if !named[id] {
			t.Errorf("no template names %s", id)
		}
	}
}
