// Package fingerprints embeds the filter fingerprints (fingerprints.json)
// and their JSON Schema, so the helper's matcher, the loopback test network
// and the extension's build all read exactly one copy of the public facts.
//
// The data says how a filter, proxy, CDN or captive portal answers; the
// matcher in helper/fingerprint compiles it. Entries of kind "not-a-block"
// describe pages that look like a block but are not an organisation's (a CDN
// challenge, a proxy's upstream-failure page, a captive portal), so that the
// probe can say why they are not reported.
package fingerprints

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

// Raw files, for callers that validate or re-serve them unchanged.
var (
	//go:embed fingerprints.json
	JSON []byte
	//go:embed fingerprints.schema.json
	SchemaJSON []byte
)

// Kinds of fingerprint.
const (
	KindBlock    = "block"       // an organisation's filter refused the page
	KindNotBlock = "not-a-block" // looks like a block but is not the organisation's
)

// Reasons a not-a-block page is not an organisation's block.
const (
	ReasonCDNChallenge    = "cdn-challenge"
	ReasonSiteProtection  = "site-protection"
	ReasonUpstreamFailure = "upstream-failure"
	ReasonCaptivePortal   = "captive-portal"
	// ReasonServerDefault is a web server's own default error page (nginx,
	// Apache, IIS, XAMPP): the site's server refusing or failing, which
	// says nothing about the organisation's network.
	ReasonServerDefault = "server-default"
)

// File is the whole data file.
type File struct {
	Schema       int           `json:"schema"`
	Fingerprints []Fingerprint `json:"fingerprints"`
}

// Fingerprint describes one product's (or one non-block page's) answers.
type Fingerprint struct {
	ID         string       `json:"id"`
	Vendor     string       `json:"vendor"`
	Name       string       `json:"name"`
	Kind       string       `json:"kind"`
	Reason     string       `json:"reason,omitempty"`
	Source     string       `json:"source"`
	Confidence float64      `json:"confidence"`
	Rules      []Rule       `json:"rules,omitempty"`
	DNS        []DNSAddress `json:"dns,omitempty"`
	TLSIssuers []string     `json:"tls_issuers,omitempty"`
	Sample     Sample       `json:"sample"`
}

// Rule is a conjunction: every condition given must hold.
type Rule struct {
	Status   []int     `json:"status,omitempty"`
	Headers  []Header  `json:"headers,omitempty"`
	Redirect *Redirect `json:"redirect,omitempty"`
	Title    []string  `json:"title,omitempty"`
	Body     []string  `json:"body,omitempty"`
	Weight   float64   `json:"weight,omitempty"` // 0 means 1
}

// Header requires a header, optionally with a case-insensitive substring.
type Header struct {
	Name     string `json:"name"`
	Contains string `json:"contains,omitempty"`
}

// Redirect is matched against each URL the response chain redirected to.
type Redirect struct {
	Hosts []string `json:"hosts,omitempty"`
	Port  int      `json:"port,omitempty"`
	Path  string   `json:"path,omitempty"`
	Query []string `json:"query,omitempty"`
}

// DNSAddress is an address a filter answers for a blocked name.
type DNSAddress struct {
	Addr string `json:"addr"`
	Note string `json:"note"`
}

// Sample is a representative response for tests and the test network.
type Sample struct {
	Status   int               `json:"status"`
	Headers  map[string]string `json:"headers,omitempty"`
	Location string            `json:"location,omitempty"`
	Body     string            `json:"body"`
}

// Load decodes the embedded data. Unknown fields are an error, so a typo in
// the data cannot silently drop a matcher.
func Load() (*File, error) {
	return Parse(JSON)
}

// Parse decodes fingerprint data in the embedded file's format.
func Parse(b []byte) (*File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("fingerprints: decode: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("fingerprints: trailing data after the JSON object")
	}
	seen := map[string]bool{}
	for _, fp := range f.Fingerprints {
		if seen[fp.ID] {
			return nil, fmt.Errorf("fingerprints: duplicate id %q", fp.ID)
		}
		seen[fp.ID] = true
		if len(fp.Rules) == 0 && len(fp.DNS) == 0 && len(fp.TLSIssuers) == 0 {
			return nil, fmt.Errorf("fingerprints: %s has no matchers", fp.ID)
		}
	}
	return &f, nil
}

// MustLoad is Load for package initialisation, where the embedded data has
// already been checked by this package's tests.
func MustLoad() *File {
	f, err := Load()
	if err != nil {
		panic(err)
	}
	return f
}
