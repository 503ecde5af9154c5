package reportstest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/detour-project/detour/shared/privacypass"
)

// Device is an enrolled device as a helper holds it: its credential, and
// the organisation's issuer key and name its tokens answer. Benchmarks and
// load tests mint their tokens through it the real way (enrolment, then
// POST /api/v1/tokens with blinded requests), not by signing in-process.
type Device struct {
	Credential string
	Key        *privacypass.PublicKey
	Issuer     string
}

// Enrol enrols one device at the hub base with an enrolment code.
func Enrol(c *http.Client, base, code string) (*Device, error) {
	body, _ := json.Marshal(map[string]string{"code": code})
	resp, err := c.Post(base+"/api/v1/enrol", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	defer resp.Body.Close()
	var e struct {
		DeviceCredential string `json:"device_credential"`
		IssuerName       string `json:"issuer_name"`
		IssuerKeys       []struct {
			PublicKey string `json:"public_key"`
		} `json:"issuer_keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || len(e.IssuerKeys) == 0 {
		return nil, fmt.Errorf("enrol: status %d, no issuer key in the answer (%v)", resp.StatusCode, err)
	}
	der, err := base64.RawURLEncoding.DecodeString(e.IssuerKeys[0].PublicKey)
	if err != nil {
		return nil, fmt.Errorf("enrol: issuer key: %w", err)
	}
	pk, err := privacypass.ParsePublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("enrol: issuer key: %w", err)
	}
	return &Device{Credential: e.DeviceCredential, Key: pk, Issuer: e.IssuerName}, nil
}

// MaxBatch is the most token requests the hub signs in one call.
const MaxBatch = 32

// Tokens mints n (at most MaxBatch) tokens from the hub base in one call and
// returns them base64-encoded, as a report body carries them.
func (d *Device) Tokens(c *http.Client, base string, n int) ([]string, error) {
	pc, err := privacypass.NewClient(d.Key)
	if err != nil {
		return nil, err
	}
	reqs := make([]string, n)
	pend := make([]*privacypass.Pending, n)
	for i := range n {
		raw, p, err := pc.Request(rand.Reader, privacypass.ReportChallenge(d.Issuer))
		if err != nil {
			return nil, err
		}
		reqs[i], pend[i] = base64.StdEncoding.EncodeToString(raw), p
	}
	body, _ := json.Marshal(map[string]any{"token_requests": reqs})
	req, _ := http.NewRequest("POST", base+"/api/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.Credential)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		TokenResponses []string `json:"token_responses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.TokenResponses) != n {
		return nil, fmt.Errorf("tokens: status %d, %d of %d answers (%v)", resp.StatusCode, len(out.TokenResponses), n, err)
	}
	toks := make([]string, n)
	for i, s := range out.TokenResponses {
		sig, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("tokens: answer %d: %w", i, err)
		}
		tok, err := pc.Finalize(pend[i], sig)
		if err != nil {
			return nil, err
		}
		toks[i] = base64.StdEncoding.EncodeToString(tok.Marshal())
	}
	return toks, nil
}
