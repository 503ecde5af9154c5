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

// Code is an enrolment code as `enrol-code list` and the dashboard show it:
// never the code. Figures are counts only.
type Code struct {
	ID         string `json:"id"`
	Org        string `json:"org"`
	CreatedAt  string `json:"created_at"`
	RevokedAt  string `json:"revoked_at,omitempty"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	Uses       int64  `json:"uses"`        // devices enrolled with it
	MaxDevices int64  `json:"max_devices"` // at most this many
	PerHour    int64  `json:"per_hour"`    // enrolments an hour at most
	// Active counts its devices that are not revoked; Revoked those that are.
	Active  int64 `json:"active_devices"`
	Revoked int64 `json:"revoked_devices"`
	// TokensToday and Tokens30d count the tokens its devices were issued.
	TokensToday int64 `json:"tokens_today"`
	Tokens30d   int64 `json:"tokens_30d"`
	// Enrolled24h and Refused24h count enrolments made and refused (limit,
	// rate, expiry) in the last 24 hours: the figures behind Unusual.
	Enrolled24h int64 `json:"enrolled_24h"`
	Refused24h  int64 `json:"refused_24h"`
}

// Unusual says whether the code's last day looks like misuse: refused
// enrolments, or more enrolments than four hours at its rate.
func (c Code) Unusual() bool {
	return c.Refused24h > 0 || (c.PerHour > 0 && c.Enrolled24h > 4*c.PerHour)
}

// Limits bound what one code can issue. Each device gets the daily token
// quota, so a code's devices bound its tokens too.
type Limits struct {
	Devices int64     // devices it may enrol, 1 to MaxCodeDevices
	PerHour int64     // enrolments an hour, 1 to MaxCodeDevices
	Expires time.Time // no enrolment after this; zero: never
}

// Defaults for a code made without limits.
const (
	DefaultCodeDevices = 100
	DefaultCodePerHour = 30
	MaxCodeDevices     = 100000
)

// check refuses limits out of range.
func (l Limits) check(now time.Time) error {
	if l.Devices < 1 || l.Devices > MaxCodeDevices {
		return fmt.Errorf("%w: devices must be 1 to %d", ErrBadLimits, MaxCodeDevices)
	}
	if l.PerHour < 1 || l.PerHour > MaxCodeDevices {
		return fmt.Errorf("%w: enrolments an hour must be 1 to %d", ErrBadLimits, MaxCodeDevices)
	}
	if !l.Expires.IsZero() && !l.Expires.After(now) {
		return fmt.Errorf("%w: the expiry must be in the future", ErrBadLimits)
	}
	return nil
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

// CreateCode makes a new enrolment code for org with the default limits.
func (s *Service) CreateCode(ctx context.Context, org string) (code, id string, err error) {
	return s.CreateCodeWith(ctx, org, Limits{Devices: DefaultCodeDevices, PerHour: DefaultCodePerHour})
}

// CreateCodeWith makes a new enrolment code for org and returns it with its
// id. Only the code's hash is stored: the caller shows the code once. The
// organisation's issuer key is created now if it has none, so the first
// enrolment does not wait for RSA key generation.
func (s *Service) CreateCodeWith(ctx context.Context, org string, l Limits) (code, id string, err error) {
	if err := s.knownOrg(org); err != nil {
		return "", "", err
	}
	if err := l.check(s.now()); err != nil {
		return "", "", err
	}
	if _, err := s.EnsureIssuerKey(ctx, org); err != nil {
		return "", "", err
	}
	// 20 random bytes: unguessable, so /enrol needs no attempt counter.
	code = "dtr-" + secret(20)
	id = strings.ToLower(secret(6))
	_, err = s.db.ExecContext(ctx, `INSERT INTO enrol_codes (id, code_hash, org, created_at, max_devices, per_hour, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		id, hashHex(code), org, s.now().Format(time.RFC3339), l.Devices, l.PerHour, expiresText(l.Expires))
	if err != nil {
		return "", "", fmt.Errorf("reports: store enrolment code: %w", err)
	}
	return code, id, nil
}

func expiresText(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// SetLimits changes a code's limits. A lower device limit than it has
// already used stops further enrolments; it revokes no device.
func (s *Service) SetLimits(ctx context.Context, id string, l Limits) error {
	if err := l.check(s.now()); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE enrol_codes SET max_devices = ?, per_hour = ?, expires_at = ? WHERE id = ?`,
		l.Devices, l.PerHour, expiresText(l.Expires), id)
	if err != nil {
		return fmt.Errorf("reports: code limits: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrUnknownCode
	}
	return nil
}

// hourFormat names an hour in enrol_hours.
const hourFormat = "2006-01-02T15"

// ListCodes lists enrolment codes, of one organisation when org is set,
// with their devices and token use (counts only).
func (s *Service) ListCodes(ctx context.Context, org string) ([]Code, error) {
	return s.listCodes(ctx, "c.org = ?", org)
}

// GetCode returns one code by id.
func (s *Service) GetCode(ctx context.Context, id string) (Code, error) {
	codes, err := s.listCodes(ctx, "c.id = ?", id)
	if err != nil {
		return Code{}, err
	}
	if len(codes) == 0 {
		return Code{}, ErrUnknownCode
	}
	return codes[0], nil
}

func (s *Service) listCodes(ctx context.Context, where, arg string) ([]Code, error) {
	now := s.now()
	q := `SELECT c.id, c.org, c.created_at, COALESCE(c.revoked_at, ''), COALESCE(c.expires_at, ''), c.uses, c.max_devices, c.per_hour,
		(SELECT COUNT(*) FROM devices d WHERE d.code_id = c.id AND d.revoked_at IS NULL),
		(SELECT COUNT(*) FROM devices d WHERE d.code_id = c.id AND d.revoked_at IS NOT NULL),
		(SELECT COALESCE(SUM(t.n), 0) FROM token_issuance t JOIN devices d ON d.credential_hash = t.credential_hash WHERE d.code_id = c.id AND t.day = ?),
		(SELECT COALESCE(SUM(t.n), 0) FROM token_issuance t JOIN devices d ON d.credential_hash = t.credential_hash WHERE d.code_id = c.id AND t.day > ?),
		(SELECT COALESCE(SUM(h.enrolled), 0) FROM enrol_hours h WHERE h.code_id = c.id AND h.hour > ?),
		(SELECT COALESCE(SUM(h.refused), 0) FROM enrol_hours h WHERE h.code_id = c.id AND h.hour > ?)
		FROM enrol_codes c`
	dayAgo := now.Add(-24 * time.Hour).Format(hourFormat)
	args := []any{now.Format("2006-01-02"), now.AddDate(0, 0, -30).Format("2006-01-02"), dayAgo, dayAgo}
	if arg != "" {
		q += ` WHERE ` + where
		args = append(args, arg)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY c.created_at, c.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("reports: list enrolment codes: %w", err)
	}
	defer rows.Close()
	out := []Code{}
	for rows.Next() {
		var c Code
		if err := rows.Scan(&c.ID, &c.Org, &c.CreatedAt, &c.RevokedAt, &c.ExpiresAt, &c.Uses, &c.MaxDevices, &c.PerHour,
			&c.Active, &c.Revoked, &c.TokensToday, &c.Tokens30d, &c.Enrolled24h, &c.Refused24h); err != nil {
			return nil, fmt.Errorf("reports: list enrolment codes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reports: list enrolment codes: %w", err)
	}
	return out, nil
}

// RevokeCode revokes a code given either the code itself or its id, so it
// enrols no more devices. With devices set, every device it enrolled is
// revoked too: their token requests are refused from now on (tokens they
// already hold still pay for reports: a token names no device).
func (s *Service) RevokeCode(ctx context.Context, codeOrID string, devices bool) (Code, error) {
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
		now := s.now().Format(time.RFC3339)
		if c.RevokedAt == "" {
			c.RevokedAt = now
			if _, err := tx.ExecContext(ctx, `UPDATE enrol_codes SET revoked_at = ? WHERE id = ?`, c.RevokedAt, c.ID); err != nil {
				return fmt.Errorf("reports: revoke: %w", err)
			}
		}
		if devices {
			res, err := tx.ExecContext(ctx, `UPDATE devices SET revoked_at = ? WHERE code_id = ? AND revoked_at IS NULL`, now, c.ID)
			if err != nil {
				return fmt.Errorf("reports: revoke devices: %w", err)
			}
			c.Revoked, _ = res.RowsAffected()
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

// Enrolment refusals. The code is unguessable, so saying why a known code
// is refused tells an attacker nothing.
var (
	errBadCode     = errors.New("enrolment code unknown or revoked")
	errCodeExpired = errors.New("enrolment code expired: ask your IT team for a new one")
	errCodeFull    = errors.New("enrolment code has enrolled all the devices it may: ask your IT team for a new one")
	errCodeRate    = errors.New("enrolment code used too often this hour: try again later")
)

// Enrol exchanges a code for a new device credential, within the code's
// limits. A refusal of a known code is counted for its hour, so the
// dashboard can show unusual enrolment rates.
func (s *Service) Enrol(ctx context.Context, code string) (*Enrolment, error) {
	cred := "dvc-" + secret(32)
	now := s.now()
	hour := now.Format(hourFormat)
	var org, id string
	var refusal error
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		var revoked, expires string
		var uses, maxDevices, perHour int64
		err := tx.QueryRowContext(ctx, `SELECT id, org, COALESCE(revoked_at, ''), COALESCE(expires_at, ''), uses, max_devices, per_hour
			FROM enrol_codes WHERE code_hash = ?`, hashHex(code)).Scan(&id, &org, &revoked, &expires, &uses, &maxDevices, &perHour)
		if errors.Is(err, sql.ErrNoRows) {
			return errBadCode
		}
		if err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		if revoked != "" {
			return errBadCode
		}
		var thisHour int64
		err = tx.QueryRowContext(ctx, `SELECT enrolled FROM enrol_hours WHERE code_id = ? AND hour = ?`, id, hour).Scan(&thisHour)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		switch {
		case expires != "" && expires <= now.Format(time.RFC3339):
			refusal = errCodeExpired
		case uses >= maxDevices:
			refusal = errCodeFull
		case thisHour >= perHour:
			refusal = errCodeRate
		}
		if refusal != nil {
			// Counted, and the transaction commits; the refusal is
			// returned after it.
			_, err := tx.ExecContext(ctx, `INSERT INTO enrol_hours (code_id, hour, refused) VALUES (?, ?, 1)
				ON CONFLICT (code_id, hour) DO UPDATE SET refused = enrol_hours.refused + 1`, id, hour)
			if err != nil {
				return fmt.Errorf("reports: enrol: %w", err)
			}
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE enrol_codes SET uses = uses + 1 WHERE id = ?`, id); err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO enrol_hours (code_id, hour, enrolled) VALUES (?, ?, 1)
			ON CONFLICT (code_id, hour) DO UPDATE SET enrolled = enrol_hours.enrolled + 1`, id, hour); err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO devices (credential_hash, org, enrolled_on, code_id) VALUES (?, ?, ?, ?)`,
			hashHex(cred), org, now.Format("2006-01-02"), id)
		if err != nil {
			return fmt.Errorf("reports: enrol: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	k, err := s.EnsureIssuerKey(ctx, org)
	if err != nil {
		return nil, err
	}
	return &Enrolment{DeviceCredential: cred, Org: org, IssuerName: s.cfg.IssuerName, IssuerKeys: []PublishedKey{k}}, nil
}

// ReasonDeviceRevoked is the `reason` of a revoked device's refusal: the
// helper turns it into its own "enrol again" error.
const ReasonDeviceRevoked = "device-revoked"

// errDeviceRevoked refuses a revoked device's token requests.
var errDeviceRevoked = &RefusedError{Status: 403, Reason: "this device was revoked by its IT team: enrol it again with a new code"}

// deviceOrg finds the organisation of a device credential ("" when
// unknown), refusing a revoked device.
func (s *Service) deviceOrg(ctx context.Context, cred string) (string, error) {
	var org string
	var revoked sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT org, revoked_at FROM devices WHERE credential_hash = ?`, hashHex(cred)).Scan(&org, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reports: device: %w", err)
	}
	if revoked.Valid {
		return "", errDeviceRevoked
	}
	return org, nil
}

// TokensPerDay is the daily token quota of each device (the budget the
// dashboard's codes pages show: a code's devices times this bounds the
// reports it can pay for in a day).
func (s *Service) TokensPerDay() int { return s.cfg.TokensPerDay }
