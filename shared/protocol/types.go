package protocol

import (
	"bytes"
	"encoding/json"
	"time"
)

// HelloParams is the first message a client sends.
type HelloParams struct {
	Version int    `json:"version"`
	Browser string `json:"browser"`
}

// HelloResult tells the client what the agent is and what it knows.
type HelloResult struct {
	Version          string   `json:"version"`
	Protocol         int      `json:"protocol"`
	Capabilities     []string `json:"capabilities"`
	Enrolled         bool     `json:"enrolled"`
	Org              *string  `json:"org"`
	Hub              *string  `json:"hub"`
	WhitelistVersion *int64   `json:"whitelist_version"`
	WhitelistStale   bool     `json:"whitelist_stale"`
}

// StatusResult is the whole state the tray and the popup show.
type StatusResult struct {
	Version   string          `json:"version"`
	Hub       HubStatus       `json:"hub"`
	Enrolled  bool            `json:"enrolled"`
	Org       *string         `json:"org"`
	Whitelist WhitelistStatus `json:"whitelist"`
	Reports   ReportsStatus   `json:"reports"`
	Settings  Settings        `json:"settings"`
}

// HubStatus is the status's `hub` section; Reachable is null before the
// first contact.
type HubStatus struct {
	URL       *string `json:"url"`
	Reachable *bool   `json:"reachable"`
}

// WhitelistStatus is the status's `whitelist` section, registered by the
// whitelist subsystem under the status section name "whitelist".
type WhitelistStatus struct {
	Version   *int64     `json:"version"`
	IssuedAt  *time.Time `json:"issued_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	FetchedAt *time.Time `json:"fetched_at"`
	Stale     bool       `json:"stale"`
}

// ReportsStatus is the status's `reports` section, registered by the reports
// subsystem under the status section name "reports".
type ReportsStatus struct {
	Queued    int     `json:"queued"`
	Sent      int     `json:"sent"`
	Failed    int     `json:"failed"`
	LastError *string `json:"last_error"`
	// DeviceRevoked: the hub's IT team revoked this device, which must be
	// enrolled again (LastError says so in words).
	DeviceRevoked bool `json:"device_revoked,omitempty"`
}

// Settings are the person's settings, as `settings` returns them and the
// settings-changed event carries them.
type Settings struct {
	ReportAutomatically bool       `json:"report_automatically"`
	PausedUntil         *time.Time `json:"paused_until"`
	// Prompts is set only by the organisation's policy (nil: prompts are
	// on unless paused); the extension then shows none on a block.
	Prompts *bool    `json:"prompts,omitempty"`
	Managed []string `json:"managed"`
}

// SettingsParams optionally changes settings; without Set it only reads.
type SettingsParams struct {
	Set *SettingsChange `json:"set,omitempty"`
}

// SettingsChange names only the settings to change. PausedUntil
// distinguishes absent (no change) from null (clear the pause).
type SettingsChange struct {
	ReportAutomatically *bool               `json:"report_automatically,omitempty"`
	PausedUntil         Optional[time.Time] `json:"paused_until,omitzero"`
}

// Optional is a field that may be absent, null or a value: Present says
// whether the key was in the message at all, Value is nil for null.
type Optional[T any] struct {
	Present bool
	Value   *T
}

// UnmarshalJSON is only called when the key is present.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Present = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// MarshalJSON writes null or the value.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.Value)
}

// IsZero lets omitzero leave out an absent field.
func (o Optional[T]) IsZero() bool { return !o.Present }

// DiagnoseParams asks the agent to probe a catalog URL. Signal is what the
// browser saw, if anything.
type DiagnoseParams struct {
	URL    string  `json:"url"`
	Signal *Signal `json:"signal,omitempty"`
}

// Signal is the browser's own observation of a failed navigation.
type Signal struct {
	Error        string `json:"error,omitempty"`
	Status       int    `json:"status,omitempty"`
	RedirectHost string `json:"redirect_host,omitempty"`
}

// The diagnose result is a probe.Verdict (helper/probe).

// SuggestParams asks for approved alternatives to a host.
type SuggestParams struct {
	Host string `json:"host"`
	Org  string `json:"org,omitempty"`
}

// SuggestResult is the answer to suggest.
type SuggestResult struct {
	Host         string        `json:"host"`
	Service      *string       `json:"service"`
	Org          *string       `json:"org"`
	Status       string        `json:"status"`
	Approvals    int           `json:"approvals"`
	Alternatives []Alternative `json:"alternatives"`
	Stale        bool          `json:"stale"`
	// Note is the organisation's note on its policy for the service (what
	// its IT team says: "Use Teams for meetings with other organisations"),
	// "" when there is none. Plain text, possibly several lines: show it as
	// text, never as markup.
	Note string `json:"note"`
}

// Alternative is one suggested service with the reasons for its rank.
type Alternative struct {
	Service string   `json:"service"`
	Rank    int      `json:"rank"`
	Reasons []Reason `json:"reasons"`
}

// Reason explains a rank: a stable code and a sentence.
type Reason struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

// ReportParams queues an anonymous report.
type ReportParams struct {
	Host   string `json:"host"`
	Need   string `json:"need"`
	Method string `json:"method,omitempty"`
	Vendor string `json:"vendor,omitempty"`
	// Now skips the random send delay: the agent sends before answering
	// when the hub answers (detour report --now).
	Now bool `json:"now,omitempty"`
}

// ReportResult says the report is stored durably ("queued") or, with Now,
// already taken by the hub ("sent").
type ReportResult struct {
	State  string `json:"state"`
	Queued int    `json:"queued"`
}

// SyncResult is the whitelist version after a sync.
type SyncResult struct {
	Version *int64 `json:"version"`
	Changed bool   `json:"changed"`
}

// WhitelistUpdated is the data of a whitelist-updated event.
type WhitelistUpdated struct {
	Version  int64     `json:"version"`
	IssuedAt time.Time `json:"issued_at"`
}

// ReportsChanged is the data of a reports-changed event.
type ReportsChanged struct {
	Queued int `json:"queued"`
	Sent   int `json:"sent"`
	Failed int `json:"failed"`
}

// ServiceApproved is the data of a service-approved event.
type ServiceApproved struct {
	Service string `json:"service"`
	Name    string `json:"name"`
}

// EnrolmentChanged is the data of an enrolment-changed event: the device
// was enrolled (by `detour enrol`, the tray or the organisation's policy)
// while clients were connected, so what their hello said is out of date.
type EnrolmentChanged struct {
	Enrolled bool    `json:"enrolled"`
	Org      *string `json:"org"`
	Hub      *string `json:"hub"`
}

// EnrolParams exchanges an enrolment code (sent by `detour enrol`).
type EnrolParams struct {
	Hub  string `json:"hub"`
	Code string `json:"code"`
}

// EnrolResult says which hub and organisation the device enrolled with.
type EnrolResult struct {
	Hub           string `json:"hub"`
	Org           string `json:"org"`
	WhitelistKeys int    `json:"whitelist_keys"`
}

// Verdict is the outcome of one diagnosis, as `detour probe --json` prints it
// and as the `diagnose` message returns it. Method is a block method or, when
// Blocked is false, the reason it is not a block (see shared/method).
type Verdict struct {
	URL     string  `json:"url"`
	Host    string  `json:"host"`
	Service *string `json:"service"`
	Blocked bool    `json:"blocked"`
	// Possible is true when the evidence points at a block without proving
	// it (an unrecognised 403 over plain HTTP, a page that reads like a
	// block page): Blocked stays false and Method is the block method it
	// would be. Show the alternative without claiming a block.
	Possible   bool     `json:"possible"`
	Method     string   `json:"method"`
	Vendor     *string  `json:"vendor"`
	Confidence float64  `json:"confidence"`
	Evidence   []string `json:"evidence"`
	// Facts are Evidence in coded form, for rendering in any language.
	Facts     []Fact `json:"facts,omitempty"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

// Fact is one coded observation or conclusion of a diagnosis: a code from
// the fact catalog (helper/probe's English table, the extension's en and cy
// message catalogs) and its values, so each reader can render it in the
// person's own language. Values are data (hosts, addresses, statuses,
// quoted page text), never markup.
type Fact struct {
	Code   string            `json:"code"`
	Values map[string]string `json:"values,omitempty"`
}
