//go:build !windows

package paths

import "path/filepath"

// Socket is the agent's Unix socket path.
func (d Dirs) Socket() string { return filepath.Join(d.Runtime, "agent.sock") }
