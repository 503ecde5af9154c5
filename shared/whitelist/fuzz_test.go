package whitelist

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// fuzzKey is fixed so a corpus entry means the same thing on every run.
var fuzzKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// FuzzEnvelope feeds arbitrary envelope bytes, and arbitrary payloads signed
// with a trusted key, to Verify: it must never panic; whatever it accepts
// must carry a good signature by the trusted key and pass Validate; whatever
// it refuses must be one of the package's errors, so the helper can say why
// it kept its last good copy.
func FuzzEnvelope(f *testing.F) {
	doc := &Document{Schema: Schema, Version: 3, IssuedAt: time.Unix(1e9, 0).UTC(), ExpiresAt: time.Unix(2e9, 0).UTC(),
		Categories: Categories, Services: []Service{{ID: "zoom", Name: "Zoom", Category: "video", Hosts: []string{"zoom.us"}}},
		Organisations: []Organisation{{ID: "o", Name: "O"}}, Policies: []Policy{{Org: "o", Service: "zoom", Status: Approved}}}
	env, err := Sign(doc, fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(env)
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	f.Add(good, payload)
	f.Add([]byte(`{"payload":"","signatures":[]}`), []byte(`{}`))
	f.Add([]byte(`{"payload":"!!","signatures":[{"key_id":"x","sig":"y"}]}`), []byte(`{"schema":1,"version":-1}`))
	f.Add([]byte(`null`), []byte(`{"schema":1,"version":1,"policies":[{"org":"a"}]}`))
	trusted := []ed25519.PublicKey{fuzzKey.Public().(ed25519.PublicKey)}
	check := func(t *testing.T, e *Envelope) {
		d, p, err := Verify(e, trusted)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrNoTrustedSignature) {
				t.Fatalf("Verify refused with an error of no known kind: %v", err)
			}
			return
		}
		if d == nil || p == nil {
			t.Fatal("accepted without a document or payload")
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted a document that does not validate: %v", err)
		}
		ok := false
		for _, s := range e.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err == nil && ed25519.Verify(trusted[0], p, sig) {
				ok = true
			}
		}
		if !ok {
			t.Fatal("accepted a payload with no good signature by the trusted key")
		}
	}
	f.Fuzz(func(t *testing.T, envelope, payload []byte) {
		var e Envelope
		if json.Unmarshal(envelope, &e) == nil {
			check(t, &e)
		}
		// The same payload bytes signed by the trusted key: a hub that signs
		// garbage must still not crash or mislead the helper.
		signed := &Envelope{Payload: base64.StdEncoding.EncodeToString(payload),
			Signatures: []Signature{{KeyID: KeyID(trusted[0]), Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(fuzzKey, payload))}}}
		check(t, signed)
	})
}
