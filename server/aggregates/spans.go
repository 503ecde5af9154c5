package aggregates

import (
	"fmt"
	"strings"
	"time"

	"github.com/detour-project/detour/server/store"
)

// Span rollup: report_pair_spans holds each organisation's count of each
// service over aligned runs of 2, 4, 8, 16 and 32 days (a run of width w
// starts on a day whose number since 1970-01-01 is a multiple of w), beside
// report_pairs, which holds single days. Any window is the union of at most
// a couple of runs of each width, so the organisation × service table of a
// 30-day window sums about 5 runs of ~2,400 rows instead of 30 days of
// ~2,100: the review queue, the organisations list and the organisation
// and review pages read a fifth of the rows, whatever the window.
const spansTable = "report_pair_spans"

// spanWidths are the run lengths kept, in days; a window's single days come
// from report_pairs.
var spanWidths = []int{2, 4, 8, 16, 32}

// span is one run: width days from start (YYYY-MM-DD).
type span struct {
	width int
	start string
}

var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// dayNumber is a YYYY-MM-DD day's number since 1970-01-01.
func dayNumber(day string) (int, error) {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return 0, fmt.Errorf("aggregates: day %q: %w", day, err)
	}
	return int(t.Sub(epoch) / (24 * time.Hour)), nil
}

func dayName(n int) string { return epoch.AddDate(0, 0, n).Format(time.DateOnly) }

// spansOf lists the runs a counter of day is added to, one per width.
func spansOf(day string) ([]span, error) {
	n, err := dayNumber(day)
	if err != nil {
		return nil, err
	}
	out := make([]span, len(spanWidths))
	for i, w := range spanWidths {
		out[i] = span{w, dayName(n - n%w)}
	}
	return out, nil
}

// cover splits w into the fewest aligned runs, greedily from its first day:
// each step takes the widest run that starts there and ends inside w. Runs
// of one day are returned as days (report_pairs), the rest as spans.
func cover(w Window) (days []string, spans []span, err error) {
	from, err := dayNumber(w.From)
	if err != nil {
		return nil, nil, err
	}
	to, err := dayNumber(w.To)
	if err != nil {
		return nil, nil, err
	}
	for d := from; d <= to; {
		width := 1
		for _, sw := range spanWidths {
			if d%sw == 0 && d+sw-1 <= to {
				width = sw
			}
		}
		if width == 1 {
			days = append(days, dayName(d))
		} else {
			spans = append(spans, span{width, dayName(d)})
		}
		d += width
	}
	return days, spans, nil
}

// pairRows is a query yielding (org, service, n) rows that together hold
// every report of w exactly once, with its arguments: from the day and span
// rollups, or for rawRows every counter of w. The caller groups it.
func (s source) pairRows(w Window) (string, []any, error) {
	if !s.spans {
		where, args := filter(w, "", "")
		return "SELECT org, service, n FROM " + s.pairs + " WHERE " + where, args, nil
	}
	days, spans, err := cover(w)
	if err != nil {
		return "", nil, err
	}
	var parts []string
	var args []any
	if len(days) > 0 {
		parts = append(parts, "SELECT org, service, n FROM "+s.pairs+" WHERE day IN (?"+strings.Repeat(", ?", len(days)-1)+")")
		for _, d := range days {
			args = append(args, d)
		}
	}
	// One SELECT per run rather than one with ORs: SQLite answers an OR of
	// key ranges by collecting every row's key in a temporary index to drop
	// duplicates, which runs cannot have.
	for _, sp := range spans {
		parts = append(parts, "SELECT org, service, n FROM "+spansTable+" WHERE width = ? AND start = ?")
		args = append(args, sp.width, sp.start)
	}
	if len(parts) == 0 { // an empty window
		return "SELECT org, service, n FROM " + s.pairs + " WHERE 1 = 0", nil, nil
	}
	return strings.Join(parts, " UNION ALL "), args, nil
}

// spanFillSQL builds report_pair_spans from report_pairs (the migration
// that adds it, RebuildRollups), computing each run's first day in SQL.
func spanFillSQL(d store.Dialect) string {
	// dn is the day's number since 1970-01-01; the run starts at dn - dn % width.
	dn, start := "CAST(julianday(day) - 2440587.5 AS INTEGER)", "date((%s) * 86400, 'unixepoch')"
	if d == store.Postgres {
		dn, start = "(CAST(day AS DATE) - DATE '1970-01-01')", "to_char(DATE '1970-01-01' + (%s), 'YYYY-MM-DD')"
	}
	widths := make([]string, len(spanWidths))
	for i, w := range spanWidths {
		widths[i] = fmt.Sprintf("(%d)", w)
	}
	first := fmt.Sprintf(start, dn+" - "+dn+" % width")
	return `WITH widths (width) AS (VALUES ` + strings.Join(widths, ", ") + `)
	INSERT INTO ` + spansTable + ` (width, start, org, service, n)
	SELECT width, ` + first + `, org, service, SUM(n) FROM ` + pairsTable + ` CROSS JOIN widths
	GROUP BY width, ` + first + `, org, service`
}
