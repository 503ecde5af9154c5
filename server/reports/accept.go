package reports

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/detour-project/detour/shared/report"
	"regexp"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/privacypass"
)

// Report is what the hub accepts: see shared/report.
type Report = report.Report

// canonical is the report's one byte form: JSON in the struct's fixed field
// order. Its hash identifies the report across resends.
func canonical(r Report) []byte {
	b, _ := json.Marshal(r) // only strings: cannot fail
	return b
}

// Outcome says what happened to an accepted-or-known report.
type Outcome int

const (
	Accepted  Outcome = iota + 1 // stored and counted now (202)
	Duplicate                    // the same report with the same token was stored before (200)
)

// RefusedError is a report the hub will not take; Status is the HTTP status.
type RefusedError struct {
	Status int
	Reason string
}

func (e *RefusedError) Error() string { return "reports: refused: " + e.Reason }

func refuse(status int, format string, args ...any) error {
	return &RefusedError{Status: status, Reason: fmt.Sprintf(format, args...)}
}

var (
	idRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	// Vendor ids are words ("zscaler", "cisco-umbrella"): never digits
	// and dots, so nothing shaped like an address gets in.
	vendorRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,47}$`)
	// A release version, optionally with a build suffix: 0.1.0, 0.1.0-dev.
	versionRe = regexp.MustCompile(`^v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}(-[0-9A-Za-z][0-9A-Za-z.-]{0,31})?$`)
	hourRe    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00:00Z$`)
)

// MaxAge is how old a report's hour may be.
const MaxAge = 7 * 24 * time.Hour

// check validates every field against the vocabulary and the catalog. The
// reasons name the field, never echo its value.
func (s *Service) check(r Report) error {
	doc := s.cfg.Document()
	if doc == nil {
		return refuse(503, "the hub's catalog is not ready")
	}
	if !idRe.MatchString(r.Org) {
		return refuse(400, "org: not an organisation id")
	}
	known := false
	for _, o := range doc.Organisations {
		if o.ID == r.Org {
			known = true
			break
		}
	}
	if !known {
		return refuse(400, "org: unknown organisation")
	}
	if !idRe.MatchString(r.Service) {
		return refuse(400, "service: not a service id")
	}
	var hosts []string
	found := false
	for _, sv := range doc.Services {
		if sv.ID == r.Service {
			hosts, found = sv.Hosts, true
			break
		}
	}
	if !found {
		return refuse(400, "service: not in the catalog")
	}
	// Exactly a catalog host: a subdomain could carry a tenant name.
	okHost := false
	for _, h := range hosts {
		if h == r.Host {
			okHost = true
			break
		}
	}
	if !okHost {
		return refuse(400, "host: not a host of that service")
	}
	if !method.Valid(r.Method) {
		return refuse(400, "method: not a method name")
	}
	if r.Vendor != "" && !vendorRe.MatchString(r.Vendor) {
		return refuse(400, "vendor: not a vendor id")
	}
	if !method.ValidNeed(r.Need) {
		return refuse(400, "need: not one of %v", method.Needs)
	}
	if !hourRe.MatchString(r.Hour) {
		return refuse(400, "hour: want RFC 3339 UTC truncated to the hour, e.g. 2026-01-02T15:00:00Z")
	}
	h, err := time.Parse(time.RFC3339, r.Hour)
	if err != nil {
		return refuse(400, "hour: not a valid time")
	}
	now := s.now()
	if h.After(now.Truncate(time.Hour)) {
		return refuse(400, "hour: in the future")
	}
	if now.Sub(h) > MaxAge {
		return refuse(400, "hour: older than 7 days")
	}
	if !versionRe.MatchString(r.ClientVersion) {
		return refuse(400, "client_version: want a release version such as 1.2.3 or 1.2.3-dev")
	}
	return nil
}

// Accept checks a report and its token and, if both are good, stores the
// report, spends the token and counts the report in one transaction. The
// same report with the same token again is a no-op (Duplicate); the token
// with a different report is refused with 409.
func (s *Service) Accept(ctx context.Context, r Report, token []byte) (Outcome, string, error) {
	j, err := s.admit(ctx, r, token)
	if err != nil {
		return 0, "", err
	}
	out, err := s.group.do(ctx, j)
	if err != nil {
		return 0, "", err
	}
	return out, j.id, nil
}

// admit checks a report and verifies its token, and returns the job that
// stores it.
func (s *Service) admit(ctx context.Context, r Report, token []byte) (*commitJob, error) {
	if err := s.check(r); err != nil {
		return nil, err
	}
	tok, err := privacypass.UnmarshalToken(token)
	if err != nil {
		return nil, refuse(401, "token: malformed")
	}
	key, err := s.verifyingKey(ctx, r.Org, tok.TokenKeyID)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, refuse(401, "token: not issued by this organisation's key")
	}
	if err := privacypass.Verify(key.pub, tok, s.Challenge()); err != nil {
		switch {
		case errors.Is(err, privacypass.ErrWrongContext):
			return nil, refuse(401, "token: issued for another hub or purpose")
		default:
			return nil, refuse(401, "token: signature does not verify")
		}
	}
	canon := canonical(r)
	rh := sha256.Sum256(canon)
	idSum := sha256.Sum256(append(canon, tok.Nonce[:]...))
	return &commitJob{r: r, id: hex.EncodeToString(idSum[:]), nonce: hex.EncodeToString(tok.Nonce[:]),
		reportHash: hex.EncodeToString(rh[:])}, nil
}

// SignRequests blind-signs a batch of encoded token requests for the device
// holding cred, within its daily quota.
func (s *Service) SignRequests(ctx context.Context, cred string, requests []string) ([]string, PublishedKey, error) {
	org, err := s.deviceOrg(ctx, cred)
	if err != nil {
		return nil, PublishedKey{}, err
	}
	if org == "" {
		return nil, PublishedKey{}, refuse(401, "device credential unknown")
	}
	key, err := s.signingKey(ctx, org)
	if err != nil {
		return nil, PublishedKey{}, err
	}
	pub := publish(key)
	if len(requests) == 0 || len(requests) > 32 {
		return nil, pub, refuse(400, "token_requests: send 1 to 32")
	}
	raw := make([][]byte, len(requests))
	for i, q := range requests {
		b, err := base64.StdEncoding.DecodeString(q)
		if err != nil {
			return nil, pub, refuse(400, "token_requests[%d]: not base64", i)
		}
		req, err := privacypass.UnmarshalTokenRequest(b)
		if err != nil {
			return nil, pub, refuse(400, "token_requests[%d]: malformed", i)
		}
		if req.TruncatedTokenKeyID != key.pub.ID[privacypass.Nid-1] {
			return nil, pub, refuse(409, "token_requests[%d]: for an issuer key that no longer signs; use issuer_key", i)
		}
		raw[i] = b
	}
	day := s.now().Format("2006-01-02")
	credHash := hashHex(cred)
	batch := sha256.New()
	for _, b := range raw {
		batch.Write(b)
	}
	batchHash := hex.EncodeToString(batch.Sum(nil))
	err = s.writeTx(ctx, func(tx *store.Tx) error {
		// The same batch again today is a device that lost our answer: sign
		// it again (the signatures come out the same) without counting it.
		res, err := tx.ExecContext(ctx, `INSERT INTO token_batches (credential_hash, day, batch_hash) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, credHash, day, batchHash)
		if err != nil {
			return fmt.Errorf("reports: token batch: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO token_issuance (credential_hash, day, n) VALUES (?, ?, ?)
			ON CONFLICT (credential_hash, day) DO UPDATE SET n = token_issuance.n + excluded.n`, credHash, day, len(raw)); err != nil {
			return fmt.Errorf("reports: count tokens: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM token_issuance WHERE credential_hash = ? AND day = ?`, credHash, day).Scan(&n); err != nil {
			return fmt.Errorf("reports: count tokens: %w", err)
		}
		if n > s.cfg.TokensPerDay {
			return refuse(429, "daily token quota of %d reached", s.cfg.TokensPerDay)
		}
		return nil
	})
	if err != nil {
		return nil, pub, err
	}
	out := make([]string, len(raw))
	for i, b := range raw {
		sig, err := key.issuer.Sign(b)
		if err != nil {
			return nil, pub, refuse(400, "token_requests[%d]: %v", i, err)
		}
		out[i] = base64.StdEncoding.EncodeToString(sig)
	}
	return out, pub, nil
}

// writeTx runs a write transaction. SQLite takes one writer at a time and
// makes the others sleep on its busy timeout, in steps that turn a short
// queue into long tail latencies; queueing the hub's own writers on a mutex
// first keeps them in order and awake. PostgreSQL needs no such help.
func (s *Service) writeTx(ctx context.Context, f func(*store.Tx) error) error {
	if s.db.Dialect() == store.SQLite {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	return s.db.InTx(ctx, f)
}
