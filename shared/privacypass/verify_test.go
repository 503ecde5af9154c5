package privacypass

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"math/big"
	"testing"
)

// stdlibVerify is the reference verifyPSS384 must agree with.
func stdlibVerify(pk *rsa.PublicKey, digest, sig []byte) bool {
	return rsa.VerifyPSS(pk, crypto.SHA384, digest, sig, &pssOptions) == nil
}

// rawSign is s = em^d mod n: a "signature" of any encoded message, so the
// test can hand both verifiers every way an EM can be malformed.
func rawSign(sk *rsa.PrivateKey, em []byte) []byte {
	s := new(big.Int).Exp(new(big.Int).SetBytes(em), sk.D, sk.N)
	return s.FillBytes(make([]byte, Nk))
}

// TestVerifyMatchesStdlib: the prepared-modulus verifier accepts exactly
// what rsa.VerifyPSS accepts, for real signatures and for signatures of
// every kind of malformed encoded message, out-of-range values and
// corrupted bytes.
func TestVerifyMatchesStdlib(t *testing.T) {
	sk, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := NewPublicKey(&sk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if pk.n == nil {
		t.Fatal("NewPublicKey did not prepare the modulus")
	}
	digest := sha512.Sum384([]byte("report token"))
	good, err := rsa.SignPSS(rand.Reader, sk, crypto.SHA384, digest[:], &pssOptions)
	if err != nil {
		t.Fatal(err)
	}
	salt32, err := rsa.SignPSS(rand.Reader, sk, crypto.SHA384, digest[:], &rsa.PSSOptions{SaltLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	// The encoded message inside good, to derive malformed ones from.
	em := new(big.Int).Exp(new(big.Int).SetBytes(good), big.NewInt(int64(sk.E)), sk.N).FillBytes(make([]byte, Nk))
	mutate := func(f func(em []byte)) []byte {
		c := append([]byte(nil), em...)
		f(c)
		return rawSign(sk, c)
	}
	nMinus1 := new(big.Int).Sub(sk.N, big.NewInt(1)).FillBytes(make([]byte, Nk))
	cases := []struct {
		name string
		sig  []byte
		want bool
	}{
		{"real signature", good, true},
		{"re-signed encoded message", rawSign(sk, em), true},
		{"salt of 32 bytes", salt32, false},
		{"trailer not 0xbc", mutate(func(b []byte) { b[len(b)-1] = 0xbd }), false},
		{"top bit set", mutate(func(b []byte) { b[0] |= 0x80 }), false},
		{"masked DB changed", mutate(func(b []byte) { b[10] ^= 1 }), false},
		{"hash changed", mutate(func(b []byte) { b[len(b)-2] ^= 1 }), false},
		{"zero", make([]byte, Nk), false},
		{"one", new(big.Int).SetInt64(1).FillBytes(make([]byte, Nk)), false},
		{"n", sk.N.FillBytes(make([]byte, Nk)), false},
		{"n-1", nMinus1, false},
		{"all 0xff", bytesOf(0xff, Nk), false},
		{"short", good[:Nk-1], false},
		{"long", append([]byte{0}, good...), false},
	}
	for i := range 32 {
		c := append([]byte(nil), good...)
		c[i*Nk/32] ^= byte(1 << (i % 8))
		cases = append(cases, struct {
			name string
			sig  []byte
			want bool
		}{"bit flipped", c, false})
	}
	for _, c := range cases {
		std := stdlibVerify(&sk.PublicKey, digest[:], c.sig)
		ours := verifyPSS384(pk.n, pk.RSA.E, digest[:], c.sig) == nil
		if std != c.want || ours != c.want {
			t.Errorf("%s: rsa.VerifyPSS %v, verifyPSS384 %v, want %v", c.name, std, ours, c.want)
		}
	}
	other := sha512.Sum384([]byte("another message"))
	if verifyPSS384(pk.n, pk.RSA.E, other[:], good) == nil {
		t.Error("a signature verified for another message")
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// FuzzVerifyMatchesStdlib: for any signature bytes, the two verifiers
// agree.
func FuzzVerifyMatchesStdlib(f *testing.F) {
	sk, err := testKey()
	if err != nil {
		f.Fatal(err)
	}
	pk, err := NewPublicKey(&sk.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	digest := sha512.Sum384([]byte("fuzz"))
	good, err := rsa.SignPSS(rand.Reader, sk, crypto.SHA384, digest[:], &pssOptions)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(make([]byte, Nk))
	f.Fuzz(func(t *testing.T, sig []byte) {
		std := stdlibVerify(&sk.PublicKey, digest[:], sig)
		ours := verifyPSS384(pk.n, pk.RSA.E, digest[:], sig) == nil
		if std != ours {
			t.Fatalf("rsa.VerifyPSS %v, verifyPSS384 %v", std, ours)
		}
	})
}
