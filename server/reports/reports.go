// Package reports is the hub's side of anonymous reports: enrolment codes
// and device credentials, each organisation's Privacy Pass issuer keys, the
// daily token quota, and the report collector that accepts a report once per
// token and counts it.
//
// What it stores is chosen so that nothing links a report to a device:
// devices are kept as a hash of their credential, the organisation and the
// day they enrolled; a spent token carries its nonce and the report it paid
// for: the eight report fields, the client version, the report's hash and
// id. No table has a
// client address, a user agent or a URL path, and no handler logs one.
package reports

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/privacypass"
	"github.com/detour-project/detour/shared/whitelist"
)

// Migrations are the reports domain's tables.
var Migrations = []store.Step{{
	Version: 1,
	SQL: `CREATE TABLE enrol_codes (
		id         TEXT PRIMARY KEY,       -- short public handle for list/revoke
		code_hash  TEXT NOT NULL UNIQUE,   -- SHA-256 of the code; the code itself is shown once
		org        TEXT NOT NULL,
		created_at TEXT NOT NULL,
		revoked_at TEXT,
		uses       BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE devices (
		credential_hash TEXT PRIMARY KEY,  -- SHA-256 of the device credential
		org             TEXT NOT NULL,
		enrolled_on     TEXT NOT NULL      -- YYYY-MM-DD only: no address, no agent, no time of day
	);
	CREATE TABLE issuer_keys (
		key_id      TEXT PRIMARY KEY,      -- base64url SHA-256 of public_key's DER
		org         TEXT NOT NULL,
		private_key TEXT NOT NULL,         -- "sealed:" AES-GCM of PKCS #8 (or plain base64 PKCS #8)
		public_key  TEXT NOT NULL,         -- base64url RFC 9578 SPKI
		created_at  TEXT NOT NULL,
		not_after   TEXT NOT NULL
	);
	CREATE INDEX issuer_keys_org ON issuer_keys (org, not_after);
	CREATE TABLE token_issuance (
		credential_hash TEXT NOT NULL,
		day             TEXT NOT NULL,
		n               BIGINT NOT NULL,
		PRIMARY KEY (credential_hash, day)
	);
	CREATE TABLE spent_tokens (
		nonce       TEXT PRIMARY KEY,      -- hex token nonce
		report_hash TEXT NOT NULL          -- SHA-256 of the canonical report it paid for
	);
	CREATE TABLE reports (
		id             TEXT PRIMARY KEY,   -- SHA-256 of canonical report || token nonce
		service        TEXT NOT NULL,
		host           TEXT NOT NULL,
		org            TEXT NOT NULL,
		method         TEXT NOT NULL,
		vendor         TEXT NOT NULL,
		need           TEXT NOT NULL,
		hour           TEXT NOT NULL,
		client_version TEXT NOT NULL
	);
	CREATE INDEX reports_org_hour ON reports (org, hour);`,
}, {
	// Step 2 bounds what one code can issue (a number of devices, an
	// expiry, a rate of enrolments an hour) and lets an admin revoke the
	// devices a code enrolled. Codes made before it get the default limit
	// of 100 devices and no expiry; devices they enrolled have no code.
	Version: 2,
	SQL: `ALTER TABLE enrol_codes ADD COLUMN max_devices BIGINT NOT NULL DEFAULT 100;
	ALTER TABLE enrol_codes ADD COLUMN per_hour BIGINT NOT NULL DEFAULT 30;
	ALTER TABLE enrol_codes ADD COLUMN expires_at TEXT;
	ALTER TABLE devices ADD COLUMN code_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE devices ADD COLUMN revoked_at TEXT;
	CREATE INDEX devices_code ON devices (code_id);
	CREATE TABLE enrol_hours (
		code_id  TEXT NOT NULL,
		hour     TEXT NOT NULL,            -- YYYY-MM-DDTHH: counts only, no device
		enrolled BIGINT NOT NULL DEFAULT 0,
		refused  BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (code_id, hour)
	);`,
}, {
	// Step 3 makes a token batch idempotent: a device that lost the answer
	// to a batch (a crash, a dropped connection) sends the same blinded
	// requests again and is answered again without being counted twice.
	// Only a hash of the batch is kept, for the day it counts against.
	Version: 3,
	SQL: `CREATE TABLE token_batches (
		credential_hash TEXT NOT NULL,
		day             TEXT NOT NULL,
		batch_hash      TEXT NOT NULL,     -- SHA-256 of the blinded requests, in order
		PRIMARY KEY (credential_hash, day, batch_hash)
	);`,
}, {
	// Step 4 stores each report on the row of the token that paid for it,
	// so intake writes one row with one random key (the nonce) where it
	// wrote two (the nonce, and the report id in a table of its own) and a
	// third index entry. The report's id (SHA-256 of the canonical report
	// and the nonce, what the helper is answered) is kept but needs no
	// index: a fresh nonce is a new report. That second random-key index
	// was about half of a group's storage cost (BenchmarkStoreGroup). Reports
	// stored before step 4 stay in reports_legacy, and the view "reports"
	// reads both, so the raw reports are still one table to a reader. The
	// columns are nullable: tokens spent before step 4 have their report in
	// reports_legacy.
	Version: 4,
	SQL: `ALTER TABLE reports RENAME TO reports_legacy;
	ALTER TABLE spent_tokens ADD COLUMN id TEXT;
	ALTER TABLE spent_tokens ADD COLUMN service TEXT;
	ALTER TABLE spent_tokens ADD COLUMN host TEXT;
	ALTER TABLE spent_tokens ADD COLUMN org TEXT;
	ALTER TABLE spent_tokens ADD COLUMN method TEXT;
	ALTER TABLE spent_tokens ADD COLUMN vendor TEXT;
	ALTER TABLE spent_tokens ADD COLUMN need TEXT;
	ALTER TABLE spent_tokens ADD COLUMN hour TEXT;
	ALTER TABLE spent_tokens ADD COLUMN client_version TEXT;
	CREATE VIEW reports AS
		SELECT id, service, host, org, method, vendor, need, hour, client_version FROM reports_legacy
		UNION ALL
		SELECT id, service, host, org, method, vendor, need, hour, client_version FROM spent_tokens WHERE id IS NOT NULL;`,
}}

// Config configures the service.
type Config struct {
	// IssuerName is the hub's name in every token challenge.
	IssuerName string
	// TokensPerDay caps blind signatures per device per UTC day (default 20).
	TokensPerDay int
	// KeyLifetime is how long an issuer key signs (default 180 days).
	KeyLifetime time.Duration
	// Document is the current whitelist: organisations, services and hosts
	// that reports are checked against. It may return nil before the
	// catalog is set up; reports are then refused with 503.
	Document func() *whitelist.Document
	// Now is the clock (tests move it).
	Now func() time.Time
	// Log receives internal errors only; never request details.
	Log *slog.Logger
	// SealKey, 32 bytes, seals issuer private keys at rest (AES-256-GCM):
	// a copy of the database alone cannot mint tokens. Without it keys are
	// stored unsealed (tests). Keys stored either way are read either way.
	SealKey []byte
	// MasterKey, when set, seals new issuer keys instead (the key every hub
	// of a cluster is given, --master-key-file); keys sealed with SealKey
	// still read, and ResealIssuerKeys moves them to the master key.
	MasterKey *masterkey.Key
	// OnReport, if set, hears each report's result ("accepted",
	// "duplicate", "refused") and a refusal's reason class, for metrics.
	OnReport func(result, reason string)
	// OnTokens, if set, hears how many blind signatures a request got.
	OnTokens func(n int)
}

// Service is the reports domain.
type Service struct {
	db  *store.DB
	cfg Config

	writeMu sync.Mutex  // SQLite: one report or quota transaction at a time (see writeTx)
	group   groupCommit // accepted reports, committed in groups (groupcommit.go)

	mu   sync.Mutex           // serialises key creation and the cache
	keys map[string][]*orgKey // org -> keys, newest first
	byID map[[32]byte]*orgKey // every cached key by token_key_id
	// reloaded is when each organisation's keys were last re-read for an
	// unknown key id.
	reloaded map[string]time.Time
}

type orgKey struct {
	org      string
	pub      *privacypass.PublicKey
	issuer   *privacypass.Issuer
	notAfter time.Time
}

// Open runs the migrations and returns the service.
func Open(ctx context.Context, db *store.DB, cfg Config) (*Service, error) {
	if cfg.IssuerName == "" {
		cfg.IssuerName = "detour-hub"
	}
	if cfg.TokensPerDay <= 0 {
		cfg.TokensPerDay = 20
	}
	if cfg.KeyLifetime <= 0 {
		cfg.KeyLifetime = 180 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Document == nil {
		cfg.Document = func() *whitelist.Document { return nil }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := db.Migrate(ctx, "reports", Migrations); err != nil {
		return nil, err
	}
	s := &Service{db: db, cfg: cfg, keys: map[string][]*orgKey{}, byID: map[[32]byte]*orgKey{}, reloaded: map[string]time.Time{}}
	s.group = groupCommit{write: s.writeTx, max: 64}
	return s, nil
}

// IssuerName is the name in every challenge this hub's tokens answer.
func (s *Service) IssuerName() string { return s.cfg.IssuerName }

// Challenge is the one challenge every report token answers.
func (s *Service) Challenge() privacypass.TokenChallenge {
	return privacypass.ReportChallenge(s.cfg.IssuerName)
}

// PublishedKey is one issuer key as GET /api/v1/keys and /enrol show it.
type PublishedKey struct {
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	NotAfter  string `json:"not_after,omitempty"`
}

func publish(k *orgKey) PublishedKey {
	return PublishedKey{
		KeyID:     base64.RawURLEncoding.EncodeToString(k.pub.ID[:]),
		PublicKey: base64.RawURLEncoding.EncodeToString(k.pub.DER),
		NotAfter:  k.notAfter.UTC().Format(time.RFC3339),
	}
}

// PublishedKeys lists every organisation's unexpired issuer keys, newest
// first.
func (s *Service) PublishedKeys(ctx context.Context) (map[string][]PublishedKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT org FROM issuer_keys WHERE not_after > ?`, s.now().Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("reports: list issuer keys: %w", err)
	}
	var orgs []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reports: list issuer keys: %w", err)
		}
		orgs = append(orgs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: list issuer keys: %w", err)
	}
	out := make(map[string][]PublishedKey, len(orgs))
	for _, o := range orgs {
		keys, err := s.orgKeys(ctx, o, false)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.notAfter.After(s.now()) {
				out[o] = append(out[o], publish(k))
			}
		}
	}
	return out, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// EnsureIssuerKey returns the organisation's signing key, creating one
// (RSA-2048) when it has none that signs for at least another week.
func (s *Service) EnsureIssuerKey(ctx context.Context, org string) (PublishedKey, error) {
	k, err := s.signingKey(ctx, org)
	if err != nil {
		return PublishedKey{}, err
	}
	return publish(k), nil
}

func (s *Service) signingKey(ctx context.Context, org string) (*orgKey, error) {
	keys, err := s.orgKeys(ctx, org, false)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 && keys[0].notAfter.Sub(s.now()) > 7*24*time.Hour {
		return keys[0], nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Another request, or another process (admin while serve runs), may
	// have made one meanwhile.
	keys, err = s.loadOrgKeysLocked(ctx, org)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 && keys[0].notAfter.Sub(s.now()) > 7*24*time.Hour {
		return keys[0], nil
	}
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key for %s: %w", org, err)
	}
	iss, err := privacypass.NewIssuer(sk)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key for %s: %w", org, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key for %s: %w", org, err)
	}
	now := s.now()
	k := &orgKey{org: org, pub: iss.PublicKey(), issuer: iss, notAfter: now.Add(s.cfg.KeyLifetime).Truncate(time.Second)}
	p := publish(k)
	stored, err := s.seal(org, p.KeyID, der)
	if err != nil {
		return nil, err
	}
	// Another hub on the same database may be making one at this moment:
	// the check and the insert run under one lock per organisation, so
	// the hubs of a cluster end with one new key between them.
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.Lock(ctx, "issuer key "+org); err != nil {
			return err
		}
		var fresh int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM issuer_keys WHERE org = ? AND not_after > ?`,
			org, now.Add(7*24*time.Hour).UTC().Format(time.RFC3339)).Scan(&fresh); err != nil {
			return err
		}
		if fresh > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO issuer_keys (key_id, org, private_key, public_key, created_at, not_after) VALUES (?, ?, ?, ?, ?, ?)`,
			p.KeyID, org, stored, p.PublicKey, now.Format(time.RFC3339Nano), p.NotAfter)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reports: store issuer key for %s: %w", org, err)
	}
	keys, err = s.loadOrgKeysLocked(ctx, org)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// orgKeys returns the organisation's keys, newest first, from the cache or
// the database.
func (s *Service) orgKeys(ctx context.Context, org string, reload bool) ([]*orgKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks, ok := s.keys[org]; ok && !reload {
		return ks, nil
	}
	return s.loadOrgKeysLocked(ctx, org)
}

func (s *Service) loadOrgKeysLocked(ctx context.Context, org string) ([]*orgKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key_id, private_key, not_after FROM issuer_keys WHERE org = ? ORDER BY not_after DESC, key_id`, org)
	if err != nil {
		return nil, fmt.Errorf("reports: load issuer keys of %s: %w", org, err)
	}
	defer rows.Close()
	var out []*orgKey
	for rows.Next() {
		var keyID, priv, notAfter string
		if err := rows.Scan(&keyID, &priv, &notAfter); err != nil {
			return nil, fmt.Errorf("reports: load issuer keys of %s: %w", org, err)
		}
		der, err := s.unseal(org, keyID, priv)
		if err != nil {
			return nil, err
		}
		k, err := parseKey(org, der, notAfter)
		if err != nil {
			return nil, err
		}
		if old, ok := s.byID[k.pub.ID]; ok {
			k = old // keep one object per key
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: load issuer keys of %s: %w", org, err)
	}
	s.keys[org] = out
	for _, k := range out {
		s.byID[k.pub.ID] = k
	}
	return out, nil
}

func parseKey(org string, der []byte, notAfter string) (*orgKey, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key of %s: %w", org, err)
	}
	sk, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("reports: issuer key of %s is not RSA", org)
	}
	iss, err := privacypass.NewIssuer(sk)
	if err != nil {
		return nil, err
	}
	na, err := time.Parse(time.RFC3339, notAfter)
	if err != nil {
		return nil, fmt.Errorf("reports: issuer key of %s: not_after: %w", org, err)
	}
	return &orgKey{org: org, pub: iss.PublicKey(), issuer: iss, notAfter: na}, nil
}

// verifyingKey finds the key a token names among the organisation's keys
// that have not been expired for more than a week (a token fetched just
// before a rotation is still good for a report sent a few days later).
func (s *Service) verifyingKey(ctx context.Context, org string, id [32]byte) (*orgKey, error) {
	find := func(keys []*orgKey) *orgKey {
		for _, k := range keys {
			if k.pub.ID == id && s.now().Before(k.notAfter.Add(7*24*time.Hour)) {
				return k
			}
		}
		return nil
	}
	keys, err := s.orgKeys(ctx, org, false)
	if err != nil {
		return nil, err
	}
	if k := find(keys); k != nil {
		return k, nil
	}
	// An unknown key id may be a key another process (an admin command, a
	// second hub) made since we looked, or a forgery: look again, but at
	// most once a second per organisation, so forged tokens cannot turn
	// into a query each.
	s.mu.Lock()
	_, known := s.byID[id]
	recent := time.Since(s.reloaded[org]) < time.Second
	if !known && !recent {
		s.reloaded[org] = time.Now()
	}
	s.mu.Unlock()
	if known || recent {
		return nil, nil
	}
	keys, err = s.orgKeys(ctx, org, true)
	if err != nil {
		return nil, err
	}
	return find(keys), nil
}

// secret returns n random bytes, base64url without padding.
func secret(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Errors the admin functions return.
var (
	ErrUnknownOrg  = errors.New("reports: unknown organisation")
	ErrUnknownCode = errors.New("reports: no such enrolment code")
	ErrNoCatalog   = errors.New("reports: the catalog is not ready")
	ErrBadLimits   = errors.New("reports: enrolment code limits")
)
