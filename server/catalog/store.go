package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/whitelist"
)

// Migrations are the catalog's tables.
//
// catalog_state holds the version counter in one row: every change first
// increments it, which takes that row's lock (PostgreSQL) or the write lock
// (SQLite, BEGIN IMMEDIATE), so changes are serialised and each version is
// built from exactly the changes committed before it.
//
// The host is the primary key of service_hosts, so even a bug above cannot
// let two services claim one host. whitelist_versions.payload is TEXT, not
// JSONB, so the bytes come back as written.
var Migrations = []store.Step{
	{Version: 1, SQL: `
CREATE TABLE catalog_state (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
INSERT INTO catalog_state (id, version) VALUES (1, 0);
CREATE TABLE services (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	vendor TEXT NOT NULL,
	category TEXT NOT NULL,
	url TEXT NOT NULL,
	features TEXT NOT NULL
);
CREATE TABLE service_hosts (
	host TEXT PRIMARY KEY,
	service TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
	position INTEGER NOT NULL
);
CREATE INDEX service_hosts_service ON service_hosts (service);
CREATE TABLE organisations (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	sector TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE policies (
	org TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	service TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
	status TEXT NOT NULL,
	alternatives TEXT NOT NULL,
	note TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	updated_by TEXT NOT NULL,
	PRIMARY KEY (org, service)
);
CREATE TABLE whitelist_versions (
	version BIGINT PRIMARY KEY,
	issued_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	payload TEXT NOT NULL,
	created_by TEXT NOT NULL,
	reason TEXT NOT NULL
);`},
	{Version: 2,
		SQLite: `CREATE TABLE catalog_audit (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at BIGINT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail TEXT NOT NULL,
	version BIGINT NOT NULL
)`,
		Postgres: `CREATE TABLE catalog_audit (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at BIGINT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail TEXT NOT NULL,
	version BIGINT NOT NULL
)`},
	// 3: agreements (agreements.go). A proposal and each organisation's
	// answer; only endorsements reach the signed document.
	{Version: 3, SQL: `
CREATE TABLE agreements (
	service TEXT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
	proposed_by TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	note TEXT NOT NULL,
	proposed_at BIGINT NOT NULL,
	proposed_actor TEXT NOT NULL
);
CREATE TABLE agreement_answers (
	service TEXT NOT NULL REFERENCES agreements (service) ON DELETE CASCADE,
	org TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
	decision TEXT NOT NULL,
	reason TEXT NOT NULL,
	at BIGINT NOT NULL,
	actor TEXT NOT NULL,
	PRIMARY KEY (service, org)
);`},
}

// Defaults for Options.
const (
	DefaultTTL   = 7 * 24 * time.Hour
	DefaultRenew = 2 * 24 * time.Hour
)

// Options configure a Catalog.
type Options struct {
	// TTL is how long a version is valid: expires_at = issued_at + TTL.
	TTL time.Duration
	// Renew: a fresh version is issued when the latest expires within it.
	Renew time.Duration
	// Seed is imported (its categories and services only) into a catalog
	// that has no services, on first open.
	Seed *Bundle
	// Examples, when set, are imported (organisations and policies) into a
	// catalog that has no organisations: demos and `serve --examples`.
	Examples *Bundle
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
}

// Catalog is the SQL-backed catalog; it implements Service.
type Catalog struct {
	db   *store.DB
	opts Options

	doc atomic.Pointer[whitelist.Document]

	mu   sync.Mutex // serialises refresh and subscriber calls
	subs []func(*whitelist.Document)
}

var _ Service = (*Catalog)(nil)

// Open migrates the catalog's tables, seeds an empty catalog, makes sure a
// version exists and loads the latest.
func Open(ctx context.Context, db *store.DB, opts Options) (*Catalog, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Renew <= 0 {
		opts.Renew = DefaultRenew
	}
	if opts.Renew >= opts.TTL {
		opts.Renew = opts.TTL / 2
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := db.Migrate(ctx, "catalog", Migrations); err != nil {
		return nil, err
	}
	c := &Catalog{db: db, opts: opts}
	if err := c.seed(ctx); err != nil {
		return nil, err
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// seed imports the seed services into an empty catalog and the examples
// into a catalog without organisations, and issues a first version if none
// exists. Each check runs inside the change's transaction, after the
// version lock, so two processes opening an empty catalog at once seed it
// once.
func (c *Catalog) seed(ctx context.Context) error {
	var seedErr error
	_, err := c.change(ctx, "seed", "seed", "catalog", func(ctx context.Context, tx *store.Tx, st *state) (bool, error) {
		changed := false
		if c.opts.Seed != nil && len(st.services) == 0 {
			b := &Bundle{Categories: c.opts.Seed.Categories, Services: cloneServices(c.opts.Seed.Services)}
			if err := st.apply(b); err != nil {
				seedErr = fmt.Errorf("catalog: seed catalog: %w", err)
				return false, seedErr
			}
			changed = true
		}
		if c.opts.Examples != nil && len(st.orgs) == 0 {
			b := &Bundle{Organisations: c.opts.Examples.Organisations, Policies: clonePolicies(c.opts.Examples.Policies)}
			if err := st.apply(b); err != nil {
				seedErr = fmt.Errorf("catalog: example organisations: %w", err)
				return false, seedErr
			}
			changed = true
		}
		if !changed {
			// Nothing to seed; still issue a first version if there is none,
			// so Document is never nil.
			var n int64
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM whitelist_versions`).Scan(&n); err != nil {
				return false, err
			}
			return n == 0, nil
		}
		return true, nil
	})
	if seedErr != nil {
		return seedErr
	}
	return err
}

// Document is the latest published whitelist. It is shared: callers must
// not modify it.
func (c *Catalog) Document() *whitelist.Document { return c.doc.Load() }

// OnPublish calls f with every document published from now on, in version
// order, one call at a time. f must not block for long: it runs on the
// goroutine that noticed the version.
func (c *Catalog) OnPublish(f func(*whitelist.Document)) {
	c.mu.Lock()
	c.subs = append(c.subs, f)
	c.mu.Unlock()
}

// SetPolicy records an organisation's decision about a service and issues a
// new version.
func (c *Catalog) SetPolicy(ctx context.Context, p whitelist.Policy, actor string) (int64, error) {
	p.Alternatives = append([]string(nil), p.Alternatives...)
	return c.change(ctx, actor, "policy set", p.Org+"/"+p.Service, func(ctx context.Context, tx *store.Tx, st *state) (bool, error) {
		return true, st.apply(&Bundle{Policies: []whitelist.Policy{p}})
	})
}

// AddOrganisation adds a new organisation and issues a new version. Adding
// an id that exists is an error (change it with an import instead).
func (c *Catalog) AddOrganisation(ctx context.Context, o whitelist.Organisation, actor string) (int64, error) {
	return c.change(ctx, actor, "org add", o.ID, func(ctx context.Context, tx *store.Tx, st *state) (bool, error) {
		if _, ok := st.orgs[o.ID]; ok {
			return false, invalid("organisation %q already exists", o.ID)
		}
		return true, st.apply(&Bundle{Organisations: []whitelist.Organisation{o}})
	})
}

// Import merges b into the catalog: services, organisations and policies
// with a known id replace the stored ones, others are added. The merged
// catalog is validated as a whole before anything is written, so a bad file
// changes nothing.
func (c *Catalog) Import(ctx context.Context, b *Bundle, actor string) (int64, error) {
	cp := &Bundle{
		Categories:    b.Categories,
		Services:      cloneServices(b.Services),
		Organisations: append([]whitelist.Organisation(nil), b.Organisations...),
		Policies:      clonePolicies(b.Policies),
	}
	subject := fmt.Sprintf("%d services, %d organisations, %d policies", len(b.Services), len(b.Organisations), len(b.Policies))
	return c.change(ctx, actor, "import", subject, func(ctx context.Context, tx *store.Tx, st *state) (bool, error) {
		return true, st.apply(cp)
	})
}

// Export returns the catalog as stored now (not necessarily as last
// published), in the import format.
func (c *Catalog) Export(ctx context.Context) (*Bundle, error) {
	st, err := loadState(ctx, c.db)
	if err != nil {
		return nil, err
	}
	d := st.document()
	return &Bundle{Categories: d.Categories, Services: d.Services, Organisations: d.Organisations, Policies: d.Policies}, nil
}

// Reissue issues a fresh version with the same content when the latest
// expires within the renewal window; it returns 0 when none was due.
// Several hubs may call it at once: the check runs under the version lock.
func (c *Catalog) Reissue(ctx context.Context, actor string) (int64, error) {
	return c.change(ctx, actor, "reissue", "expiry", func(ctx context.Context, tx *store.Tx, st *state) (bool, error) {
		var exp sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(expires_at) FROM whitelist_versions`).Scan(&exp); err != nil {
			return false, err
		}
		return !exp.Valid || time.Unix(exp.Int64, 0).Sub(c.opts.Now()) < c.opts.Renew, nil
	})
}

// Refresh publishes the newest stored version if it is newer than the one
// held: it picks up changes made by other processes (admin commands, other
// hubs sharing a PostgreSQL database).
func (c *Catalog) Refresh(ctx context.Context) error {
	var latest sql.NullInt64
	if err := c.db.QueryRowContext(ctx, `SELECT MAX(version) FROM whitelist_versions`).Scan(&latest); err != nil {
		return fmt.Errorf("catalog: latest version: %w", err)
	}
	if !latest.Valid {
		return errors.New("catalog: no whitelist version stored")
	}
	if cur := c.doc.Load(); cur != nil && cur.Version >= latest.Int64 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.doc.Load(); cur != nil && cur.Version >= latest.Int64 {
		return nil // another caller published it while we waited
	}
	doc, err := c.version(ctx, latest.Int64)
	if err != nil {
		return err
	}
	c.doc.Store(doc)
	for _, f := range c.subs {
		f(doc)
	}
	return nil
}

// version loads one stored version.
func (c *Catalog) version(ctx context.Context, v int64) (*whitelist.Document, error) {
	var payload string
	err := c.db.QueryRowContext(ctx, `SELECT payload FROM whitelist_versions WHERE version = ?`, v).Scan(&payload)
	if err != nil {
		return nil, fmt.Errorf("catalog: load version %d: %w", v, err)
	}
	var doc whitelist.Document
	if err := json.Unmarshal([]byte(payload), &doc); err != nil {
		return nil, fmt.Errorf("catalog: version %d: stored payload: %w", v, err)
	}
	return &doc, nil
}

// NotifyChannel is where a new version is announced (PostgreSQL NOTIFY,
// payload "VERSION UNIXNANO": the version and when it was made, so hubs
// can measure how long it took to reach them) when its transaction commits.
const NotifyChannel = "detour_whitelist_version"

// Run polls for versions written elsewhere every interval and issues a
// fresh version before the latest expires, until ctx ends. Errors are
// logged and retried: a database that is briefly busy must not stop
// publishing.
func (c *Catalog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.Poll(ctx)
	}
}

// Poll does one round of Run's work: publish a version written elsewhere,
// and reissue one that is about to expire.
func (c *Catalog) Poll(ctx context.Context) {
	if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
		c.opts.Log.Warn("catalog: refresh", "err", err)
	}
	if d := c.Document(); d != nil && d.ExpiresAt.Sub(c.opts.Now()) < c.opts.Renew {
		if _, err := c.Reissue(ctx, "hub"); err != nil && ctx.Err() == nil {
			c.opts.Log.Warn("catalog: reissue", "err", err)
		}
	}
}

// change runs one catalog change in a transaction: take the version lock,
// load the state, let f change it (f returns whether a version is due),
// validate the whole document, write the changed rows, the new version and
// an audit row. It returns the new version, or 0 when f made none.
func (c *Catalog) change(ctx context.Context, actor, action, subject string, f func(context.Context, *store.Tx, *state) (bool, error)) (int64, error) {
	if actor == "" {
		actor = "unknown"
	}
	var v int64
	err := c.db.InTx(ctx, func(tx *store.Tx) error {
		// The lock is taken without moving the counter, so a change that
		// issues no version (an agreement proposed or declined, which the
		// signed document does not carry) leaves no gap.
		var cur int64
		if err := tx.QueryRowContext(ctx, `UPDATE catalog_state SET version = version WHERE id = 1 RETURNING version`).Scan(&cur); err != nil {
			return fmt.Errorf("catalog: version lock: %w", err)
		}
		st, err := loadState(ctx, tx)
		if err != nil {
			return err
		}
		due, err := f(ctx, tx, st)
		if err != nil {
			return err
		}
		now := c.opts.Now().UTC().Truncate(time.Second)
		if !due {
			if len(st.dirtyAgreements) == 0 {
				return errNothing
			}
			if err := st.write(ctx, tx, now, actor); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_audit (at, actor, action, subject, detail, version) VALUES (?, ?, ?, ?, ?, ?)`,
				now.Unix(), actor, action, subject, st.describe(), cur); err != nil {
				return fmt.Errorf("catalog: audit: %w", err)
			}
			return nil
		}
		next := cur + 1
		if _, err := tx.ExecContext(ctx, `UPDATE catalog_state SET version = ? WHERE id = 1`, next); err != nil {
			return fmt.Errorf("catalog: version %d: %w", next, err)
		}
		doc := st.document()
		doc.Version = next
		doc.IssuedAt = now
		doc.ExpiresAt = now.Add(c.opts.TTL)
		if err := doc.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := st.write(ctx, tx, now, actor); err != nil {
			return err
		}
		payload, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("catalog: encode version: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO whitelist_versions (version, issued_at, expires_at, payload, created_by, reason) VALUES (?, ?, ?, ?, ?, ?)`,
			next, now.Unix(), doc.ExpiresAt.Unix(), string(payload), actor, action); err != nil {
			return fmt.Errorf("catalog: store version %d: %w", next, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalog_audit (at, actor, action, subject, detail, version) VALUES (?, ?, ?, ?, ?, ?)`,
			now.Unix(), actor, action, subject, st.describe(), next); err != nil {
			return fmt.Errorf("catalog: audit: %w", err)
		}
		// Every hub on the database hears of the version at commit.
		if err := tx.Notify(ctx, NotifyChannel, strconv.FormatInt(next, 10)+" "+strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
			return err
		}
		v = next
		return nil
	})
	if errors.Is(err, errNothing) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// Publish in this process at once; other processes see it on their
	// next poll. The change is committed whatever happens here, so a
	// failure is logged, not returned (Run's poll publishes it later).
	if err := c.Refresh(ctx); err != nil {
		c.opts.Log.Warn("catalog: publish after change", "version", v, "err", err)
	}
	return v, nil
}

// errNothing rolls back a change that turned out not to be needed (the
// counter increment included).
var errNothing = errors.New("catalog: nothing to change")

// state is the catalog loaded into memory for one change, with the rows the
// change touched.
type state struct {
	services map[string]whitelist.Service
	orgs     map[string]whitelist.Organisation
	orgAt    map[string]int64
	policies map[[2]string]whitelist.Policy

	dirtyServices map[string]bool
	dirtyOrgs     map[string]bool
	dirtyPolicies map[[2]string]bool

	removedServices map[string]bool          // by a pruning import (prune.go)
	agreements      map[string]*agreementRow // by service (agreements.go)
	dirtyAgreements map[string]bool
	detail          string // set by a change that describes itself
}

func loadState(ctx context.Context, q store.Querier) (*state, error) {
	st := &state{
		services: map[string]whitelist.Service{}, orgs: map[string]whitelist.Organisation{},
		orgAt: map[string]int64{}, policies: map[[2]string]whitelist.Policy{},
		dirtyServices: map[string]bool{}, dirtyOrgs: map[string]bool{}, dirtyPolicies: map[[2]string]bool{},
		agreements: map[string]*agreementRow{}, dirtyAgreements: map[string]bool{},
	}
	rows, err := q.QueryContext(ctx, `SELECT id, name, vendor, category, url, features FROM services`)
	if err != nil {
		return nil, fmt.Errorf("catalog: load services: %w", err)
	}
	for rows.Next() {
		var s whitelist.Service
		var features string
		if err := rows.Scan(&s.ID, &s.Name, &s.Vendor, &s.Category, &s.URL, &features); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: load services: %w", err)
		}
		if err := json.Unmarshal([]byte(features), &s.Features); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: service %s features: %w", s.ID, err)
		}
		s.Hosts = []string{}
		st.services[s.ID] = s
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("catalog: load services: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT host, service FROM service_hosts ORDER BY service, position`)
	if err != nil {
		return nil, fmt.Errorf("catalog: load hosts: %w", err)
	}
	for rows.Next() {
		var host, id string
		if err := rows.Scan(&host, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: load hosts: %w", err)
		}
		s := st.services[id]
		s.Hosts = append(s.Hosts, host)
		st.services[id] = s
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("catalog: load hosts: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT id, name, sector, created_at FROM organisations`)
	if err != nil {
		return nil, fmt.Errorf("catalog: load organisations: %w", err)
	}
	for rows.Next() {
		var o whitelist.Organisation
		var at int64
		if err := rows.Scan(&o.ID, &o.Name, &o.Sector, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: load organisations: %w", err)
		}
		st.orgs[o.ID] = o
		st.orgAt[o.ID] = at
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("catalog: load organisations: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT org, service, status, alternatives, note FROM policies`)
	if err != nil {
		return nil, fmt.Errorf("catalog: load policies: %w", err)
	}
	for rows.Next() {
		var p whitelist.Policy
		var alts string
		if err := rows.Scan(&p.Org, &p.Service, &p.Status, &alts, &p.Note); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: load policies: %w", err)
		}
		if err := json.Unmarshal([]byte(alts), &p.Alternatives); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog: policy %s/%s alternatives: %w", p.Org, p.Service, err)
		}
		st.policies[[2]string{p.Org, p.Service}] = p
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("catalog: load policies: %w", err)
	}
	if err := st.loadAgreements(ctx, q); err != nil {
		return nil, err
	}
	return st, nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// apply checks b and merges it into the state. Hosts are checked against
// every service as it will be after the merge (a host may move from one
// service to another in the same import).
func (st *state) apply(b *Bundle) error {
	for _, c := range b.Categories {
		if !knownCategory(c) {
			return invalid("unknown category %q", c)
		}
	}
	seen := map[string]bool{}
	for i := range b.Services {
		s := &b.Services[i]
		if err := checkService(s); err != nil {
			return err
		}
		if seen[s.ID] {
			return invalid("service %q appears twice", s.ID)
		}
		seen[s.ID] = true
		st.services[s.ID] = *s
		st.dirtyServices[s.ID] = true
	}
	owner := map[string]string{}
	for _, s := range st.services {
		for _, h := range s.Hosts {
			if other, ok := owner[h]; ok {
				a, b := sortedPair(other, s.ID)
				return invalid("host %q is claimed by both %q and %q", h, a, b)
			}
			owner[h] = s.ID
		}
	}
	seen = map[string]bool{}
	for i := range b.Organisations {
		o := b.Organisations[i]
		if err := checkOrganisation(&o); err != nil {
			return err
		}
		if seen[o.ID] {
			return invalid("organisation %q appears twice", o.ID)
		}
		seen[o.ID] = true
		st.orgs[o.ID] = o
		st.dirtyOrgs[o.ID] = true
	}
	svc := map[string]bool{}
	for id := range st.services {
		svc[id] = true
	}
	orgs := map[string]bool{}
	for id := range st.orgs {
		orgs[id] = true
	}
	pseen := map[[2]string]bool{}
	for i := range b.Policies {
		p := b.Policies[i]
		if err := checkPolicy(&p, svc, orgs); err != nil {
			return err
		}
		k := [2]string{p.Org, p.Service}
		if pseen[k] {
			return invalid("policy %s/%s appears twice", p.Org, p.Service)
		}
		pseen[k] = true
		st.policies[k] = p
		st.dirtyPolicies[k] = true
	}
	return nil
}

func sortedPair(a, b string) (string, string) {
	if a > b {
		return b, a
	}
	return a, b
}

// document builds the whitelist from the state in a stable order (ids
// sorted), so equal catalogs give equal payloads.
func (st *state) document() *whitelist.Document {
	d := &whitelist.Document{
		Schema:        whitelist.Schema,
		Categories:    append([]string(nil), whitelist.Categories...),
		Services:      make([]whitelist.Service, 0, len(st.services)),
		Organisations: make([]whitelist.Organisation, 0, len(st.orgs)),
		Policies:      make([]whitelist.Policy, 0, len(st.policies)),
	}
	for _, s := range st.services {
		d.Services = append(d.Services, s)
	}
	sort.Slice(d.Services, func(i, j int) bool { return d.Services[i].ID < d.Services[j].ID })
	for _, o := range st.orgs {
		d.Organisations = append(d.Organisations, o)
	}
	sort.Slice(d.Organisations, func(i, j int) bool { return d.Organisations[i].ID < d.Organisations[j].ID })
	for _, p := range st.policies {
		d.Policies = append(d.Policies, p)
	}
	sort.Slice(d.Policies, func(i, j int) bool {
		if d.Policies[i].Org != d.Policies[j].Org {
			return d.Policies[i].Org < d.Policies[j].Org
		}
		return d.Policies[i].Service < d.Policies[j].Service
	})
	d.Agreements = st.signedAgreements()
	return d
}

// write stores the rows apply touched. Hosts of every changed service are
// deleted before any is inserted, so a host moving between two services in
// one import never meets itself in the primary key.
func (st *state) write(ctx context.Context, tx *store.Tx, now time.Time, actor string) error {
	if err := st.writeRemovals(ctx, tx); err != nil {
		return err
	}
	for _, id := range sortedKeys(st.dirtyServices) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM service_hosts WHERE service = ?`, id); err != nil {
			return fmt.Errorf("catalog: service %s: %w", id, err)
		}
	}
	for _, id := range sortedKeys(st.dirtyServices) {
		s := st.services[id]
		features, _ := json.Marshal(s.Features)
		if _, err := tx.ExecContext(ctx, `INSERT INTO services (id, name, vendor, category, url, features) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, vendor = excluded.vendor, category = excluded.category, url = excluded.url, features = excluded.features`,
			s.ID, s.Name, s.Vendor, s.Category, s.URL, string(features)); err != nil {
			return fmt.Errorf("catalog: service %s: %w", id, err)
		}
		for i, h := range s.Hosts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO service_hosts (host, service, position) VALUES (?, ?, ?)`, h, id, i); err != nil {
				return fmt.Errorf("catalog: service %s host %s: %w", id, h, err)
			}
		}
	}
	for _, id := range sortedKeys(st.dirtyOrgs) {
		o := st.orgs[id]
		if _, err := tx.ExecContext(ctx, `INSERT INTO organisations (id, name, sector, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, sector = excluded.sector`,
			o.ID, o.Name, o.Sector, now.Unix()); err != nil {
			return fmt.Errorf("catalog: organisation %s: %w", id, err)
		}
	}
	keys := make([][2]string, 0, len(st.dirtyPolicies))
	for k := range st.dirtyPolicies {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	for _, k := range keys {
		p := st.policies[k]
		alts, _ := json.Marshal(p.Alternatives)
		if _, err := tx.ExecContext(ctx, `INSERT INTO policies (org, service, status, alternatives, note, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, service) DO UPDATE SET status = excluded.status, alternatives = excluded.alternatives, note = excluded.note, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			p.Org, p.Service, p.Status, string(alts), p.Note, now.Unix(), actor); err != nil {
			return fmt.Errorf("catalog: policy %s/%s: %w", p.Org, p.Service, err)
		}
	}
	return st.writeAgreements(ctx, tx)
}

// describe summarises a change for the audit trail; for a single policy it
// records the decision itself.
func (st *state) describe() string {
	if st.detail != "" {
		return st.detail
	}
	if len(st.dirtyPolicies) == 1 && len(st.dirtyServices) == 0 && len(st.dirtyOrgs) == 0 {
		for k := range st.dirtyPolicies {
			b, _ := json.Marshal(st.policies[k])
			return string(b)
		}
	}
	b, _ := json.Marshal(map[string]int{"services": len(st.dirtyServices), "organisations": len(st.dirtyOrgs), "policies": len(st.dirtyPolicies)})
	return string(b)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func cloneServices(in []whitelist.Service) []whitelist.Service {
	out := make([]whitelist.Service, len(in))
	for i, s := range in {
		s.Hosts = append([]string(nil), s.Hosts...)
		s.Features = append([]string(nil), s.Features...)
		out[i] = s
	}
	return out
}

func clonePolicies(in []whitelist.Policy) []whitelist.Policy {
	out := make([]whitelist.Policy, len(in))
	for i, p := range in {
		p.Alternatives = append([]string(nil), p.Alternatives...)
		out[i] = p
	}
	return out
}
