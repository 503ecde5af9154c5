//go:build !windows

package connlimit

import "syscall"

// DescriptorLimit is the process's limit on open descriptors (the soft
// RLIMIT_NOFILE, which the Go runtime raises to the hard limit at start).
func DescriptorLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
