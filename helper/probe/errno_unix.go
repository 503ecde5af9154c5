//go:build unix

package probe

import "syscall"

var (
	errConnRefused = syscall.ECONNREFUSED
	errConnReset   = syscall.ECONNRESET
	errConnAborted = syscall.ECONNABORTED
	errBrokenPipe  = syscall.EPIPE
	errNetUnreach  = syscall.ENETUNREACH
	errHostUnreach = syscall.EHOSTUNREACH
)
