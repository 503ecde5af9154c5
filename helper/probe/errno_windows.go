//go:build windows

package probe

import "syscall"

var (
	errConnRefused = syscall.Errno(10061) // WSAECONNREFUSED
	errConnReset   = syscall.Errno(10054) // WSAECONNRESET
	errConnAborted = syscall.Errno(10053) // WSAECONNABORTED
	errBrokenPipe  = syscall.EPIPE
	errNetUnreach  = syscall.Errno(10051) // WSAENETUNREACH
	errHostUnreach = syscall.Errno(10065) // WSAEHOSTUNREACH
)
