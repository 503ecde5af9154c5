package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/whitelist"
)

// Answers an organisation gives to a proposed agreement.
const (
	Endorsed = "endorsed"
	Declined = "declined"
)

// MaxAgreementText bounds a proposal's note and a decline's reason, in bytes.
const MaxAgreementText = 2000

// Agreement is one proposal as the hub keeps it, answers included: what the
// dashboard and `agreement list` show filtering owners. The signed document
// carries only whitelist.Agreement (service, category, endorsers, since).
type Agreement struct {
	Service       string    `json:"service"`
	Category      string    `json:"category"`
	ProposedBy    string    `json:"proposed_by"`
	Note          string    `json:"note"`
	ProposedAt    time.Time `json:"proposed_at"`
	ProposedActor string    `json:"proposed_actor"`
	Answers       []Answer  `json:"answers"`
	// EndorsedBy is what the signed document says: the organisations that
	// endorsed it and still approve the service.
	EndorsedBy []string `json:"endorsed_by"`
}

// Answer is one organisation's endorsement or decline.
type Answer struct {
	Org      string    `json:"org"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
}

type agreementRow struct {
	service, proposedBy, note, actor string
	proposedAt                       int64
	answers                          map[string]Answer
}

func (st *state) loadAgreements(ctx context.Context, q store.Querier) error {
	rows, err := q.QueryContext(ctx, `SELECT service, proposed_by, note, proposed_at, proposed_actor FROM agreements`)
	if err != nil {
		return fmt.Errorf("catalog: load agreements: %w", err)
	}
	for rows.Next() {
		a := &agreementRow{answers: map[string]Answer{}}
		if err := rows.Scan(&a.service, &a.proposedBy, &a.note, &a.proposedAt, &a.actor); err != nil {
			rows.Close()
			return fmt.Errorf("catalog: load agreements: %w", err)
		}
		st.agreements[a.service] = a
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("catalog: load agreements: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT service, org, decision, reason, at, actor FROM agreement_answers`)
	if err != nil {
		return fmt.Errorf("catalog: load agreement answers: %w", err)
	}
	for rows.Next() {
		var service string
		var an Answer
		var at int64
		if err := rows.Scan(&service, &an.Org, &an.Decision, &an.Reason, &at, &an.Actor); err != nil {
			rows.Close()
			return fmt.Errorf("catalog: load agreement answers: %w", err)
		}
		an.At = time.Unix(at, 0).UTC()
		if a := st.agreements[service]; a != nil {
			a.answers[an.Org] = an
		}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("catalog: load agreement answers: %w", err)
	}
	return nil
}

// writeAgreements stores the agreements a change touched, answers replaced
// as a whole.
func (st *state) writeAgreements(ctx context.Context, tx *store.Tx) error {
	for _, svc := range sortedKeys(st.dirtyAgreements) {
		a := st.agreements[svc]
		if _, err := tx.ExecContext(ctx, `INSERT INTO agreements (service, proposed_by, note, proposed_at, proposed_actor) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (service) DO UPDATE SET note = excluded.note`, a.service, a.proposedBy, a.note, a.proposedAt, a.actor); err != nil {
			return fmt.Errorf("catalog: agreement %s: %w", svc, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM agreement_answers WHERE service = ?`, svc); err != nil {
			return fmt.Errorf("catalog: agreement %s: %w", svc, err)
		}
		for _, org := range sortedAnswerOrgs(a) {
			an := a.answers[org]
			if _, err := tx.ExecContext(ctx, `INSERT INTO agreement_answers (service, org, decision, reason, at, actor) VALUES (?, ?, ?, ?, ?, ?)`,
				svc, org, an.Decision, an.Reason, an.At.Unix(), an.Actor); err != nil {
				return fmt.Errorf("catalog: agreement %s answer %s: %w", svc, org, err)
			}
		}
	}
	return nil
}

func sortedAnswerOrgs(a *agreementRow) []string {
	out := make([]string, 0, len(a.answers))
	for o := range a.answers {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// endorsers are the organisations whose endorsement counts: they endorsed
// and their policy for the service is still approved (an organisation that
// later blocks the service has, in effect, withdrawn).
func (st *state) endorsers(a *agreementRow) (orgs []string, since time.Time) {
	for _, org := range sortedAnswerOrgs(a) {
		an := a.answers[org]
		if an.Decision != Endorsed {
			continue
		}
		if p, ok := st.policies[[2]string{org, a.service}]; !ok || p.Status != whitelist.Approved {
			continue
		}
		orgs = append(orgs, org)
		if since.IsZero() || an.At.Before(since) {
			since = an.At
		}
	}
	return orgs, since
}

// signedAgreements is what the document carries: agreements with at least
// one endorsement, by service id; never a decline, a reason or a note.
func (st *state) signedAgreements() []whitelist.Agreement {
	var out []whitelist.Agreement
	for _, svc := range sortedAgreementKeys(st.agreements) {
		a := st.agreements[svc]
		s, ok := st.services[svc]
		if !ok {
			continue
		}
		by, since := st.endorsers(a)
		if len(by) == 0 {
			continue
		}
		out = append(out, whitelist.Agreement{Service: svc, Category: s.Category, EndorsedBy: by, Since: since})
	}
	return out
}

func sortedAgreementKeys(m map[string]*agreementRow) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// agreementChange runs f on the state and issues a version only if the
// signed document changed; a proposal or a decline that changes nothing
// signed is still stored and audited.
func (c *Catalog) agreementChange(ctx context.Context, actor, action, subject string, f func(*state) (detail any, err error)) (int64, error) {
	return c.change(ctx, actor, action, subject, func(ctx context.Context, tx *store.Tx, st *state) (bool, error) {
		before, _ := json.Marshal(st.document())
		detail, err := f(st)
		if err != nil {
			return false, err
		}
		b, _ := json.Marshal(detail)
		st.detail = string(b)
		after, _ := json.Marshal(st.document())
		return !bytes.Equal(before, after), nil
	})
}

// Propose opens an agreement for service, proposed by a filtering owner of
// organisation by. One agreement per service: proposing one that exists is
// an error. It issues no version (nothing signed changes until an
// organisation endorses it).
func (c *Catalog) Propose(ctx context.Context, service, by, note, actor string) (int64, error) {
	if err := checkText("agreement note", note, MaxAgreementText, false, true); err != nil {
		return 0, err
	}
	return c.agreementChange(ctx, actor, "agreement propose", service, func(st *state) (any, error) {
		if _, ok := st.services[service]; !ok {
			return nil, invalid("agreement: unknown service %q", service)
		}
		if _, ok := st.orgs[by]; !ok {
			return nil, invalid("agreement: unknown organisation %q", by)
		}
		if _, ok := st.agreements[service]; ok {
			return nil, invalid("agreement for %q already proposed", service)
		}
		st.agreements[service] = &agreementRow{service: service, proposedBy: by, note: note, actor: orEmpty(actor),
			proposedAt: c.opts.Now().Unix(), answers: map[string]Answer{}}
		st.dirtyAgreements[service] = true
		return map[string]string{"service": service, "by": by, "note": note}, nil
	})
}

// Endorse records org's endorsement of the agreement for service and, in the
// same change, sets org's policy for it to approved (keeping its note and
// alternatives): an organisation cannot agree a tool it blocks.
func (c *Catalog) Endorse(ctx context.Context, org, service, actor string) (int64, error) {
	return c.agreementChange(ctx, actor, "agreement endorse", org+"/"+service, func(st *state) (any, error) {
		a, err := st.answerable(org, service)
		if err != nil {
			return nil, err
		}
		a.answers[org] = Answer{Org: org, Decision: Endorsed, At: c.opts.Now().UTC().Truncate(time.Second), Actor: orEmpty(actor)}
		st.dirtyAgreements[service] = true
		p, ok := st.policies[[2]string{org, service}]
		before := whitelist.Unknown
		if ok {
			before = p.Status
		} else {
			p = whitelist.Policy{Org: org, Service: service, Alternatives: []string{}}
		}
		p.Status = whitelist.Approved
		if err := st.apply(&Bundle{Policies: []whitelist.Policy{p}}); err != nil {
			return nil, err
		}
		return map[string]string{"org": org, "service": service, "decision": Endorsed, "policy_before": before, "policy": whitelist.Approved}, nil
	})
}

// Decline records org's decline with its reason. The reason stays on the
// hub. A decline after an endorsement withdraws it (a new version then); the
// organisation's policy is left as it is.
func (c *Catalog) Decline(ctx context.Context, org, service, reason, actor string) (int64, error) {
	if err := checkText("decline reason", reason, MaxAgreementText, true, true); err != nil {
		return 0, err
	}
	return c.agreementChange(ctx, actor, "agreement decline", org+"/"+service, func(st *state) (any, error) {
		a, err := st.answerable(org, service)
		if err != nil {
			return nil, err
		}
		a.answers[org] = Answer{Org: org, Decision: Declined, Reason: reason, At: c.opts.Now().UTC().Truncate(time.Second), Actor: orEmpty(actor)}
		st.dirtyAgreements[service] = true
		return map[string]string{"org": org, "service": service, "decision": Declined, "reason": reason}, nil
	})
}

func (st *state) answerable(org, service string) (*agreementRow, error) {
	if _, ok := st.orgs[org]; !ok {
		return nil, invalid("agreement: unknown organisation %q", org)
	}
	a, ok := st.agreements[service]
	if !ok {
		return nil, invalid("no agreement for %q has been proposed (agreement propose %s --by ORG)", service, service)
	}
	return a, nil
}

func orEmpty(actor string) string {
	if actor == "" {
		return "unknown"
	}
	return actor
}

// Agreements lists every proposal as stored now, with all answers, by
// service id: for filtering owners only (the dashboard's role rule, the
// admin command).
func (c *Catalog) Agreements(ctx context.Context) ([]Agreement, error) {
	st, err := loadState(ctx, c.db)
	if err != nil {
		return nil, err
	}
	out := []Agreement{}
	for _, svc := range sortedAgreementKeys(st.agreements) {
		a := st.agreements[svc]
		by, _ := st.endorsers(a)
		if by == nil {
			by = []string{}
		}
		ag := Agreement{Service: svc, Category: st.services[svc].Category, ProposedBy: a.proposedBy, Note: a.note,
			ProposedAt: time.Unix(a.proposedAt, 0).UTC(), ProposedActor: a.actor, Answers: []Answer{}, EndorsedBy: by}
		for _, org := range sortedAnswerOrgs(a) {
			ag.Answers = append(ag.Answers, a.answers[org])
		}
		out = append(out, ag)
	}
	return out, nil
}
