//go:build !unix && !windows

package localapi

import "syscall"

func detached() *syscall.SysProcAttr { return nil }
