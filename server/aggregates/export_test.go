package aggregates

// RawOf exposes a pair's true count to the tests, which check that the
// hidden cells of a row or column never add up to a small number.
func RawOf(p Pair) int64 { return p.raw }

// SpanWidths are the span rollup's run lengths, for the tests that rebuild
// it independently.
var SpanWidths = spanWidths

// The pages as the counters alone give them, row by row (source rawRows):
// what the rollups must reproduce exactly.
var (
	RawOverview = rawRows.overview
	RawDetail   = rawRows.detail // (ctx, q, p, w, org, service)
	RawOrg      = rawRows.org
	RawTable    = rawRows.orgServiceTable
	RawReport   = rawRows.report
)
