// Package catalog embeds the seed catalog of real collaboration services
// (services.json) and, kept apart, the fictional example organisations and
// policies used by demos and tests (examples.json), with their JSON Schemas.
//
// The hub imports the seed on first start, the extension bundles it for use
// without the helper, and tests build whitelists from it, so there is exactly
// one copy of the data. See README.md for the rules the data follows (one
// host, one service; parent hosts cover subdomains; no paths).
package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/detour-project/detour/shared/whitelist"
)

// Raw files, for callers that validate or re-serve them unchanged.
var (
	//go:embed services.json
	ServicesJSON []byte
	//go:embed services.schema.json
	ServicesSchemaJSON []byte
	//go:embed examples.json
	ExamplesJSON []byte
	//go:embed examples.schema.json
	ExamplesSchemaJSON []byte
)

type servicesFile struct {
	Categories []string            `json:"categories"`
	Services   []whitelist.Service `json:"services"`
}

type examplesFile struct {
	Organisations []whitelist.Organisation `json:"organisations"`
	Policies      []whitelist.Policy       `json:"policies"`
}

// Services decodes the seed catalog. Unknown fields are an error, so a typo
// in the data cannot silently drop a value.
func Services() (categories []string, services []whitelist.Service, err error) {
	var f servicesFile
	if err := decodeStrict(ServicesJSON, &f); err != nil {
		return nil, nil, fmt.Errorf("catalog: services.json: %w", err)
	}
	for i := range f.Services {
		if f.Services[i].Features == nil {
			f.Services[i].Features = []string{}
		}
	}
	return f.Categories, f.Services, nil
}

// Examples decodes the fictional organisations and policies. Missing
// alternatives become an empty list, so an encoded document never says null.
func Examples() ([]whitelist.Organisation, []whitelist.Policy, error) {
	var f examplesFile
	if err := decodeStrict(ExamplesJSON, &f); err != nil {
		return nil, nil, fmt.Errorf("catalog: examples.json: %w", err)
	}
	for i := range f.Policies {
		if f.Policies[i].Alternatives == nil {
			f.Policies[i].Alternatives = []string{}
		}
	}
	return f.Organisations, f.Policies, nil
}

// ExampleDocument builds an unsigned whitelist document from the seed
// catalog and the examples, valid from now for ttl. Tests and demos sign it
// with whitelist.Sign.
func ExampleDocument(version int64, now time.Time, ttl time.Duration) (*whitelist.Document, error) {
	cats, svcs, err := Services()
	if err != nil {
		return nil, err
	}
	orgs, pols, err := Examples()
	if err != nil {
		return nil, err
	}
	doc := &whitelist.Document{
		Schema:        whitelist.Schema,
		Version:       version,
		IssuedAt:      now.UTC().Truncate(time.Second),
		ExpiresAt:     now.Add(ttl).UTC().Truncate(time.Second),
		Categories:    cats,
		Services:      svcs,
		Organisations: orgs,
		Policies:      pols,
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("catalog: example document: %w", err)
	}
	return doc, nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}
