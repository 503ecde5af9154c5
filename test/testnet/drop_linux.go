package testnet

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// dropListener makes a port whose connection attempts are silently dropped,
// as a firewall's "drop" rule does: a socket that listens with a backlog of
// zero and never accepts, its queue already filled, so the kernel discards
// every further SYN and a client's connect times out.
func dropListener() (string, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("testnet: drop socket: %w", err)
	}
	closeFD := func() { _ = syscall.Close(fd) }
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		closeFD()
		return "", nil, fmt.Errorf("testnet: drop bind: %w", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		closeFD()
		return "", nil, fmt.Errorf("testnet: drop listen: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		closeFD()
		return "", nil, fmt.Errorf("testnet: drop getsockname: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue; stop at the first attempt that is dropped.
	var fillers []net.Conn
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			break
		}
		fillers = append(fillers, c)
	}
	return addr, func() {
		for _, c := range fillers {
			_ = c.Close()
		}
		closeFD()
	}, nil
}

// refusingPort reserves a port on which nothing listens: a socket bound to
// it but never listening, so connections are refused (RST) and no other
// program can take the port while the network runs.
func refusingPort() (string, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("testnet: refusing socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = syscall.Close(fd)
		return "", nil, fmt.Errorf("testnet: refusing bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return "", nil, fmt.Errorf("testnet: refusing getsockname: %w", err)
	}
	return strconv.Itoa(sa.(*syscall.SockaddrInet4).Port), func() { _ = syscall.Close(fd) }, nil
}
