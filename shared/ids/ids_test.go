package ids

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const cws, edge = "abcdefghijklmnopabcdefghijklmnop", "ponmlkjihgfedcbaponmlkjihgfedcba"
	for _, c := range []struct {
		in      string
		want    []Extension
		wantErr string
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{"chrome-web-store=" + cws + ", edge-add-ons=" + edge, []Extension{{cws, ChromeWebStore, false}, {edge, EdgeAddons, false}}, ""},
		{cws, []Extension{{cws, SelfHosted, false}}, ""},
		{"it@example.org", []Extension{{"it@example.org", SelfHosted, true}}, ""},
		{"amo={12345678-1234-1234-1234-123456789abc}", []Extension{{"{12345678-1234-1234-1234-123456789abc}", AMO, true}}, ""},
		{"store=" + cws, nil, "unknown channel"},
		{"chrome-web-store=it@example.org", nil, "must be 32 letters"},
		{"amo=" + cws, nil, "gecko id"},
		{"ABCDEFGHIJKLMNOPABCDEFGHIJKLMNOP", nil, "neither"},
		{"abcq" + cws[4:], nil, "neither"},
		{"chrome-extension://" + cws + "/", nil, "neither"},
	} {
		got, err := Parse(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Parse(%q) error %v, want one saying %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestBuildExtendsDefaults(t *testing.T) {
	defer func(b string) { Build = b }(Build)
	const cws = "abcdefghijklmnopabcdefghijklmnop"
	Build = "chrome-web-store=" + cws + "," + ChromeExtensionID + ",amo=" + FirefoxExtensionID
	if err := Check(); err != nil {
		t.Fatal(err)
	}
	if got, want := All(), []string{ChromeExtensionID, FirefoxExtensionID, cws}; !slices.Equal(got, want) {
		t.Errorf("All() = %v, want %v (defaults first, no duplicates)", got, want)
	}
	if got := ChromeOrigins(); !slices.Equal(got, []string{ChromeOrigin(ChromeExtensionID), ChromeOrigin(cws)}) {
		t.Errorf("ChromeOrigins() = %v", got)
	}
	if got := FirefoxIDs(); !slices.Equal(got, []string{FirefoxExtensionID}) {
		t.Errorf("FirefoxIDs() = %v", got)
	}
	if ByChannel(ChromeWebStore) != cws || ByChannel(EdgeAddons) != "" {
		t.Errorf("ByChannel: cws %q edge %q", ByChannel(ChromeWebStore), ByChannel(EdgeAddons))
	}
	// A malformed entry never widens the list; the good ones still count.
	Build = "chrome-web-store=" + cws + ",bogus"
	if Check() == nil {
		t.Error("Check accepted a malformed Build")
	}
	if got := All(); !slices.Equal(got, []string{ChromeExtensionID, FirefoxExtensionID, cws}) {
		t.Errorf("All() with a bad entry = %v", got)
	}
}

// The development ID is the one Chrome derives from the manifest's key: the
// first 128 bits of SHA-256 of the DER public key, written with a–p.
func TestDevelopmentIDMatchesKey(t *testing.T) {
	b, err := os.ReadFile("../../extension/manifest.base.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Key string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(m.Key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	var id []byte
	for _, c := range sum[:16] {
		id = append(id, 'a'+c>>4, 'a'+c&15)
	}
	if string(id) != ChromeExtensionID {
		t.Errorf("key gives %s, ChromeExtensionID is %s", id, ChromeExtensionID)
	}
}
