package reports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/detour-project/detour/server/store"
)

// Code is an enrolment code as `enrol-code list` shows it: never the code.
type Code struct {
	ID        string `json:"id"`
	Org       string `json:"org"`
	CreatedAt string `json:"created_at"`
	RevokedAt string `json:"revoked_at,omitempty"`
	Uses      int64  `json:"uses"`
}

// knownOrg checks org against the catalog.
func (s *Service) knownOrg(org string) error {
	doc := s.cfg.Document()
	if doc == nil {
		return ErrNoCatalog
	}
	for _, o := range doc.Organisations {
		if o.ID == org {
			return nil
		}
	}
	return fmt.Errorf("%w %q", ErrUnknownOrg, org)
}

// CreateCode makes a new enrolment code for org and returns it with its id.
// Only the code's hash is stored: the caller shows the code once. The
// organisation's issuer key is created now if it has none, so the first
// enrolment does not wait for RSA key generation.
func (s *Service) CreateCode(ctx context.Context, org string) (code, id string, err error) {
	if err := s.knownOrg(org); err != nil {
		return "", "", err
	}
	if _, err := s.EnsureIssuerKey(ctx, org); err != nil {
		return "", "", err
	}
	// 20 random bytes: unguessable, so /enrol needs no attempt counter.
	code = "dtr-" + secret(20)
	id = strings.ToLower(secret(6))
	_, err = s.db.ExecContext(ctx, `INSERT INTO enrol_codes (id, code_hash, org, created_at) VALUES (?, ?, ?, ?)`,
		id, hashHex(code), org, s.now().Format(time.RFC3339))
	if err != nil {
		return "", "", fmt.Errorf("reports: store enrolment code: %w", err)
	}
	return code, id, nil
}

// ListCodes lists enrolment codes, of one organisation when org is set.
func (s *Service) ListCodes(ctx context.Context, org string) ([]Code, error) {
	q := `SELECT id, org, created_at, COALESCE(revoked_at, ''), uses FROM enrol_codes`
	var args []any
	if org != "" {
		q += ` WHERE org = ?`
		args = append(args, org)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reports: list enrolment codes: %w", err)
	}
	defer rows.Close()
	out := []Code{}
	for rows.Next() {
		var c Code
		if err := rows.Scan(&c.ID, &c.Org, &c.CreatedAt, &c.RevokedAt, &c.Uses); err != nil {
			return nil, fmt.Errorf("reports: list enrolment codes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: list enrolment codes: %w", err)
	}
	return out, nil
}

// RevokeCode revokes a code given either the code itself or its id. Devices
// already enrolled with it keep their credentials.
func (s *Service) RevokeCode(ctx context.Context, codeOrID string) (Code, error) {
	var c Code
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id, org, created_at, COALESCE(revoked_at, ''), uses FROM enrol_codes WHERE id = ? OR code_hash = ?`,
			strings.ToLower(codeOrID), hashHex(codeOrID)).Scan(&c.ID, &c.Org, &c.CreatedAt, &c.RevokedAt, &c.Uses)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnknownCode
		}
		if err != nil {
			return fmt.Errorf("reports: revoke: %w", err)
		}
		if c.RevokedAt != "" {
			return nil
		}
		c.RevokedAt = s.now().Format(time.RFC3339)
		_, err = tx.ExecContext(ctx, `UPDATE enrol_codes SET revoked_at = ? WHERE id = ?`, c.RevokedAt, c.ID)
		if err != nil {
			return fmt.Errorf("reports: revoke: %w", err)
		}
		return nil
	})
	return c, err
}

// Enrolment is what a device receives for a good code.
type Enrolment struct {
	DeviceCredential string         `json:"device_credential"`
	Org              string         `json:"org"`
	IssuerName       string         `json:"issuer_name"`
	IssuerKeys       []PublishedKey `json:"issuer_keys"`
}

// errBadCode is /enrol's refusal: the same for unknown and revoked codes.
var errBadCode = errors.New("reports: enrolment code unknown or revoked")

// Enrol exchanges a code for a new device credential.
func (s *Service) Enrol(ctx context.Context, code string) (*Enrolment, error) {
	cred := "dvc-" + secret(32)
	var org string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id, org FROM enrol_codes WHERE code_hash = ? AND revoked_at IS NULL`, hashHex(code)).Scan(&id, &org)
		if errors.Is(err, sql.ErrNoRows) {
			return errBadCode
		}
		if err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE enrol_codes SET uses = uses + 1 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO devices (credential_hash, org, enrolled_on) VALUES (?, ?, ?)`,
			hashHex(cred), org, s.now().Format("2006-01-02"))
		if err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	k, err := s.EnsureIssuerKey(ctx, org)
	if err != nil {
		return nil, err
	}
	return &Enrolment{DeviceCredential: cred, Org: org, IssuerName: s.cfg.IssuerName, IssuerKeys: []PublishedKey{k}}, nil
}

// deviceOrg finds the organisation of a device credential.
func (s *Service) deviceOrg(ctx context.Context, cred string) (string, error) {
	var org string
	err := s.db.QueryRowContext(ctx, `SELECT org FROM devices WHERE credential_hash = ?`, hashHex(cred)).Scan(&org)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reports: device: %w", err)
	}
	return org, nil
}
