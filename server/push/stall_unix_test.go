//go:build unix

package push

import (
	"net"
	"syscall"
)

// dialSmallBuffer connects with a 4 KiB receive buffer set before the
// handshake, so the peer's advertised window stays small and a client that
// never reads fills up after a few hundred KiB instead of megabytes.
func dialSmallBuffer(addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.Dial("tcp", addr)
}
