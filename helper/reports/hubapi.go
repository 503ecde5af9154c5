// Package reports is the agent's side of anonymous reports: enrolment with
// a hub, a stash of Privacy Pass tokens fetched ahead of need, a durable
// queue of reports, and a sender that delivers each report once, after a
// random delay, with one token and without the device credential.
//
// Unlinkability rests on four habits: tokens are blind-signed (the hub never
// sees them before redemption); they are fetched in batches at random times,
// not when a report is made; reports travel on a fresh connection that
// carries no credential and no cookie; and a report carries only the eight
// report fields (see Report).
package reports

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/sysproxy"
	"github.com/detour-project/detour/shared/huburl"
	"github.com/detour-project/detour/shared/privacypass"
	"github.com/detour-project/detour/shared/report"
)

// Report is what the helper sends: see shared/report.
type Report = report.Report

// IssuerKey is an issuer public key as the hub publishes it.
type IssuerKey struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	NotAfter  string `json:"not_after,omitempty"`
}

// parse decodes the key and checks that its id matches.
func (k IssuerKey) parse() (*privacypass.PublicKey, error) {
	der, err := base64.RawURLEncoding.DecodeString(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key is not base64url: %w", err)
	}
	pk, err := privacypass.ParsePublicKey(der)
	if err != nil {
		return nil, err
	}
	if k.KeyID != base64.RawURLEncoding.EncodeToString(pk.ID[:]) {
		return nil, errors.New("reports: issuer key id does not match the key")
	}
	return pk, nil
}

// HubError is an answer from the hub other than success.
type HubError struct {
	Status int
	Reason string
	Body   map[string]json.RawMessage
}

func (e *HubError) Error() string {
	return fmt.Sprintf("hub answered %d: %s", e.Status, e.Reason)
}

// hubAPI talks to one hub. Reports go through their own client with
// keep-alives off, so a report never shares a connection with a token
// request (which carries the credential).
type hubAPI struct {
	base    string
	tokens  *http.Client
	reports *http.Client
}

func newHubAPI(base string, timeout time.Duration) *hubAPI {
	return &hubAPI{
		base:    strings.TrimRight(base, "/"),
		tokens:  &http.Client{Timeout: timeout, Transport: sysproxy.Transport()},
		reports: &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true, Proxy: sysproxy.HTTP}},
	}
}

// CheckHubURL is the one hub-URL rule (shared/huburl), with this
// package's prefix on its error.
func CheckHubURL(raw string) (string, error) {
	u, err := huburl.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("reports: %w", err)
	}
	return u, nil
}

func (a *hubAPI) do(ctx context.Context, c *http.Client, method, path, bearer string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("reports: encode: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return fmt.Errorf("reports: %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "detour") // the same for every device
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("reports: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reports: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		he := &HubError{Status: resp.StatusCode}
		json.Unmarshal(raw, &he.Body)
		if r, ok := he.Body["error"]; ok {
			json.Unmarshal(r, &he.Reason)
		}
		if he.Reason == "" {
			he.Reason = http.StatusText(resp.StatusCode)
		}
		return he
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("reports: %s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	if sp, ok := out.(*sendResult); ok {
		sp.status = resp.StatusCode
	}
	return nil
}

type enrolResult struct {
	DeviceCredential string      `json:"device_credential"`
	Org              string      `json:"org"`
	IssuerName       string      `json:"issuer_name"`
	IssuerKeys       []IssuerKey `json:"issuer_keys"`
}

type keysResult struct {
	WhitelistKeys []struct {
		KeyID     string `json:"key_id"`
		PublicKey string `json:"public_key"`
	} `json:"whitelist_keys"`
	IssuerKeys map[string][]IssuerKey `json:"issuer_keys"`
}

type tokensResult struct {
	TokenResponses []string  `json:"token_responses"`
	IssuerName     string    `json:"issuer_name"`
	IssuerKey      IssuerKey `json:"issuer_key"`
}

type sendResult struct {
	Status string `json:"status"`
	ID     string `json:"id"`
	status int
}

func (a *hubAPI) sendReport(ctx context.Context, r Report, token string) (*sendResult, error) {
	var out sendResult
	err := a.do(ctx, a.reports, "POST", "/api/v1/reports", "", map[string]any{"report": r, "token": token}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// published checks that key is among the organisation's issuer keys in
// GET /api/v1/keys, which every device sees.
func (a *hubAPI) published(ctx context.Context, org string, key IssuerKey) error {
	var keys keysResult
	if err := a.do(ctx, a.tokens, "GET", "/api/v1/keys", "", nil, &keys); err != nil {
		return fmt.Errorf("reports: check the issuer key: %w", err)
	}
	for _, k := range keys.IssuerKeys[org] {
		if k.KeyID == key.KeyID && k.PublicKey == key.PublicKey {
			return nil
		}
	}
	return errors.New("reports: the hub offered an issuer key it does not publish for this organisation")
}
