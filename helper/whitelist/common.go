package whitelist

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// CommonOrder is the order categories are answered in: the five needs the
// seeds hear most (video meetings, shared documents, wikis, file storage,
// lightweight project boards), then the catalog's others.
var CommonOrder = []string{"video", "documents", "wiki", "files", "projects", "chat", "whiteboard", "forms"}

// ErrUnknownOrg is returned by Common for an organisation the whitelist does
// not list; callers test it with errors.Is.
var ErrUnknownOrg = errors.New("not an organisation in the whitelist")

// ErrUnknownCategory is returned by Common for a category outside
// CommonOrder.
var ErrUnknownCategory = errors.New("not a catalog category")

// Common answers "which tool works for all of us?" for orgs, from this
// document alone (nothing is asked of anyone): per category, the services
// every organisation approves (confirmed), then those that none blocks
// (unconfirmed); within each group by how many of orgs approve it (all of
// them, for the confirmed), then how many in the whole whitelist approve it,
// then how many organisations endorse its agreement. category "" means
// every category; no orgs at all answers only the list of organisations.
// An organisation the document does not know is an error
// rather than a silent gap, since a misspelt partner would make every
// service look unconfirmed.
func (ix *Index) Common(orgs []string, category string, stale bool) (protocol.CommonResult, error) {
	res := protocol.CommonResult{Orgs: []protocol.CommonOrg{}, Organisations: ix.orgList(), Categories: []protocol.CommonCategory{}, Stale: stale}
	if ix.doc.Version > 0 {
		v := ix.doc.Version
		res.Version = &v
	}
	if len(orgs) == 0 {
		return res, nil
	}
	seen := map[string]bool{}
	var unknown []string
	for _, id := range orgs {
		if seen[id] {
			return res, fmt.Errorf("common: organisation %q named twice", id)
		}
		seen[id] = true
		o := ix.Organisation(id)
		if o == nil {
			unknown = append(unknown, id)
			continue
		}
		res.Orgs = append(res.Orgs, protocol.CommonOrg{ID: o.ID, Name: o.Name})
	}
	if len(unknown) > 0 {
		return res, fmt.Errorf("common: %s: %w (known: %s)", strings.Join(unknown, ", "), ErrUnknownOrg, strings.Join(ix.orgIDs(), ", "))
	}
	cats := CommonOrder
	if category != "" {
		if !slices.Contains(CommonOrder, category) {
			return res, fmt.Errorf("common: category %q: %w (one of %s)", category, ErrUnknownCategory, strings.Join(CommonOrder, ", "))
		}
		cats = []string{category}
	}
	for _, cat := range cats {
		cc := protocol.CommonCategory{Category: cat, Services: []protocol.CommonService{}}
		type cand struct {
			protocol.CommonService
			here int // how many of orgs approve it
		}
		var list []cand
		for _, s := range ix.byCat[cat] {
			c := cand{CommonService: protocol.CommonService{
				Service: s.ID, Approvals: ix.Approvals(s.ID), AgreedBy: ix.AgreedBy(s.ID),
				Policies: make([]protocol.OrgStatus, 0, len(orgs)),
			}}
			blocked := false
			for _, o := range orgs {
				st := wl.Unknown
				if p := ix.Policy(o, s.ID); p != nil {
					st = p.Status
				}
				switch st {
				case wl.Approved:
					c.here++
				case wl.Blocked:
					blocked = true
				}
				c.Policies = append(c.Policies, protocol.OrgStatus{Org: o, Status: st})
			}
			if blocked {
				continue
			}
			c.Status = protocol.CommonUnconfirmed
			if c.here == len(orgs) {
				c.Status = protocol.CommonConfirmed
			}
			list = append(list, c)
		}
		sort.SliceStable(list, func(i, j int) bool {
			a, b := list[i], list[j]
			if (a.Status == protocol.CommonConfirmed) != (b.Status == protocol.CommonConfirmed) {
				return a.Status == protocol.CommonConfirmed
			}
			if a.here != b.here {
				return a.here > b.here
			}
			if a.Approvals != b.Approvals {
				return a.Approvals > b.Approvals
			}
			if a.AgreedBy != b.AgreedBy {
				return a.AgreedBy > b.AgreedBy
			}
			return a.Service < b.Service
		})
		for _, c := range list {
			cc.Services = append(cc.Services, c.CommonService)
		}
		res.Categories = append(res.Categories, cc)
	}
	return res, nil
}

// AgreedBy is how many organisations endorse the cross-organisation
// agreement for service (0 without one).
func (ix *Index) AgreedBy(service string) int {
	if a := ix.agreed[service]; a != nil {
		return len(a.EndorsedBy)
	}
	return 0
}

// Endorses says whether org endorses the agreement for service.
func (ix *Index) Endorses(org, service string) bool {
	a := ix.agreed[service]
	return a != nil && slices.Contains(a.EndorsedBy, org)
}

// orgList is every organisation, by name (then id), for a picker.
func (ix *Index) orgList() []protocol.CommonOrg {
	out := make([]protocol.CommonOrg, 0, len(ix.doc.Organisations))
	for _, o := range ix.doc.Organisations {
		out = append(out, protocol.CommonOrg{ID: o.ID, Name: o.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (ix *Index) orgIDs() []string {
	ids := make([]string, 0, len(ix.doc.Organisations))
	for _, o := range ix.doc.Organisations {
		ids = append(ids, o.ID)
	}
	return ids
}

// Common answers the common message from the current verified copy, or from
// the seed catalog (which knows no organisation) when there is none.
func (c *Client) Common(orgs []string, category string) (protocol.CommonResult, error) {
	if cp := c.Copy(); cp != nil {
		return cp.Index.Common(orgs, category, c.Stale())
	}
	return SeedIndex().Common(orgs, category, true)
}
