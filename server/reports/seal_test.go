package reports

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestSeal(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	other := make([]byte, 32)
	rand.Read(other)
	der := []byte("pretend PKCS #8 bytes")
	stored, err := seal(key, "org-a", "kid", der)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, sealedPrefix) || strings.Contains(stored, "pretend") {
		t.Fatalf("not sealed: %q", stored)
	}
	if got, err := unseal(key, "org-a", "kid", stored); err != nil || !bytes.Equal(got, der) {
		t.Fatalf("unseal: %q %v", got, err)
	}
	for name, f := range map[string]func() error{
		"wrong key":      func() error { _, err := unseal(other, "org-a", "kid", stored); return err },
		"moved to org-b": func() error { _, err := unseal(key, "org-b", "kid", stored); return err },
		"no key":         func() error { _, err := unseal(nil, "org-a", "kid", stored); return err },
		"truncated":      func() error { _, err := unseal(key, "org-a", "kid", stored[:12]); return err },
		"short seal key": func() error { _, err := seal(key[:16], "org-a", "kid", der); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Unsealed rows (no seal key configured) still read.
	plain, _ := seal(nil, "org-a", "kid", der)
	if got, err := unseal(key, "org-a", "kid", plain); err != nil || !bytes.Equal(got, der) {
		t.Fatalf("plain: %v", err)
	}
}
