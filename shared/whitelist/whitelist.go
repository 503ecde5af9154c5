// Package whitelist defines the signed cross-organisation whitelist document
// exactly as DESIGN.md gives it, and the Ed25519 signing and verification
// that the hub (signer) and every helper (verifier) share.
//
// The signature covers the payload bytes as sent, not a re-encoding, so the
// verifier never depends on JSON canonicalisation: it checks the bytes, then
// parses them.
package whitelist

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Schema is the payload schema version this code reads and writes.
const Schema = 1

// Categories is the fixed set of service categories.
var Categories = []string{"documents", "video", "wiki", "files", "projects", "chat", "whiteboard", "forms"}

// Statuses a policy may have.
const (
	Approved   = "approved"
	Blocked    = "blocked"
	Restricted = "restricted"
	Unknown    = "unknown"
)

// Service is one collaboration tool.
type Service struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Vendor   string   `json:"vendor"`
	Category string   `json:"category"`
	Hosts    []string `json:"hosts"`
	URL      string   `json:"url"`
	Features []string `json:"features"`
}

// Organisation is a member of the hub. Its filtering contacts stay private to
// the hub and are never in the document.
type Organisation struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Sector string `json:"sector"`
}

// Policy is an organisation's decision about one service.
type Policy struct {
	Org          string   `json:"org"`
	Service      string   `json:"service"`
	Status       string   `json:"status"`
	Alternatives []string `json:"alternatives"`
	Note         string   `json:"note"`
}

// Agreement says that a service is agreed for working across organisations
// (DESIGN.md, "The agreed cross-organisation whitelist"): at most one per
// service, in the service's category, with the organisations that endorse it
// (sorted ids) and when the first of them did. Declines, their reasons and
// the discussion stay on the hub and are never in the document.
type Agreement struct {
	Service    string    `json:"service"`
	Category   string    `json:"category"`
	EndorsedBy []string  `json:"endorsed_by"`
	Since      time.Time `json:"since"`
}

// Document is the whitelist payload. A helper built before Agreements existed
// decodes it with encoding/json, which skips fields it does not know, and the
// signature covers the bytes, not the fields: it still verifies and uses such
// a document (tested in agreements_test.go).
type Document struct {
	Schema        int            `json:"schema"`
	Version       int64          `json:"version"`
	IssuedAt      time.Time      `json:"issued_at"`
	ExpiresAt     time.Time      `json:"expires_at"`
	Categories    []string       `json:"categories"`
	Services      []Service      `json:"services"`
	Organisations []Organisation `json:"organisations"`
	Policies      []Policy       `json:"policies"`
	// Agreements is absent rather than empty when there are none, so that a
	// catalog without agreements signs exactly the bytes it signed before.
	Agreements []Agreement `json:"agreements,omitempty"`
}

// Signature is one signature over the payload bytes.
type Signature struct {
	KeyID string `json:"key_id"`
	Sig   string `json:"sig"`
}

// Envelope is what /api/v1/whitelist serves.
type Envelope struct {
	Payload    string      `json:"payload"`
	Signatures []Signature `json:"signatures"`
}

// PublicKey is a published whitelist signing key.
type PublicKey struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
}

// KeyID derives a stable, short identifier from a public key, so a helper can
// name the key it pinned without trusting the hub's label for it.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// Export turns a public key into its published form.
func Export(pub ed25519.PublicKey) PublicKey {
	return PublicKey{KeyID: KeyID(pub), PublicKey: base64.StdEncoding.EncodeToString(pub)}
}

// ParsePublicKey decodes a published key and checks that its key_id matches.
func ParsePublicKey(k PublicKey) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("whitelist key %q: not base64: %w", k.KeyID, err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("whitelist key %q: %d bytes, want %d", k.KeyID, len(raw), ed25519.PublicKeySize)
	}
	pub := ed25519.PublicKey(raw)
	if k.KeyID != "" && k.KeyID != KeyID(pub) {
		return nil, fmt.Errorf("whitelist key %q: id does not match the key (%s)", k.KeyID, KeyID(pub))
	}
	return pub, nil
}

// Sign encodes doc and signs the bytes with every key given (more than one
// during a key rotation's grace period).
func Sign(doc *Document, keys ...ed25519.PrivateKey) (*Envelope, error) {
	if len(keys) == 0 {
		return nil, errors.New("whitelist: sign: no key")
	}
	payload, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("whitelist: encode: %w", err)
	}
	env := &Envelope{Payload: base64.StdEncoding.EncodeToString(payload)}
	for _, k := range keys {
		pub := k.Public().(ed25519.PublicKey)
		env.Signatures = append(env.Signatures, Signature{
			KeyID: KeyID(pub),
			Sig:   base64.StdEncoding.EncodeToString(ed25519.Sign(k, payload)),
		})
	}
	return env, nil
}

// Errors a verifier returns; callers test them with errors.Is.
var (
	ErrNoTrustedSignature = errors.New("whitelist: no signature by a trusted key")
	ErrBadSignature       = errors.New("whitelist: signature does not verify")
	ErrMalformed          = errors.New("whitelist: malformed document")
)

// Verify checks that at least one signature is by a trusted key and verifies,
// then parses and validates the payload. A signature by an unknown key is
// ignored; a signature by a trusted key that fails is an error on its own,
// because it means the payload was altered.
func Verify(env *Envelope, trusted []ed25519.PublicKey) (*Document, []byte, error) {
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: payload is not base64", ErrMalformed)
	}
	byID := make(map[string]ed25519.PublicKey, len(trusted))
	for _, k := range trusted {
		byID[KeyID(k)] = k
	}
	good := false
	for _, s := range env.Signatures {
		pub, ok := byID[s.KeyID]
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil || !ed25519.Verify(pub, payload, sig) {
			return nil, nil, fmt.Errorf("%w (key %s)", ErrBadSignature, s.KeyID)
		}
		good = true
	}
	if !good {
		return nil, nil, ErrNoTrustedSignature
	}
	var doc Document
	if err := json.Unmarshal(payload, &doc); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := doc.Validate(); err != nil {
		return nil, nil, err
	}
	return &doc, payload, nil
}

// Validate checks the invariants every consumer relies on: known schema and
// categories, unique service ids, no host claimed by two services, policies
// that name known organisations and services.
func (d *Document) Validate() error {
	if d.Schema != Schema {
		return fmt.Errorf("%w: schema %d, want %d", ErrMalformed, d.Schema, Schema)
	}
	if d.Version <= 0 {
		return fmt.Errorf("%w: version %d", ErrMalformed, d.Version)
	}
	cats := map[string]bool{}
	for _, c := range Categories {
		cats[c] = true
	}
	svc := map[string]bool{}
	hosts := map[string]string{}
	for _, s := range d.Services {
		if s.ID == "" || svc[s.ID] {
			return fmt.Errorf("%w: service id %q empty or repeated", ErrMalformed, s.ID)
		}
		svc[s.ID] = true
		if !cats[s.Category] {
			return fmt.Errorf("%w: service %q: unknown category %q", ErrMalformed, s.ID, s.Category)
		}
		for _, h := range s.Hosts {
			h = strings.ToLower(h)
			if other, dup := hosts[h]; dup {
				return fmt.Errorf("%w: host %q claimed by %q and %q", ErrMalformed, h, other, s.ID)
			}
			hosts[h] = s.ID
		}
	}
	orgs := map[string]bool{}
	for _, o := range d.Organisations {
		if o.ID == "" || orgs[o.ID] {
			return fmt.Errorf("%w: organisation id %q empty or repeated", ErrMalformed, o.ID)
		}
		orgs[o.ID] = true
	}
	for _, p := range d.Policies {
		if !orgs[p.Org] || !svc[p.Service] {
			return fmt.Errorf("%w: policy %s/%s names an unknown organisation or service", ErrMalformed, p.Org, p.Service)
		}
		switch p.Status {
		case Approved, Blocked, Restricted, Unknown:
		default:
			return fmt.Errorf("%w: policy %s/%s: status %q", ErrMalformed, p.Org, p.Service, p.Status)
		}
		for _, a := range p.Alternatives {
			if !svc[a] {
				return fmt.Errorf("%w: policy %s/%s: unknown alternative %q", ErrMalformed, p.Org, p.Service, a)
			}
		}
	}
	return d.validateAgreements(orgs)
}

// validateAgreements: one agreement per known service, in its category,
// endorsed by at least one known organisation, each once.
func (d *Document) validateAgreements(orgs map[string]bool) error {
	cat := make(map[string]string, len(d.Services))
	for _, s := range d.Services {
		cat[s.ID] = s.Category
	}
	seen := map[string]bool{}
	for _, a := range d.Agreements {
		c, ok := cat[a.Service]
		if !ok || seen[a.Service] {
			return fmt.Errorf("%w: agreement for %q: unknown or repeated service", ErrMalformed, a.Service)
		}
		seen[a.Service] = true
		if a.Category != c {
			return fmt.Errorf("%w: agreement for %q: category %q, the service's is %q", ErrMalformed, a.Service, a.Category, c)
		}
		if len(a.EndorsedBy) == 0 {
			return fmt.Errorf("%w: agreement for %q: no endorsing organisation", ErrMalformed, a.Service)
		}
		by := map[string]bool{}
		for _, o := range a.EndorsedBy {
			if !orgs[o] || by[o] {
				return fmt.Errorf("%w: agreement for %q: endorsing organisation %q unknown or repeated", ErrMalformed, a.Service, o)
			}
			by[o] = true
		}
	}
	return nil
}

// ServiceForHost finds the service a host name belongs to: an exact host, or
// a subdomain of one (meet.google.com is not matched by google.com unless the
// catalog lists google.com, so list hosts precisely).
func (d *Document) ServiceForHost(host string) *Service {
	s, _ := d.MatchHost(host)
	return s
}

// MatchHost is ServiceForHost that also says which of the service's catalog
// hosts matched: the one a report names, never the subdomain the person was
// on (it may name a tenant).
func (d *Document) MatchHost(host string) (*Service, string) {
	var found *Service
	matched := LookupHost(host, func(h string) bool {
		for i := range d.Services {
			for _, sh := range d.Services[i].Hosts {
				if strings.EqualFold(sh, h) {
					found = &d.Services[i]
					return true
				}
			}
		}
		return false
	})
	return found, matched
}

// LookupHost is the one host → catalog walk (the helper's index, the
// agent's reports and the probe all use it): it normalises host
// (NormaliseHost) and asks listed about it and then each parent that still
// has at least two labels, most specific first, so that the most specific
// listing wins and no bare TLD ever matches. It returns the name listed
// accepted, or "" when none was.
func LookupHost(host string, listed func(h string) bool) string {
	host = NormaliseHost(host)
	for host != "" {
		if listed(host) {
			return host
		}
		dot := strings.IndexByte(host, '.')
		if dot < 0 || strings.Count(host, ".") < 2 {
			return ""
		}
		host = host[dot+1:]
	}
	return ""
}

// NormaliseHost is how a host is compared with the catalog's: lower case,
// without surrounding space, a trailing dot or a port.
func NormaliseHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(h, ".")
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h, "]") {
		h = h[:i]
	}
	return h
}
