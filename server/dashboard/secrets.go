package dashboard

import (
	"context"
	"errors"
	"fmt"

	"github.com/detour-project/detour/server/masterkey"
)

// Second-factor secrets are sealed at rest: a copy of the database (a
// backup, a replica, a dump sent for support) must not be enough to make
// an account's codes. They are sealed with the hub's master key in a
// cluster, or with a key made from the single hub's DATA/reports-seal.key,
// and bound to the account's email so a sealed value cannot be copied to
// another row.
const totpPurpose = "dashboard second factor"

// errNoSecretKeys is returned when a sealed secret is read by a dashboard
// given no keys (only tests make one).
var errNoSecretKeys = errors.New("dashboard: a second-factor secret is sealed, and this dashboard has no key to open it")

// sealSecret seals a base32 TOTP secret for email's row. Without keys (a
// dashboard made by a test with none) it is stored as it is.
func (d *Dashboard) sealSecret(email, secret string) (string, error) {
	if len(d.opt.SecretKeys) == 0 {
		return secret, nil
	}
	s, err := d.opt.SecretKeys[0].Seal(totpPurpose, email, []byte(secret))
	if err != nil {
		return "", fmt.Errorf("dashboard: seal second factor: %w", err)
	}
	return s, nil
}

// openSecret reads a stored secret: sealed by any of the keys (a single
// hub's seal-file key stays readable after `admin key move-to-db`), or
// plain, as a hub before sealing stored it.
func (d *Dashboard) openSecret(email, stored string) (string, error) {
	if !masterkey.IsSealed(stored) {
		return stored, nil
	}
	if len(d.opt.SecretKeys) == 0 {
		return "", errNoSecretKeys
	}
	var first error
	for _, k := range d.opt.SecretKeys {
		pt, err := k.Unseal(totpPurpose, email, stored)
		if err == nil {
			return string(pt), nil
		}
		if first == nil {
			first = err
		}
	}
	return "", fmt.Errorf("dashboard: second factor of %s: %w", email, first)
}

// resealSecrets seals every secret stored plain (before sealing) or under
// a key other than the first, once at start, so what a database copy holds
// is sealed with the hub's current key. A secret no key opens is left as
// it is and logged: its account can still sign in with a recovery code.
func (d *Dashboard) resealSecrets(ctx context.Context) error {
	if len(d.opt.SecretKeys) == 0 {
		return nil
	}
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT email, totp_secret FROM dash_users WHERE totp_secret <> ''`)
	if err != nil {
		return fmt.Errorf("dashboard: reseal second factors: %w", err)
	}
	type row struct{ email, stored string }
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.email, &r.stored); err != nil {
			rows.Close()
			return fmt.Errorf("dashboard: reseal second factors: %w", err)
		}
		if _, err := d.opt.SecretKeys[0].Unseal(totpPurpose, r.email, r.stored); err != nil {
			todo = append(todo, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dashboard: reseal second factors: %w", err)
	}
	for _, r := range todo {
		secret, err := d.openSecret(r.email, r.stored)
		if err != nil {
			d.opt.Log.Warn("a second-factor secret opens with none of this hub's keys; the account can use a recovery code", "error", err)
			continue
		}
		sealed, err := d.sealSecret(r.email, secret)
		if err != nil {
			return err
		}
		// Only if unchanged: another hub may be doing the same.
		if _, err := d.opt.DB.ExecContext(ctx, `UPDATE dash_users SET totp_secret = ? WHERE email = ? AND totp_secret = ?`, sealed, r.email, r.stored); err != nil {
			return fmt.Errorf("dashboard: reseal second factor: %w", err)
		}
	}
	return nil
}
