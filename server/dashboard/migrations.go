package dashboard

import "github.com/detour-project/detour/server/store"

// Migrations are the dashboard's tables. Times are RFC 3339 UTC text so the
// same SQL runs on SQLite and PostgreSQL. Secrets (passwords, session ids,
// API tokens) are stored only as hashes.
var Migrations = []store.Step{{
	Version: 1,
	SQL: `CREATE TABLE dash_users (
		email        TEXT PRIMARY KEY,
		role         TEXT NOT NULL,
		org          TEXT NOT NULL DEFAULT '',
		pw_hash      TEXT NOT NULL,
		must_change  INTEGER NOT NULL DEFAULT 1,
		created_at   TEXT NOT NULL
	);
	CREATE TABLE dash_sessions (
		id_hash    TEXT PRIMARY KEY,
		email      TEXT NOT NULL,
		csrf       TEXT NOT NULL,
		created_at TEXT NOT NULL,
		expires_at TEXT NOT NULL
	);
	CREATE INDEX dash_sessions_email ON dash_sessions (email);
	CREATE TABLE dash_api_tokens (
		token_hash TEXT PRIMARY KEY,
		email      TEXT NOT NULL,
		label      TEXT NOT NULL,
		created_at TEXT NOT NULL
	);
	CREATE TABLE dash_review_items (
		org         TEXT NOT NULL,
		service     TEXT NOT NULL,
		status      TEXT NOT NULL,
		alternative TEXT NOT NULL DEFAULT '',
		updated_at  TEXT NOT NULL,
		updated_by  TEXT NOT NULL,
		PRIMARY KEY (org, service)
	);
	CREATE TABLE dash_review_comments (
		id         TEXT PRIMARY KEY,
		org        TEXT NOT NULL,
		service    TEXT NOT NULL,
		author     TEXT NOT NULL,
		body       TEXT NOT NULL,
		created_at TEXT NOT NULL
	);
	CREATE INDEX dash_review_comments_item ON dash_review_comments (org, service, created_at);
	CREATE TABLE dash_contacts (
		id         TEXT PRIMARY KEY,
		org        TEXT NOT NULL,
		name       TEXT NOT NULL,
		role       TEXT NOT NULL,
		email      TEXT NOT NULL,
		phone      TEXT NOT NULL,
		updated_at TEXT NOT NULL
	);
	CREATE TABLE dash_audit_log (
		id      TEXT PRIMARY KEY,
		at      TEXT NOT NULL,
		actor   TEXT NOT NULL,
		org     TEXT NOT NULL,
		action  TEXT NOT NULL,
		subject TEXT NOT NULL,
		detail  TEXT NOT NULL
	);
	CREATE INDEX dash_audit_log_at ON dash_audit_log (at);`,
}, {
	// People (invitations, last sign-in) and API tokens scoped to a role
	// and an organisation, revocable (people.go, tokens.go).
	Version: 2,
	SQL: `ALTER TABLE dash_users ADD COLUMN last_sign_in TEXT NOT NULL DEFAULT '';
	CREATE TABLE dash_invitations (
		id          TEXT PRIMARY KEY,
		token_hash  TEXT NOT NULL UNIQUE,
		kind        TEXT NOT NULL,
		email       TEXT NOT NULL,
		role        TEXT NOT NULL,
		org         TEXT NOT NULL DEFAULT '',
		data        TEXT NOT NULL DEFAULT '',
		created_by  TEXT NOT NULL,
		created_at  TEXT NOT NULL,
		expires_at  TEXT NOT NULL,
		accepted_at TEXT NOT NULL DEFAULT '',
		revoked_at  TEXT NOT NULL DEFAULT ''
	);
	ALTER TABLE dash_api_tokens ADD COLUMN id TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_api_tokens ADD COLUMN org TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_api_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_api_tokens ADD COLUMN revoked_at TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_api_tokens ADD COLUMN last_used TEXT NOT NULL DEFAULT '';`,
}, {
	// Single sign-on (sso.go): the identity an account is linked to and the
	// one-time states of sign-ins under way. A second factor for local
	// accounts (totp.go): the TOTP secret and hashed recovery codes.
	Version: 3,
	SQL: `ALTER TABLE dash_users ADD COLUMN sso_subject TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_users ADD COLUMN totp_step INTEGER NOT NULL DEFAULT 0;
	CREATE TABLE dash_sso_states (
		state_hash TEXT PRIMARY KEY,
		provider   TEXT NOT NULL,
		verifier   TEXT NOT NULL,
		nonce      TEXT NOT NULL,
		created_at TEXT NOT NULL,
		expires_at TEXT NOT NULL
	);
	CREATE TABLE dash_recovery_codes (
		email     TEXT NOT NULL,
		code_hash TEXT NOT NULL,
		used_at   TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (email, code_hash)
	);`,
}, {
	// Sign-ins between the password and the second factor (totp.go).
	Version: 4,
	SQL: `CREATE TABLE dash_second_factor (
		id_hash    TEXT PRIMARY KEY,
		email      TEXT NOT NULL,
		expires_at TEXT NOT NULL
	);`,
}, {
	// An invitation accepted through single sign-on (sso.go): the sign-in
	// under way carries the invitation, and the account remembers that its
	// role came from an invitation rather than from the provider's groups.
	Version: 5,
	SQL: `ALTER TABLE dash_sso_states ADD COLUMN invitation TEXT NOT NULL DEFAULT '';
	ALTER TABLE dash_users ADD COLUMN invited INTEGER NOT NULL DEFAULT 0;`,
}}
