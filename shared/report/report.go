// Package report defines the anonymous report as it crosses the wire: the
// helper builds it, POST /api/v1/reports carries it, the hub checks and
// stores it. One definition on both sides, because "exactly these fields and
// nothing else" is the privacy promise: no URL path, no address, no device
// or user identifier, no free text.
package report

// Report says what was blocked, how, and for whom, never who. The hub
// refuses any field not here.
type Report struct {
	Service       string `json:"service"`
	Host          string `json:"host"`
	Org           string `json:"org"`
	Method        string `json:"method"`
	Vendor        string `json:"vendor"` // "" when no vendor was named
	Need          string `json:"need"`
	Hour          string `json:"hour"` // RFC 3339, UTC, truncated to the hour
	ClientVersion string `json:"client_version"`
}
