package agent

import "context"

// setupReports wires the reports subsystem into the agent: its message handlers,
// its status section and its background work, which stops when ctx ends.
func setupReports(ctx context.Context, env *Env) error {
	_, _ = ctx, env
	return nil
}
