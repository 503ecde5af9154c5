//go:build unix

package relay

import (
	"os/signal"
	"syscall"
)

// ignoreSIGPIPE makes a write to a browser that has gone return EPIPE instead
// of killing the process: Go otherwise dies of SIGPIPE on a write to fd 1.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
