package reports

import (
	"context"
	"errors"
	"fmt"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/shared/whitelist"
)

// Enrolment is what Enrol did.
type Enrolment struct {
	Hub           string `json:"hub"`
	Org           string `json:"org"`
	WhitelistKeys int    `json:"whitelist_keys"` // keys pinned
}

// Enrol exchanges an enrolment code for a device credential: the credential
// goes to the keyring, the hub, organisation and the hub's whitelist keys
// (from GET /api/v1/keys) to the config, and the issuer key to the token
// stash, whose old tokens are dropped. Nothing is written unless every step
// succeeded.
func (r *Reporter) Enrol(ctx context.Context, hubURL, code string) (*Enrolment, error) {
	if r.opts.Secrets == nil {
		return nil, errors.New("reports: no keyring is available to keep the device credential")
	}
	base, err := CheckHubURL(hubURL)
	if err != nil {
		return nil, err
	}
	if code == "" {
		return nil, errors.New("reports: enrolment code is empty")
	}
	api := newHubAPI(base, r.opts.HTTPTimeout)
	var e enrolResult
	if err := api.do(ctx, api.tokens, "POST", "/api/v1/enrol", "", map[string]string{"code": code}, &e); err != nil {
		return nil, fmt.Errorf("reports: enrol: %w", err)
	}
	if e.DeviceCredential == "" || e.Org == "" || e.IssuerName == "" || len(e.IssuerKeys) == 0 {
		return nil, errors.New("reports: enrol: the hub's answer is incomplete")
	}
	key := e.IssuerKeys[0]
	if _, err := key.parse(); err != nil {
		return nil, fmt.Errorf("reports: enrol: %w", err)
	}
	var keys keysResult
	if err := api.do(ctx, api.tokens, "GET", "/api/v1/keys", "", nil, &keys); err != nil {
		return nil, fmt.Errorf("reports: enrol: fetch the hub's keys: %w", err)
	}
	var pinned []whitelist.PublicKey
	for _, k := range keys.WhitelistKeys {
		pk := whitelist.PublicKey{KeyID: k.KeyID, PublicKey: k.PublicKey}
		if _, err := whitelist.ParsePublicKey(pk); err != nil {
			return nil, fmt.Errorf("reports: enrol: %w", err)
		}
		pinned = append(pinned, pk)
	}
	// The issuer key we were given must be the one published to everyone:
	// a key handed to this device alone would mark its tokens.
	found := false
	for _, k := range keys.IssuerKeys[e.Org] {
		found = found || (k.KeyID == key.KeyID && k.PublicKey == key.PublicKey)
	}
	if !found {
		return nil, errors.New("reports: enrol: the issuer key given to this device is not the one the hub publishes")
	}
	if err := r.opts.Secrets.Set(CredentialKey, e.DeviceCredential); err != nil {
		return nil, fmt.Errorf("reports: enrol: keep the credential: %w", err)
	}
	err = r.opts.Config.Update(func(c *config.Config) error {
		c.Hub, c.Org = base, e.Org
		if len(pinned) > 0 {
			c.WhitelistKeys = pinned
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reports: enrol: %w", err)
	}
	r.mu.Lock()
	r.credential = e.DeviceCredential
	err = r.store.putStash(&Stash{Hub: base, Org: e.Org, IssuerName: e.IssuerName, IssuerKey: key})
	if err == nil {
		// A new credential: whatever revoked the old one is past.
		err = r.store.setRevoked(false)
		r.lastErr = ""
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r.wake()
	return &Enrolment{Hub: base, Org: e.Org, WhitelistKeys: len(pinned)}, nil
}
