package whitelist

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// Reason codes, stable for the extension and scripts; the text beside each
// is for people.
const (
	ReasonOrgAlternative = "org-alternative" // the organisation names it as the alternative
	ReasonApprovedHere   = "approved-here"   // the organisation approves it
	ReasonApprovedByN    = "approved-by-n"   // n organisations approve it
	ReasonSharedFeatures = "shared-features" // features it has in common with the blocked service
	ReasonAgreedByN      = "agreed-by-n"     // n organisations endorse its cross-organisation agreement
)

// MaxAlternatives caps the list: a prompt offers a few good choices, not the
// whole category.
const MaxAlternatives = 5

// Suggest answers the `suggest` message for host at org ("" for none). The
// order follows DESIGN.md: services of the same category agreed for working
// across organisations that the organisation endorses, by how many
// organisations endorse them; then the organisation's own alternatives for the
// service, in its order; then services of the same category that the
// organisation approves, by how many organisations approve them (the tool
// most likely to work with the people you collaborate with), then by shared
// features. Without an organisation (or one the document does not know),
// the same category is ranked by approvals across organisations alone.
// stale is copied into the result so that the caller can warn. note is the
// organisation's note on its policy for the service, "" without one.
func (ix *Index) Suggest(host, org string, stale bool) protocol.SuggestResult {
	res := protocol.SuggestResult{
		Host:         wl.NormaliseHost(host),
		Status:       wl.Unknown,
		Alternatives: []protocol.Alternative{},
		Stale:        stale,
	}
	if org != "" {
		o := org
		res.Org = &o
	}
	s := ix.ServiceForHost(host)
	if s == nil {
		return res
	}
	id := s.ID
	res.Service = &id
	res.Approvals = ix.Approvals(s.ID)

	orgRec := ix.Organisation(org)
	var own *wl.Policy
	if orgRec != nil {
		own = ix.Policy(org, s.ID)
		if own != nil {
			res.Status = own.Status
			res.Note = CleanNote(own.Note)
		}
	}

	type cand struct {
		svc     *wl.Service
		reasons []protocol.Reason
		shared  []string
	}
	var out []cand
	seen := map[string]bool{s.ID: true}
	describe := func(a *wl.Service, first []protocol.Reason) cand {
		c := cand{svc: a, reasons: first, shared: sharedFeatures(s, a)}
		if orgRec != nil {
			if p := ix.Policy(org, a.ID); p != nil && p.Status == wl.Approved {
				c.reasons = append(c.reasons, protocol.Reason{Code: ReasonApprovedHere,
					Text: fmt.Sprintf("%s approves %s.", orgRec.Name, a.Name)})
			}
		}
		if n := ix.AgreedBy(a.ID); n > 0 {
			c.reasons = append(c.reasons, protocol.Reason{Code: ReasonAgreedByN,
				Text: fmt.Sprintf("Agreed by %s for working across organisations.", plural(n, "organisation", "organisations"))})
		}
		if n := ix.Approvals(a.ID); n > 0 {
			c.reasons = append(c.reasons, protocol.Reason{Code: ReasonApprovedByN,
				Text: fmt.Sprintf("Approved by %s.", plural(n, "organisation", "organisations"))})
		}
		if len(c.shared) > 0 {
			c.reasons = append(c.reasons, protocol.Reason{Code: ReasonSharedFeatures,
				Text: fmt.Sprintf("Has %s in common with %s: %s.",
					plural(len(c.shared), "feature", "features"), s.Name, strings.Join(c.shared, ", "))})
		}
		return c
	}

	// 0. Agreed services the organisation endorses: the tool it has agreed
	// with others for exactly this situation.
	if orgRec != nil {
		var agreed []*wl.Service
		for _, a := range ix.byCat[s.Category] {
			if a.ID != s.ID && ix.Endorses(org, a.ID) {
				agreed = append(agreed, a)
			}
		}
		sort.SliceStable(agreed, func(i, j int) bool {
			if ix.AgreedBy(agreed[i].ID) != ix.AgreedBy(agreed[j].ID) {
				return ix.AgreedBy(agreed[i].ID) > ix.AgreedBy(agreed[j].ID)
			}
			return agreed[i].ID < agreed[j].ID
		})
		for _, a := range agreed {
			seen[a.ID] = true
			out = append(out, describe(a, nil))
		}
	}

	// 1. The organisation's own alternatives, in its order.
	if own != nil {
		for _, aid := range own.Alternatives {
			a := ix.Service(aid)
			if a == nil || seen[aid] {
				continue
			}
			seen[aid] = true
			out = append(out, describe(a, []protocol.Reason{{Code: ReasonOrgAlternative,
				Text: fmt.Sprintf("%s recommends it instead of %s.", orgRec.Name, s.Name)}}))
		}
	}

	// 2. The same category: approved here (with an organisation), or approved
	// anywhere (without one), ranked by approvals, then shared features.
	var rest []cand
	for _, a := range ix.byCat[s.Category] {
		if seen[a.ID] {
			continue
		}
		if orgRec != nil {
			if p := ix.Policy(org, a.ID); p == nil || p.Status != wl.Approved {
				continue
			}
		} else if ix.Approvals(a.ID) == 0 {
			continue
		}
		rest = append(rest, describe(a, nil))
	}
	sort.SliceStable(rest, func(i, j int) bool {
		ai, aj := ix.Approvals(rest[i].svc.ID), ix.Approvals(rest[j].svc.ID)
		if ai != aj {
			return ai > aj
		}
		if len(rest[i].shared) != len(rest[j].shared) {
			return len(rest[i].shared) > len(rest[j].shared)
		}
		return rest[i].svc.ID < rest[j].svc.ID
	})
	out = append(out, rest...)

	if len(out) > MaxAlternatives {
		out = out[:MaxAlternatives]
	}
	for i, c := range out {
		res.Alternatives = append(res.Alternatives, protocol.Alternative{Service: c.svc.ID, Rank: i + 1, Reasons: c.reasons})
	}
	return res
}

// MaxNote bounds a policy note in a suggest result, in bytes: the hub's own
// limit for notes (so a note it accepted is never cut), and no more
// characters than the protocol schema's maxLength for `note`.
const MaxNote = 2000

// CleanNote makes a policy note safe to pass on and to print: valid UTF-8;
// no control characters (C0, DEL, C1) but newline and tab, so a terminal
// escape or a stray carriage return is dropped; no surrounding space; at most
// MaxNote bytes, cut at a character boundary. The hub refuses worse notes already; this
// holds for any signed document. Markup is left as it is: it is text, and
// whoever shows it shows it as text.
func CleanNote(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > MaxNote {
		cut := MaxNote
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = strings.TrimSpace(s[:cut])
	}
	return s
}

// sharedFeatures lists b's features that a also has, in a's order.
func sharedFeatures(a, b *wl.Service) []string {
	has := make(map[string]bool, len(b.Features))
	for _, f := range b.Features {
		has[f] = true
	}
	var out []string
	for _, f := range a.Features {
		if has[f] {
			out = append(out, f)
		}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
