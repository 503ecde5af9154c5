package masterkey

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		content []byte
		wantErr string
	}{
		{"short", []byte("0123456789"), "at least 32"},
		{"empty", nil, "at least 32"},
		{"exact", Generate(), ""},
		{"long", []byte(strings.Repeat("k", 100)), ""},
		{"huge", make([]byte, 5000), "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := Load(write(c.name, c.content))
			if c.wantErr == "" {
				if err != nil || len(k.ID()) != 16 {
					t.Fatalf("got %v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("got %v, want an error with %q", err, c.wantErr)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file must be an error")
	}
}

func TestSealUnseal(t *testing.T) {
	k, _ := New(Generate())
	other, _ := New(Generate())
	same, _ := New(append([]byte(nil), k.secret...))
	s, err := k.Seal("signing", "key-1", []byte("secret"))
	if err != nil || !IsSealed(s) || strings.Contains(s, "secret") {
		t.Fatalf("seal: %q %v", s, err)
	}
	if pt, err := same.Unseal("signing", "key-1", s); err != nil || string(pt) != "secret" {
		t.Fatalf("another hub with the same file: %q %v", pt, err)
	}
	cases := []struct {
		name, purpose, context, stored, want string
		key                                  *Key
	}{
		{"other master key", "signing", "key-1", s, "every hub needs the same file", other},
		{"other row", "signing", "key-2", s, "does not unseal", k},
		{"other purpose", "issuer", "key-1", s, "does not unseal", k},
		{"not sealed", "signing", "key-1", "plain", "not sealed", k},
		{"truncated", "signing", "key-1", s[:len(s)-30], "", k},
		{"flipped", "signing", "key-1", s[:len(s)-6] + "AAAAAA", "does not unseal", k},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.key.Unseal(c.purpose, c.context, c.stored)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}
