package localapi

import (
	"context"

	"github.com/detour-project/detour/shared/protocol"
)

// The typed methods below are the agent's requests as PROTOCOL.md defines
// them, one per request type, with the protocol's own parameter and result
// types: a caller never spells a type name or builds a params map. A new
// request type gets its method here. An ok:false reply is a *protocol.Error
// (test its Code with protocol.AsError).

// Status is the agent's whole state: hub, enrolment, whitelist, reports,
// settings.
func (c *Client) Status(ctx context.Context) (protocol.StatusResult, error) {
	var r protocol.StatusResult
	err := c.Call(ctx, "status", nil, &r)
	return r, err
}

// Diagnose probes a catalog URL and says whether and how it is blocked.
func (c *Client) Diagnose(ctx context.Context, p protocol.DiagnoseParams) (protocol.Verdict, error) {
	var r protocol.Verdict
	err := c.Call(ctx, "diagnose", p, &r)
	return r, err
}

// Suggest lists approved alternatives to a host.
func (c *Client) Suggest(ctx context.Context, p protocol.SuggestParams) (protocol.SuggestResult, error) {
	var r protocol.SuggestResult
	err := c.Call(ctx, "suggest", p, &r)
	return r, err
}

// Report queues (or, with Now, sends) an anonymous report of a block.
func (c *Client) Report(ctx context.Context, p protocol.ReportParams) (protocol.ReportResult, error) {
	var r protocol.ReportResult
	err := c.Call(ctx, "report", p, &r)
	return r, err
}

// Settings reads the settings and, when set is not nil, changes the ones it
// names first (a setting fixed by managed policy refuses the whole change).
func (c *Client) Settings(ctx context.Context, set *protocol.SettingsChange) (protocol.Settings, error) {
	var r protocol.Settings
	err := c.Call(ctx, "settings", protocol.SettingsParams{Set: set}, &r)
	return r, err
}

// Sync fetches the whitelist from the hub now.
func (c *Client) Sync(ctx context.Context) (protocol.SyncResult, error) {
	var r protocol.SyncResult
	err := c.Call(ctx, "sync", nil, &r)
	return r, err
}

// Enrol exchanges an enrolment code with a hub.
func (c *Client) Enrol(ctx context.Context, p protocol.EnrolParams) (protocol.EnrolResult, error) {
	var r protocol.EnrolResult
	err := c.Call(ctx, "enrol", p, &r)
	return r, err
}

// Common lists, per category, the services every named organisation
// approves, then those none blocks; the agent answers from the whitelist it
// holds and sends nothing anywhere.
func (c *Client) Common(ctx context.Context, p protocol.CommonParams) (protocol.CommonResult, error) {
	var r protocol.CommonResult
	err := c.Call(ctx, "common", p, &r)
	return r, err
}
