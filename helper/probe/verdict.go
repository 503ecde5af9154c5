package probe

import "github.com/detour-project/detour/shared/protocol"

// Verdict is the outcome of one diagnosis; its shape is part of the
// protocol (the diagnose result and `detour probe --json`).
type Verdict = protocol.Verdict
