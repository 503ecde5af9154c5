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
	return call[protocol.StatusResult](ctx, c, "status", nil)
}

// Diagnose probes a catalog URL and says whether and how it is blocked.
func (c *Client) Diagnose(ctx context.Context, p protocol.DiagnoseParams) (protocol.Verdict, error) {
	return call[protocol.Verdict](ctx, c, "diagnose", p)
}

// Suggest lists approved alternatives to a host.
func (c *Client) Suggest(ctx context.Context, p protocol.SuggestParams) (protocol.SuggestResult, error) {
	return call[protocol.SuggestResult](ctx, c, "suggest", p)
}

// Report queues (or, with Now, sends) an anonymous report of a block.
func (c *Client) Report(ctx context.Context, p protocol.ReportParams) (protocol.ReportResult, error) {
	return call[protocol.ReportResult](ctx, c, "report", p)
}

// Settings reads the settings and, when set is not nil, changes the ones it
// names first (a setting fixed by managed policy refuses the whole change).
func (c *Client) Settings(ctx context.Context, set *protocol.SettingsChange) (protocol.Settings, error) {
	return call[protocol.Settings](ctx, c, "settings", protocol.SettingsParams{Set: set})
}

// Sync fetches the whitelist from the hub now.
func (c *Client) Sync(ctx context.Context) (protocol.SyncResult, error) {
	return call[protocol.SyncResult](ctx, c, "sync", nil)
}

// Enrol exchanges an enrolment code with a hub.
func (c *Client) Enrol(ctx context.Context, p protocol.EnrolParams) (protocol.EnrolResult, error) {
	return call[protocol.EnrolResult](ctx, c, "enrol", p)
}

// Common lists, per category, the services every named organisation
// approves, then those none blocks; the agent answers from the whitelist it
// holds and sends nothing anywhere.
func (c *Client) Common(ctx context.Context, p protocol.CommonParams) (protocol.CommonResult, error) {
	return call[protocol.CommonResult](ctx, c, "common", p)
}

// call sends one request and decodes its result as R: the one body every
// typed method shares.
func call[R any](ctx context.Context, c *Client, typ string, params any) (R, error) {
	var r R
	err := c.Call(ctx, typ, params, &r)
	return r, err
}
