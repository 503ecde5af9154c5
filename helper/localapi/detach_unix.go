//go:build unix

package localapi

import "syscall"

// detached puts the agent in its own session, so that the browser's signals
// to the relay's process group do not reach it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
