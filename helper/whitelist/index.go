// Package whitelist is the agent's copy of the hub's signed whitelist: it
// fetches it (HTTP with ETag, WebSocket push, a jittered timer), verifies
// every envelope against the pinned keys, refuses rollbacks, keeps an atomic
// cache that is verified again at every start, and answers "which service is
// this host, and what should I use instead" (Suggest).
//
// The signed document's types and signature check live in shared/whitelist;
// this package only decides which verified copy to trust and keep.
package whitelist

import (
	wl "github.com/detour-project/detour/shared/whitelist"
)

// Index answers lookups on one document without scanning it: host → service,
// (org, service) → policy, service → number of approving organisations. It is
// built once per accepted version and never changed, so readers need no lock.
type Index struct {
	doc       *wl.Document
	byHost    map[string]*wl.Service
	byID      map[string]*wl.Service
	orgs      map[string]*wl.Organisation
	policy    map[[2]string]*wl.Policy // {org, service}
	approvals map[string]int
	byCat     map[string][]*wl.Service // in document order
	agreed    map[string]*wl.Agreement // by service
}

// NewIndex indexes doc, which must not change afterwards.
func NewIndex(doc *wl.Document) *Index {
	ix := &Index{
		doc:       doc,
		byHost:    map[string]*wl.Service{},
		byID:      map[string]*wl.Service{},
		orgs:      map[string]*wl.Organisation{},
		policy:    map[[2]string]*wl.Policy{},
		approvals: map[string]int{},
		byCat:     map[string][]*wl.Service{},
		agreed:    map[string]*wl.Agreement{},
	}
	for i := range doc.Services {
		s := &doc.Services[i]
		ix.byID[s.ID] = s
		ix.byCat[s.Category] = append(ix.byCat[s.Category], s)
		for _, h := range s.Hosts {
			ix.byHost[wl.NormaliseHost(h)] = s
		}
	}
	for i := range doc.Organisations {
		ix.orgs[doc.Organisations[i].ID] = &doc.Organisations[i]
	}
	for i := range doc.Policies {
		p := &doc.Policies[i]
		ix.policy[[2]string{p.Org, p.Service}] = p
		if p.Status == wl.Approved {
			ix.approvals[p.Service]++
		}
	}
	for i := range doc.Agreements {
		ix.agreed[doc.Agreements[i].Service] = &doc.Agreements[i]
	}
	return ix
}

// Document is the indexed document.
func (ix *Index) Document() *wl.Document { return ix.doc }

// ServiceForHost is shared/whitelist's Document.ServiceForHost (the same
// walk, wl.LookupHost) with a map per step instead of a scan.
func (ix *Index) ServiceForHost(host string) *wl.Service {
	var found *wl.Service
	wl.LookupHost(host, func(h string) bool {
		found = ix.byHost[h]
		return found != nil
	})
	return found
}

// Service finds a service by id.
func (ix *Index) Service(id string) *wl.Service { return ix.byID[id] }

// Organisation finds an organisation by id.
func (ix *Index) Organisation(id string) *wl.Organisation { return ix.orgs[id] }

// Policy is org's decision about service, or nil if it has none.
func (ix *Index) Policy(org, service string) *wl.Policy { return ix.policy[[2]string{org, service}] }

// Approvals is how many organisations approve service.
func (ix *Index) Approvals(service string) int { return ix.approvals[service] }
