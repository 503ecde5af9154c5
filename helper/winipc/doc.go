// Package winipc is the agent's local endpoint on Windows: a named pipe whose
// DACL admits only the current user, a client that refuses a pipe some other
// account created first, and a named lock that the kernel drops when its
// holder's process ends. Other platforms use Unix sockets and flock (see
// helper/agent/unix.go); on them this package has only the pure helpers.
//
// Handles are opened for overlapped I/O and handed to os.NewFile, which (Go
// 1.24 and later) puts them on the runtime's completion port: reads and
// writes can run at the same time in both directions and deadlines work. A
// pipe opened for synchronous I/O would serialise them, and the relay, which
// reads the agent's replies while it writes the browser's requests, would
// stall on a real Windows.
package winipc

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// PipePrefix is where every named pipe lives.
const PipePrefix = `\\.\pipe\`

// PipeName is the agent's pipe for the user with this SID. A non-empty scope
// (the runtime folder when it is not the default, e.g. under DETOUR_HOME in
// tests) gives that folder a pipe of its own, so that two isolated helpers of
// one user never meet.
func PipeName(sid, scope string) string {
	name := PipePrefix + "detour-" + sid
	if scope != "" {
		sum := sha256.Sum256([]byte(strings.ToLower(scope)))
		name += "-" + hex.EncodeToString(sum[:4])
	}
	return name
}

// LockName is the name of the kernel object that a holder of the lock for
// pipe keeps open; what is one of "agent" or "tray". It is session-local.
func LockName(pipe, what string) string {
	return `Local\` + strings.TrimPrefix(pipe, PipePrefix) + "-" + what
}

// OwnerOnlySDDL is the security descriptor for an object only sid may open:
// owned by it, and a protected DACL with one entry granting it everything.
func OwnerOnlySDDL(sid string) string {
	return "O:" + sid + "D:P(A;;GA;;;" + sid + ")"
}
