package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/detour-project/detour/server/store"
)

// Preview says what an import would change, without changing anything.
type Preview struct {
	Added    []string `json:"added"`    // services new to the catalog
	Changed  []string `json:"changed"`  // services replaced by the file's version (even if equal)
	Removed  []string `json:"removed"`  // services only a pruning import removes
	Policies int      `json:"policies"` // policies removed with them
}

// PreviewImport applies b (and, with prune, removes the services b does
// not list) to a copy of the catalog and checks the result as a whole,
// exactly as Import or ImportPrune would, but writes nothing.
func (c *Catalog) PreviewImport(ctx context.Context, b *Bundle, prune bool) (Preview, error) {
	st, err := loadState(ctx, c.db)
	if err != nil {
		return Preview{}, err
	}
	p, err := st.preview(b, prune)
	if err != nil {
		return Preview{}, err
	}
	// The checks a published version gets (change makes them for real).
	doc := st.document()
	doc.Version, doc.IssuedAt = 1, c.opts.Now().UTC().Truncate(time.Second)
	doc.ExpiresAt = doc.IssuedAt.Add(c.opts.TTL)
	if err := doc.Validate(); err != nil {
		return Preview{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return p, nil
}

func (st *state) preview(b *Bundle, prune bool) (Preview, error) {
	var p Preview
	for _, s := range b.Services {
		if _, ok := st.services[s.ID]; ok {
			p.Changed = append(p.Changed, s.ID)
		} else {
			p.Added = append(p.Added, s.ID)
		}
	}
	cp := &Bundle{Categories: b.Categories, Services: cloneServices(b.Services),
		Organisations: append(b.Organisations[:0:0], b.Organisations...), Policies: clonePolicies(b.Policies)}
	if err := st.apply(cp); err != nil {
		return Preview{}, err
	}
	if prune {
		removed, pols, err := st.prune(cp)
		if err != nil {
			return Preview{}, err
		}
		p.Removed, p.Policies = removed, pols
	}
	sort.Strings(p.Added)
	sort.Strings(p.Changed)
	return p, nil
}

// ImportPrune is Import, and then removes every service the file does not
// list, with its policies, its agreement and its place in other policies'
// alternatives, in the same signed version. A file listing no service is
// refused: it would empty the catalog.
func (c *Catalog) ImportPrune(ctx context.Context, b *Bundle, actor string) (int64, Preview, error) {
	var p Preview
	subject := fmt.Sprintf("%d services (others removed)", len(b.Services))
	v, err := c.change(ctx, actor, "import --prune", subject, func(ctx context.Context, _ *store.Tx, st *state) (bool, error) {
		var err error
		if p, err = st.preview(b, true); err != nil {
			return false, err
		}
		d, _ := json.Marshal(map[string]any{"added": p.Added, "changed": len(p.Changed), "removed": p.Removed, "policies_removed": p.Policies})
		st.detail = string(d)
		return true, nil
	})
	return v, p, err
}

// prune removes from the state every service b does not list.
func (st *state) prune(b *Bundle) (removed []string, policies int, err error) {
	if len(b.Services) == 0 {
		return nil, 0, invalid("a pruning import must list the services to keep: this file lists none")
	}
	keep := map[string]bool{}
	for _, s := range b.Services {
		keep[s.ID] = true
	}
	for id := range st.services {
		if !keep[id] {
			removed = append(removed, id)
		}
	}
	sort.Strings(removed)
	if st.removedServices == nil {
		st.removedServices = map[string]bool{}
	}
	for _, id := range removed {
		delete(st.services, id)
		delete(st.dirtyServices, id)
		delete(st.agreements, id)
		delete(st.dirtyAgreements, id)
		st.removedServices[id] = true
	}
	for k, pol := range st.policies {
		if st.removedServices[k[1]] {
			delete(st.policies, k)
			delete(st.dirtyPolicies, k)
			policies++
			continue
		}
		alts := slices.DeleteFunc(slices.Clone(pol.Alternatives), func(a string) bool { return st.removedServices[a] })
		if len(alts) != len(pol.Alternatives) {
			pol.Alternatives = alts
			st.policies[k] = pol
			st.dirtyPolicies[k] = true
		}
	}
	return removed, policies, nil
}

// writeRemovals deletes the rows of the services a pruning import removed.
func (st *state) writeRemovals(ctx context.Context, tx *store.Tx) error {
	for _, id := range sortedKeys(st.removedServices) {
		for _, q := range []string{
			`DELETE FROM agreement_answers WHERE service = ?`, `DELETE FROM agreements WHERE service = ?`,
			`DELETE FROM policies WHERE service = ?`, `DELETE FROM service_hosts WHERE service = ?`, `DELETE FROM services WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("catalog: remove service %s: %w", id, err)
			}
		}
	}
	return nil
}
