package aggregates

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Privacy is the k-anonymity rule every count passes through before it
// leaves this package: a count below K is never shown (it becomes "fewer
// than K"), and with Round the counts that are shown are rounded to the
// nearest 5, as in the ONS "10-5" rule, so that two overlapping tables
// cannot be subtracted exactly.
//
// Secondary suppression (the rule for derived totals): whenever a table
// shows parts beside the total they add up to (methods, vendors and needs of
// a service beside its total; the days of a trend beside the period's total;
// an organisation's services beside its total), the suppressed parts must
// together hold zero or at least K reports, so that "total minus the visible
// parts" never reveals a small number. Group enforces it by also hiding the
// smallest visible parts until that holds. Lists are suppressed whole
// before they are cut to a top N, and every table of a page is built from
// the same raw figures, so a figure shows the same way wherever it appears.
type Privacy struct {
	K     int  // threshold; 5 when zero
	Round bool // round shown counts to the nearest 5
}

func (p Privacy) k() int64 {
	if p.K <= 0 {
		return 5
	}
	return int64(p.K)
}

// Count is one figure as it may be shown: a value, or Suppressed when the
// true value is between 1 and K-1 (or hidden by secondary suppression).
type Count struct {
	Value      *int64 // nil when Suppressed
	Suppressed bool
	k          int64
}

// Count applies primary suppression and rounding to one raw count.
func (p Privacy) Count(n int64) Count {
	k := p.k()
	if n > 0 && n < k {
		return Count{Suppressed: true, k: k}
	}
	if p.Round && n > 0 {
		n = (n + 2) / 5 * 5
		if n < k { // rounding must never show a value below the threshold
			n = k
		}
	}
	return Count{Value: &n, k: k}
}

func (p Privacy) hidden() Count { return Count{Suppressed: true, k: p.k()} }

// K is the threshold the count was suppressed under.
func (c Count) K() int64 { return c.k }

// Int is the shown value (0 when suppressed), for charts.
func (c Count) Int() int64 {
	if c.Value == nil {
		return 0
	}
	return *c.Value
}

// String renders the count in English: a number or "fewer than K".
func (c Count) String() string {
	if c.Suppressed {
		return fmt.Sprintf("fewer than %d", c.k)
	}
	return strconv.FormatInt(c.Int(), 10)
}

// MarshalJSON gives {"value": 12, "suppressed": false, "display": "12"} or
// {"value": null, "suppressed": true, "display": "fewer than 5"}.
func (c Count) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Value      *int64 `json:"value"`
		Suppressed bool   `json:"suppressed"`
		Display    string `json:"display"`
	}{c.Value, c.Suppressed, c.String()})
}

// Group suppresses parts shown beside their total (see Privacy). parts and
// the result are in the same order.
func (p Privacy) Group(parts []int64, total int64) ([]Count, Count) {
	out := make([]Count, len(parts))
	tot := p.Count(total)
	hidden := make([]bool, len(parts))
	var s int64
	for i, n := range parts {
		out[i] = p.Count(n)
		if out[i].Suppressed || tot.Suppressed {
			hidden[i] = n > 0
			s += n
		}
	}
	if !tot.Suppressed {
		s = p.secondary(parts, hidden, s)
	}
	for i := range parts {
		if hidden[i] {
			out[i] = p.hidden()
		}
	}
	return out, tot
}

// secondary hides the smallest visible non-zero parts while the hidden ones
// add up to between 1 and K-1.
func (p Privacy) secondary(parts []int64, hidden []bool, s int64) int64 {
	k := p.k()
	if s == 0 || s >= k {
		return s
	}
	idx := make([]int, 0, len(parts))
	for i, n := range parts {
		if !hidden[i] && n > 0 {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return parts[idx[a]] < parts[idx[b]] })
	for _, i := range idx {
		if s >= k {
			break
		}
		hidden[i] = true
		s += parts[i]
	}
	return s
}

// groupNested is Group for a part list that must also respect a subset's
// total shown elsewhere on the page (the week's total inside a month's
// daily trend): sub marks the parts of that subset.
func (p Privacy) groupNested(parts []int64, total int64, sub []bool, subTotal int64) ([]Count, Count, Count) {
	hidden := make([]bool, len(parts))
	tot, subTot := p.Count(total), p.Count(subTotal)
	// The subset first: its hidden parts against its own total.
	var ss int64
	subParts := make([]int64, len(parts))
	for i, n := range parts {
		if sub[i] {
			subParts[i] = n
			if p.Count(n).Suppressed || subTot.Suppressed {
				hidden[i] = n > 0
				ss += n
			}
		}
	}
	if !subTot.Suppressed {
		p.secondary(subParts, hidden, ss)
	}
	// Then the whole list against the whole total.
	var s int64
	for i, n := range parts {
		if p.Count(n).Suppressed || tot.Suppressed {
			hidden[i] = hidden[i] || n > 0
		}
		if hidden[i] {
			s += n
		}
	}
	if !tot.Suppressed {
		p.secondary(parts, hidden, s)
	}
	out := make([]Count, len(parts))
	for i, n := range parts {
		if hidden[i] {
			out[i] = p.hidden()
		} else {
			out[i] = p.Count(n)
		}
	}
	return out, tot, subTot
}
