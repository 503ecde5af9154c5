package privacypass

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"sync"
	"testing"
)

// testKey is generated once: RSA-2048 generation is slow.
var testKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func issuer(t testing.TB) *Issuer {
	t.Helper()
	sk, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(sk)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func mint(t testing.TB, iss *Issuer, ch TokenChallenge) Token {
	t.Helper()
	c, err := NewClient(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	req, p, err := c.Request(rand.Reader, ch)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := iss.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Finalize(p, resp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	iss := issuer(t)
	ch := ReportChallenge("hub.example")
	tok := mint(t, iss, ch)
	wire := tok.Marshal()
	if len(wire) != 354 {
		t.Fatalf("token is %d bytes, want 354", len(wire))
	}
	back, err := UnmarshalToken(wire)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(iss.PublicKey(), back, ch); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Two tokens for the same challenge and key differ only by nonce and
	// signature: nothing in them names the device.
	tok2 := mint(t, iss, ch)
	if tok.Nonce == tok2.Nonce || tok.ChallengeDigest != tok2.ChallengeDigest || tok.TokenKeyID != tok2.TokenKeyID {
		t.Fatal("tokens should share digest and key id and differ in nonce")
	}
}

func TestVerifyRefuses(t *testing.T) {
	iss := issuer(t)
	ch := ReportChallenge("hub.example")
	tok := mint(t, iss, ch)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherIss, _ := NewIssuer(other)
	cases := []struct {
		name   string
		pk     *PublicKey
		tok    func() Token
		ch     TokenChallenge
		expect error
	}{
		{"other key", otherIss.PublicKey(), func() Token { return tok }, ch, ErrWrongKey},
		{"other issuer name", iss.PublicKey(), func() Token { return tok }, ReportChallenge("evil.example"), ErrWrongContext},
		{"flipped nonce bit", iss.PublicKey(), func() Token { t2 := tok; t2.Nonce[0] ^= 1; return t2 }, ch, ErrBadSignature},
		{"flipped signature bit", iss.PublicKey(), func() Token {
			t2 := tok
			t2.Authenticator = bytes.Clone(tok.Authenticator)
			t2.Authenticator[100] ^= 1
			return t2
		}, ch, ErrBadSignature},
		{"forged: key id of the issuer, signature by another key", iss.PublicKey(), func() Token {
			f := mint(t, otherIss, ch)
			f.TokenKeyID = iss.PublicKey().ID
			return f
		}, ch, ErrBadSignature},
		{"wrong type", iss.PublicKey(), func() Token { t2 := tok; t2.TokenType = 1; return t2 }, ch, ErrWrongType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Verify(c.pk, c.tok(), c.ch); !errors.Is(err, c.expect) {
				t.Fatalf("got %v, want %v", err, c.expect)
			}
		})
	}
}

func TestIssuerRefusesOtherKeyRequest(t *testing.T) {
	iss := issuer(t)
	c, _ := NewClient(iss.PublicKey())
	req, _, err := c.Request(rand.Reader, ReportChallenge("hub.example"))
	if err != nil {
		t.Fatal(err)
	}
	req[2] ^= 0xff
	if _, err := iss.Sign(req); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("got %v, want ErrWrongKey", err)
	}
	if _, err := iss.Sign(req[:100]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short request: got %v", err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", make([]byte, 353)},
		{"long", make([]byte, 355)},
		{"type 1", append([]byte{0, 1}, make([]byte, 352)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := UnmarshalToken(c.b); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestChallengeEncoding(t *testing.T) {
	ch := ReportChallenge("hub.example")
	b, err := ch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "0002" + "000b" + hex.EncodeToString([]byte("hub.example")) + "00" + "000e" + hex.EncodeToString([]byte(OriginInfo))
	if hex.EncodeToString(b) != want {
		t.Fatalf("challenge %x, want %s", b, want)
	}
	back, err := UnmarshalTokenChallenge(b)
	if err != nil || back.IssuerName != "hub.example" || back.OriginInfo != OriginInfo || len(back.RedemptionContext) != 0 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if _, err := UnmarshalTokenChallenge(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	bad := ch
	bad.RedemptionContext = []byte{1, 2, 3}
	if _, err := bad.Marshal(); err == nil {
		t.Fatal("3-byte redemption context accepted")
	}
}

type vector struct {
	PKS           string `json:"pkS"`
	Challenge     string `json:"token_challenge"`
	Nonce         string `json:"nonce"`
	TokenRequest  string `json:"token_request"`
	TokenResponse string `json:"token_response"`
	Token         string `json:"token"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC9578Vectors checks the published type 0x0002 vectors: our key
// encoding reproduces pkS byte for byte, the challenge parses and
// re-encodes, the request names the key, the blind signature is a valid RSA
// signature of the blinded message, and the token verifies.
func TestRFC9578Vectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/rfc9578_type2.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []vector }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range f.Vectors {
		pkS := unhex(t, v.PKS)
		pk, err := ParsePublicKey(pkS)
		if err != nil {
			t.Fatalf("vector %d: pkS: %v", i, err)
		}
		again, err := NewPublicKey(pk.RSA)
		if err != nil || !bytes.Equal(again.DER, pkS) {
			t.Fatalf("vector %d: re-encoded key differs", i)
		}
		ch, err := UnmarshalTokenChallenge(unhex(t, v.Challenge))
		if err != nil {
			t.Fatalf("vector %d: challenge: %v", i, err)
		}
		if enc, _ := ch.Marshal(); !bytes.Equal(enc, unhex(t, v.Challenge)) {
			t.Fatalf("vector %d: challenge re-encodes differently", i)
		}
		req, err := UnmarshalTokenRequest(unhex(t, v.TokenRequest))
		if err != nil {
			t.Fatalf("vector %d: request: %v", i, err)
		}
		if req.TruncatedTokenKeyID != pk.ID[Nid-1] {
			t.Fatalf("vector %d: truncated key id %x, want %x", i, req.TruncatedTokenKeyID, pk.ID[Nid-1])
		}
		// blind_sig^e mod n must equal blinded_msg.
		s := new(big.Int).SetBytes(unhex(t, v.TokenResponse))
		m := new(big.Int).Exp(s, big.NewInt(int64(pk.RSA.E)), pk.RSA.N)
		if m.Cmp(new(big.Int).SetBytes(req.BlindedMsg)) != 0 {
			t.Fatalf("vector %d: response is not a signature of the request", i)
		}
		tok, err := UnmarshalToken(unhex(t, v.Token))
		if err != nil {
			t.Fatalf("vector %d: token: %v", i, err)
		}
		if hex.EncodeToString(tok.Nonce[:]) != v.Nonce {
			t.Fatalf("vector %d: nonce", i)
		}
		if err := Verify(pk, tok, ch); err != nil {
			t.Fatalf("vector %d: verify: %v", i, err)
		}
		if !bytes.Equal(tok.Marshal(), unhex(t, v.Token)) {
			t.Fatalf("vector %d: token re-encodes differently", i)
		}
	}
}

// BenchmarkVerify: one token's verification with the modulus prepared
// once per key (what the hub runs), beside rsa.VerifyPSS (a key without
// the prepared modulus) in the same process.
func BenchmarkVerify(b *testing.B) {
	iss := issuer(b)
	ch := ReportChallenge("hub.example")
	tok := mint(b, iss, ch)
	stdlib := *iss.PublicKey()
	stdlib.n = nil
	for _, c := range []struct {
		name string
		pk   *PublicKey
	}{{"prepared", iss.PublicKey()}, {"rsa.VerifyPSS", &stdlib}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := Verify(c.pk, tok, ch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
