package whitelist

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func agreementDoc() *Document {
	return &Document{
		Schema: Schema, Version: 3, IssuedAt: time.Unix(1700000000, 0).UTC(), ExpiresAt: time.Unix(1700600000, 0).UTC(),
		Categories:    Categories,
		Services:      []Service{{ID: "whereby", Name: "Whereby", Category: "video", Hosts: []string{"whereby.com"}}, {ID: "miro", Name: "Miro", Category: "whiteboard", Hosts: []string{"miro.com"}}},
		Organisations: []Organisation{{ID: "a", Name: "A"}, {ID: "b", Name: "B"}},
		Policies:      []Policy{{Org: "a", Service: "whereby", Status: Approved}, {Org: "b", Service: "whereby", Status: Approved}},
		Agreements:    []Agreement{{Service: "whereby", Category: "video", EndorsedBy: []string{"a", "b"}, Since: time.Unix(1700000000, 0).UTC()}},
	}
}

// v1Document is the payload as helpers knew it before agreements: the same
// fields, decoded the way those helpers decode it (encoding/json, unknown
// fields skipped).
type v1Document struct {
	Schema        int            `json:"schema"`
	Version       int64          `json:"version"`
	IssuedAt      time.Time      `json:"issued_at"`
	ExpiresAt     time.Time      `json:"expires_at"`
	Categories    []string       `json:"categories"`
	Services      []Service      `json:"services"`
	Organisations []Organisation `json:"organisations"`
	Policies      []Policy       `json:"policies"`
}

// TestOlderHelpersVerifyAgreements: a document with agreements verifies
// with the same signature check, and an older helper's decoding reads every
// field it knows unchanged; the signature covers the agreements too, so
// removing or altering them is caught.
func TestOlderHelpersVerifyAgreements(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	env, err := Sign(agreementDoc(), key)
	if err != nil {
		t.Fatal(err)
	}
	doc, payload, err := Verify(env, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Agreements) != 1 || doc.Agreements[0].EndorsedBy[1] != "b" {
		t.Fatalf("agreements %+v", doc.Agreements)
	}
	var old v1Document
	if err := json.Unmarshal(payload, &old); err != nil {
		t.Fatalf("an older helper cannot decode it: %v", err)
	}
	if old.Version != 3 || len(old.Policies) != 2 || len(old.Services) != 2 {
		t.Fatalf("an older helper reads %+v", old)
	}
	if !bytes.Contains(payload, []byte(`"agreements":[{"service":"whereby","category":"video","endorsed_by":["a","b"],"since":"2023-11-14T22:13:20Z"}]`)) {
		t.Errorf("payload: %s", payload)
	}
	// Tampering with the agreements breaks the signature.
	forged := bytes.Replace(payload, []byte(`["a","b"]`), []byte(`["a"]`), 1)
	env2 := &Envelope{Payload: base64.StdEncoding.EncodeToString(forged), Signatures: env.Signatures}
	if _, _, err := Verify(env2, []ed25519.PublicKey{pub}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("altered agreements: %v", err)
	}
	// Without agreements the field is absent: the bytes are what they were.
	d := agreementDoc()
	d.Agreements = nil
	b, _ := json.Marshal(d)
	if bytes.Contains(b, []byte("agreements")) {
		t.Errorf("empty agreements are encoded: %s", b)
	}
}

func TestAgreementValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Document)
	}{
		{"unknown service", func(d *Document) { d.Agreements[0].Service = "zoom" }},
		{"repeated service", func(d *Document) { d.Agreements = append(d.Agreements, d.Agreements[0]) }},
		{"wrong category", func(d *Document) { d.Agreements[0].Category = "wiki" }},
		{"no endorsement", func(d *Document) { d.Agreements[0].EndorsedBy = nil }},
		{"unknown organisation", func(d *Document) { d.Agreements[0].EndorsedBy = []string{"a", "z"} }},
		{"repeated organisation", func(d *Document) { d.Agreements[0].EndorsedBy = []string{"a", "a"} }},
	} {
		d := agreementDoc()
		tc.edit(d)
		if err := d.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := agreementDoc().Validate(); err != nil {
		t.Fatal(err)
	}
}
