package localapi

import (
	"context"

	"github.com/detour-project/detour/shared/protocol"
)

// Common asks the agent which services work for every organisation in p
// (the `common` request); the agent answers from the whitelist it holds.
func (c *Client) Common(ctx context.Context, p protocol.CommonParams) (protocol.CommonResult, error) {
	var res protocol.CommonResult
	err := c.Call(ctx, "common", p, &res)
	return res, err
}
