package privacypass

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"

	"filippo.io/bigmod"
	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// signers is the test key and its CRT signer.
func signers(t testing.TB) (*rsa.PrivateKey, *crtSigner) {
	t.Helper()
	sk, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newCRTSigner(sk)
	if err != nil {
		t.Fatal(err)
	}
	return sk, s
}

// TestCRTSignerMatchesCircl: the CRT signer gives the same bytes as
// circl's blind signer for random blinded messages and real token
// requests, and refuses what circl refuses (a message not below the
// modulus, a wrong length).
func TestCRTSignerMatchesCircl(t *testing.T) {
	sk, ours := signers(t)
	circl := blindrsa.NewSigner(sk)
	var inputs [][]byte
	for range 20 {
		m, err := rand.Int(rand.Reader, sk.N)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, m.FillBytes(make([]byte, Nk)))
	}
	iss := issuer(t)
	c, err := NewClient(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		req, _, err := c.Request(rand.Reader, ReportChallenge("hub.test"))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := UnmarshalTokenRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, tr.BlindedMsg)
	}
	one := big.NewInt(1).FillBytes(make([]byte, Nk))
	inputs = append(inputs, make([]byte, Nk), one, new(big.Int).Sub(sk.N, big.NewInt(1)).FillBytes(make([]byte, Nk)))
	for i, in := range inputs {
		want, err := circl.BlindSign(in)
		if err != nil {
			t.Fatalf("input %d: circl: %v", i, err)
		}
		got, err := ours.sign(in)
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("input %d: signatures differ", i)
		}
	}
	for _, bad := range [][]byte{sk.N.FillBytes(make([]byte, Nk)), bytesOf(0xff, Nk), make([]byte, Nk-1), make([]byte, Nk+1)} {
		if _, err := circl.BlindSign(bad); err == nil {
			t.Fatalf("circl signed a %d-byte bad input", len(bad))
		}
		if _, err := ours.sign(bad); err == nil {
			t.Fatalf("signed a %d-byte bad input", len(bad))
		}
	}
}

// TestCRTSignerChecksItsResult: a fault in the CRT computation (here a
// wrong coefficient) gives no signature: a faulty CRT signature would
// reveal a prime factor of the key to whoever received it.
func TestCRTSignerChecksItsResult(t *testing.T) {
	sk, s := signers(t)
	faulty := *s
	var err error
	faulty.qInv, err = bigmod.NewNat().SetBytes([]byte{3}, s.p)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := rand.Int(rand.Reader, sk.N)
	if sig, err := faulty.sign(m.FillBytes(make([]byte, Nk))); err == nil {
		t.Fatalf("a faulty computation was answered (%d bytes)", len(sig))
	}
}

// BenchmarkSign: one blind signature with the CRT signer (what the hub
// runs) beside circl's, in the same process.
func BenchmarkSign(b *testing.B) {
	sk, ours := signers(b)
	circl := blindrsa.NewSigner(sk)
	m, _ := rand.Int(rand.Reader, sk.N)
	in := m.FillBytes(make([]byte, Nk))
	b.Run("crt", func(b *testing.B) {
		for b.Loop() {
			if _, err := ours.sign(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("circl", func(b *testing.B) {
		for b.Loop() {
			if _, err := circl.BlindSign(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
