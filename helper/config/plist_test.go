package config

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fixtures in testdata/ were written by Python's plistlib (XML and
// binary), a writer other than ours, from the same values.
var wantKinds = map[string]any{
	"ascii": "hub", "unicode": "Cyngor Sir Ynys Môn — ✓", "empty": "",
	"small": int64(7), "byte": int64(200), "short": int64(40000), "int32": int64(3000000000), "big": int64(1) << 62, "negative": int64(-5),
	"real": 2.5, "yes": true, "no": false,
	"when":       time.Date(2026, 12, 2, 15, 30, 0, 0, time.UTC),
	"blob":       []byte("\x00\x01detour\xff"),
	"long":       []any{int64(0), int64(1), int64(2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8), int64(9), int64(10), int64(11), int64(12), int64(13), int64(14), int64(15), int64(16), int64(17), int64(18), int64(19)},
	"nested":     map[string]any{"a": []any{map[string]any{"b": []any{int64(1), "two"}}}, "empty_dict": map[string]any{}, "empty_array": []any{}},
	"longstring": strings.Repeat("x", 40),
}

func TestParsePlistKinds(t *testing.T) {
	for _, name := range []string{"kinds.xml.plist", "kinds.binary.plist"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			v, err := ParsePlist(b)
			if err != nil {
				t.Fatal(err)
			}
			got := v.(map[string]any)
			for k, w := range wantKinds {
				if g := got[k]; !reflect.DeepEqual(g, w) {
					t.Errorf("%s: got %#v, want %#v", k, g, w)
				}
			}
			if len(got) != len(wantKinds) {
				t.Errorf("%d keys, want %d", len(got), len(wantKinds))
			}
		})
	}
}

func TestParseManagedPlist(t *testing.T) {
	for _, name := range []string{"managed.xml.plist", "managed.binary.plist"} {
		t.Run(name, func(t *testing.T) {
			b, _ := os.ReadFile(filepath.Join("testdata", name))
			m, err := ParseManagedPlist(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.Hub != "https://detour.example-sector.org" || m.Org != "example-council" || m.ReportAutomatically == nil || *m.ReportAutomatically ||
				len(m.WhitelistKeys) != 1 || m.WhitelistKeys[0].KeyID != "ed25519:fe812c12f3ab4ce6" {
				t.Fatalf("%+v", m)
			}
			var c Config
			m.Apply(&c)
			if strings.Join(c.Managed, ",") != "hub,whitelist_keys,org,report_automatically" {
				t.Fatalf("managed %v", c.Managed)
			}
		})
	}
}

func xmlPlist(body string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">` + body + `</plist>`)
}

func TestParseManagedPlistRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", `<dict><key>report_automaticaly</key><true/></dict>`, "unknown field"},
		{"wrong type", `<dict><key>report_automatically</key><string>yes</string></dict>`, "cannot unmarshal"},
		{"bad hub", `<dict><key>hub</key><string>ftp://x</string></dict>`, "http"},
		{"not a dict", `<array><string>hub</string></array>`, "not a dict"},
		{"key without value", `<dict><key>hub</key></dict>`, "no value"},
		{"key twice", `<dict><key>org</key><string>a</string><key>org</key><string>b</string></dict>`, "twice"},
		{"value where a key belongs", `<dict><string>org</string></dict>`, "where a <key> belongs"},
		{"bad integer", `<dict><key>n</key><integer>x</integer></dict>`, "integer"},
		{"unknown element", `<dict><key>n</key><set/></dict>`, "unknown element"},
		{"empty plist", ``, "no value"},
		{"not XML", `<dict>`, "plist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManagedPlist(xmlPlist(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ParseManagedPlist([]byte(`<html></html>`)); err == nil || !strings.Contains(err.Error(), "want <plist>") {
		t.Fatalf("html: %v", err)
	}
	// Payload keys are the profile's, not ours.
	m, err := ParseManagedPlist(xmlPlist(`<dict><key>PayloadIdentifier</key><string>x</string><key>org</key><string>example-council</string></dict>`))
	if err != nil || m.Org != "example-council" {
		t.Fatalf("%+v %v", m, err)
	}
}

// bplist builds a binary plist from raw objects (each a marker and its
// bytes), one-byte offsets and references, top object 0.
func bplistOf(objects ...[]byte) []byte {
	b := []byte("bplist00")
	var offsets []byte
	for _, o := range objects {
		offsets = append(offsets, byte(len(b)))
		b = append(b, o...)
	}
	table := len(b)
	b = append(b, offsets...)
	tr := make([]byte, 32)
	tr[6], tr[7] = 1, 1
	binary.BigEndian.PutUint64(tr[8:], uint64(len(objects)))
	binary.BigEndian.PutUint64(tr[16:], 0)
	binary.BigEndian.PutUint64(tr[24:], uint64(table))
	return append(b, tr...)
}

// Broken and hostile binary plists are errors, never a panic or a hang.
func TestParseBinaryPlistRefuses(t *testing.T) {
	good := bplistOf([]byte{0xD1, 1, 2}, []byte{0x53, 'o', 'r', 'g'}, []byte{0x51, 'x'})
	if v, err := ParsePlist(good); err != nil || !reflect.DeepEqual(v, map[string]any{"org": "x"}) {
		t.Fatalf("the hand-made plist: %v %v", v, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"too short", []byte("bplist00"), "too short"},
		{"dict that holds itself", bplistOf([]byte{0xD1, 1, 0}, []byte{0x53, 'o', 'r', 'g'}), "contains itself"},
		{"array that holds itself", bplistOf([]byte{0xA1, 0}), "contains itself"},
		{"reference to no object", bplistOf([]byte{0xA1, 9}), "no object"},
		{"string past the end", bplistOf([]byte{0x5F, 0x10, 0xFF, 'x'}), "past the end"},
		{"huge length", bplistOf([]byte{0xAF, 0x13, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), "past the end"},
		{"non-string key", bplistOf([]byte{0xD1, 1, 1}, []byte{0x10, 1}), "not a string"},
		{"unknown marker", bplistOf([]byte{0x70}), "unsupported"},
		{"16-byte integer", bplistOf([]byte{0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), "16-byte"},
		{"bad trailer", append([]byte("bplist00"), make([]byte, 32)...), "bad trailer"},
		{"high byte in an ASCII string", bplistOf([]byte{0x51, 0xC3}), "ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePlist(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Every truncation of a real file fails cleanly.
	real, _ := os.ReadFile(filepath.Join("testdata", "kinds.binary.plist"))
	for n := 0; n < len(real); n++ {
		ParsePlist(real[:n])
	}
	// A deep chain of arrays stops at the depth limit.
	var objs [][]byte
	for i := 0; i < 60; i++ {
		objs = append(objs, []byte{0xA1, byte(i + 1)})
	}
	objs = append(objs, []byte{0x09})
	if _, err := ParsePlist(bplistOf(objs...)); err == nil || !strings.Contains(err.Error(), "deeply") {
		t.Fatalf("deep: %v", err)
	}
	if _, err := ParsePlist(xmlPlist(strings.Repeat("<array>", 60) + strings.Repeat("</array>", 60))); err == nil || !strings.Contains(err.Error(), "deeply") {
		t.Fatalf("deep XML: %v", err)
	}
	if _, err := ParsePlist(bytes.Repeat([]byte{' '}, maxPlistBytes+1)); err == nil {
		t.Fatal("an oversized file was read")
	}
}

// ReadManaged reads the platform's file under a root; on macOS that is the
// plist (this test runs the same reader on every OS through ParseManagedPlist).
func TestReadManagedPlistUnderRoot(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, ManagedPath)
	os.MkdirAll(filepath.Dir(p), 0o755)
	src := "testdata/managed.binary.plist"
	if !strings.HasSuffix(ManagedPath, ".plist") {
		src = "../../installer/policy/detour-managed.json"
	}
	b, _ := os.ReadFile(src)
	os.WriteFile(p, b, 0o644)
	m, err := ReadManaged(root)
	if err != nil || m == nil || m.Org != "example-council" {
		t.Fatalf("%+v %v", m, err)
	}
}
