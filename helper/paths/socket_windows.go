package paths

import (
	"os"
	"strings"

	"github.com/detour-project/detour/helper/winipc"
)

// Socket is the agent's named pipe, \\.\pipe\detour-<user SID>. Folders other
// than the default ones (DETOUR_HOME, tests) get a pipe of their own, named
// for their runtime folder, so that they never reach the person's agent.
func (d Dirs) Socket() string {
	sid, err := winipc.CurrentUserSID()
	if err != nil {
		sid = "unknown"
	}
	scope := d.Runtime
	if home, err := os.UserHomeDir(); err == nil {
		def := For("windows", home, os.Getenv, os.TempDir(), 0)
		if strings.EqualFold(def.Runtime, d.Runtime) {
			scope = ""
		}
	}
	return winipc.PipeName(sid, scope)
}
