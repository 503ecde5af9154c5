package privacypass

import (
	"bytes"
	"testing"
)

// FuzzDecode: every decoder either refuses its input or decodes it into a
// value that encodes back to exactly the same bytes (one encoding per value,
// so a token or challenge cannot be re-spelt to dodge a spent-token check).
func FuzzDecode(f *testing.F) {
	ch, _ := ReportChallenge("hub.example").Marshal()
	f.Add(ch)
	f.Add(append([]byte{0, 2}, make([]byte, 352)...))
	f.Add(append([]byte{0, 2, 7}, make([]byte, 256)...))
	f.Add([]byte{0, 2, 0, 1, 'a', 32})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := UnmarshalTokenChallenge(b); err == nil {
			if enc, err := c.Marshal(); err != nil || !bytes.Equal(enc, b) {
				t.Fatalf("challenge %x re-encodes as %x (%v)", b, enc, err)
			}
		}
		if tok, err := UnmarshalToken(b); err == nil && !bytes.Equal(tok.Marshal(), b) {
			t.Fatalf("token %x re-encodes differently", b)
		}
		if r, err := UnmarshalTokenRequest(b); err == nil && !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("request %x re-encodes differently", b)
		}
		ParsePublicKey(b) // must not panic
	})
}
