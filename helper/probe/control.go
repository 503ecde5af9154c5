package probe

import "context"

// Control asks a hub for its outside view of a catalog host.
type Control struct{}

func (c *Control) ask(ctx context.Context, host string) *controlObs { return nil }

func (j *judge) withControl(obs *observation, out outcome) outcome { return out }
