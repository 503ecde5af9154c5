package protocol

// CommonParams asks which services work for every named organisation: the
// `common` request (common.schema.json's request and result).
type CommonParams struct {
	// Orgs are the organisations that must work together, the person's own
	// first. None asks only for the list of organisations.
	Orgs []string `json:"orgs"`
	// Category limits the answer to one category ("" for all).
	Category string `json:"category,omitempty"`
}

// CommonResult is the answer to common.
type CommonResult struct {
	Orgs []CommonOrg `json:"orgs"`
	// Organisations are every organisation the whitelist lists, by name:
	// what a person may pick partners from.
	Organisations []CommonOrg      `json:"organisations"`
	Categories    []CommonCategory `json:"categories"`
	// Version is the whitelist version answered from; nil without one.
	Version *int64 `json:"version"`
	Stale   bool   `json:"stale"`
}

// CommonOrg names an organisation asked about.
type CommonOrg struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CommonCategory is one category's services that work for everyone.
type CommonCategory struct {
	Category string          `json:"category"`
	Services []CommonService `json:"services"`
}

// Common statuses: every organisation approves the service, or none blocks
// it but not every one has approved it.
const (
	CommonConfirmed   = "confirmed"
	CommonUnconfirmed = "unconfirmed"
)

// CommonService is one service in a common answer.
type CommonService struct {
	Service string `json:"service"`
	Status  string `json:"status"`
	// Approvals counts the organisations in the whole whitelist that
	// approve it, the rank's first key.
	Approvals int `json:"approvals"`
	// AgreedBy counts the organisations that endorse the
	// cross-organisation agreement for it (0 without one).
	AgreedBy int `json:"agreed_by"`
	// Policies are the named organisations' statuses, in the order asked.
	Policies []OrgStatus `json:"policies"`
}

// OrgStatus is one organisation's status for a service.
type OrgStatus struct {
	Org    string `json:"org"`
	Status string `json:"status"`
}
