package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/statefile"
)

// Config files from before schema versions load as they did and are written
// back in the current schema; a file from a newer Detour is refused and left
// as it is; a broken file is an error, not an empty config.
func TestOpenMigratesOldFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file  string
		wantHub     string
		err         error
		errText     string
		wantRewrite bool
	}{
		{name: "before versions", file: `{"hub":"https://hub.example","org":"o","report_automatically":true}`, wantHub: "https://hub.example", wantRewrite: true},
		{name: "current", file: `{"schema":1,"hub":"https://hub.example"}`, wantHub: "https://hub.example"},
		{name: "newer", file: `{"schema":99,"hub":"https://hub.example","new_field":1}`, err: statefile.ErrNewer},
		{name: "broken", file: `{"hub":`, errText: "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			os.WriteFile(path, []byte(tc.file), 0o600)
			s, err := Open(path)
			after, _ := os.ReadFile(path)
			if tc.err != nil || tc.errText != "" {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want %v %q", err, tc.err, tc.errText)
				}
				if string(after) != tc.file {
					t.Fatalf("a refused file was changed to %s", after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Get().Hub; got != tc.wantHub {
				t.Fatalf("hub %q, want %q", got, tc.wantHub)
			}
			rewritten := string(after) != tc.file
			if rewritten != tc.wantRewrite || !strings.Contains(string(after), `"schema": 1`) && tc.wantRewrite {
				t.Fatalf("file after open: %s (rewritten %v, want %v)", after, rewritten, tc.wantRewrite)
			}
		})
	}
}

func TestUpdateWritesTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(c *Config) error { c.Org = "o"; return nil }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "{\n  \"schema\": 1,") || !strings.Contains(string(b), `"org": "o"`) {
		t.Fatalf("written %s", b)
	}
	// A refused update changes neither memory nor file.
	if err := s.Update(func(c *Config) error { c.Org = "x"; return errors.New("no") }); err == nil || s.Get().Org != "o" {
		t.Fatalf("refused update: %v, org %q", err, s.Get().Org)
	}
	if again, _ := os.ReadFile(path); string(again) != string(b) {
		t.Fatal("refused update rewrote the file")
	}
}
