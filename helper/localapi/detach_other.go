//go:build !unix

package localapi

import "syscall"

func detached() *syscall.SysProcAttr { return nil }
