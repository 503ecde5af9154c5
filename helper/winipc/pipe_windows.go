package winipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

const (
	pipeBuffer = 64 << 10
	// pipeRejectRemoteClients is PIPE_REJECT_REMOTE_CLIENTS: the pipe is
	// for this machine only.
	pipeRejectRemoteClients = 0x8
)

// CurrentUserSID is the SID of the account this process runs as.
func CurrentUserSID() (string, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("winipc: whose process is this: %w", err)
	}
	return u.User.Sid.String(), nil
}

func ownerOnly() (*windows.SecurityAttributes, error) {
	sid, err := CurrentUserSID()
	if err != nil {
		return nil, err
	}
	sd, err := windows.SecurityDescriptorFromString(OwnerOnlySDDL(sid))
	if err != nil {
		return nil, fmt.Errorf("winipc: security descriptor: %w", err)
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	return sa, nil
}

// Listener accepts connections on a named pipe. It always keeps one instance
// waiting, with its connect already started, so a client that arrives while
// a connection is being handed over finds the pipe and is not told that it
// does not exist.
type Listener struct {
	name string
	sa   *windows.SecurityAttributes

	mu        sync.Mutex
	next      *instance // the instance waiting for a client
	closed    bool
	accepting bool
}

// instance is one pipe instance with its overlapped ConnectNamedPipe.
type instance struct {
	h  windows.Handle
	ov windows.Overlapped
	// done is set when the connect finished at once (a client was already
	// there, or it failed); err is its result then.
	done bool
	err  error
}

func (in *instance) close() {
	windows.CloseHandle(in.h)
	windows.CloseHandle(in.ov.HEvent)
}

// Listen creates the pipe. It fails when the pipe already exists, whoever
// made it (FILE_FLAG_FIRST_PIPE_INSTANCE): a second agent, or another
// account squatting the name, never shares it. (Wine 8 does not enforce
// this; the agent's NamedLock keeps a second agent out there too.)
func Listen(name string) (*Listener, error) {
	sa, err := ownerOnly()
	if err != nil {
		return nil, err
	}
	l := &Listener{name: name, sa: sa}
	in, err := l.instance(true)
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return nil, fmt.Errorf("winipc: %s already exists (another agent, or another account holds the name): %w", name, err)
		}
		return nil, err
	}
	l.next = in
	return l, nil
}

// instance creates a pipe instance and starts waiting for a client on it.
func (l *Listener) instance(first bool) (*instance, error) {
	name, err := windows.UTF16PtrFromString(l.name)
	if err != nil {
		return nil, fmt.Errorf("winipc: pipe name %q: %w", l.name, err)
	}
	flags := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if first {
		flags |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	mode := uint32(windows.PIPE_TYPE_BYTE | windows.PIPE_READMODE_BYTE | windows.PIPE_WAIT | pipeRejectRemoteClients)
	h, err := windows.CreateNamedPipe(name, flags, mode, windows.PIPE_UNLIMITED_INSTANCES, pipeBuffer, pipeBuffer, 0, l.sa)
	if err != nil {
		return nil, fmt.Errorf("winipc: create pipe %s: %w", l.name, err)
	}
	ev, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("winipc: event: %w", err)
	}
	in := &instance{h: h}
	in.ov.HEvent = ev
	switch err := windows.ConnectNamedPipe(h, &in.ov); {
	case err == nil, errors.Is(err, windows.ERROR_PIPE_CONNECTED):
		in.done = true
	case errors.Is(err, windows.ERROR_IO_PENDING):
	default:
		in.done, in.err = true, err
	}
	return in, nil
}

// Accept waits for a client on the waiting instance, puts a fresh instance
// in its place and returns the connection.
func (l *Listener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, net.ErrClosed
	}
	if l.accepting {
		l.mu.Unlock()
		return nil, errors.New("winipc: Accept called concurrently")
	}
	l.accepting = true
	in := l.next
	l.mu.Unlock()

	err := in.err
	if !in.done {
		var n uint32
		err = windows.GetOverlappedResult(in.h, &in.ov, &n, true)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepting = false
	if l.closed {
		in.close()
		return nil, net.ErrClosed
	}
	nin, nerr := l.instance(false)
	if nerr != nil {
		in.close()
		l.closed = true
		return nil, nerr
	}
	l.next = nin
	if err != nil {
		// The client went at once, or an I/O error: this instance is done.
		in.close()
		return nil, fmt.Errorf("winipc: accept on %s: %w", l.name, err)
	}
	windows.CloseHandle(in.ov.HEvent)
	return newConn(in.h, l.name)
}

// Close stops accepting; connections already accepted stay open.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.accepting {
		windows.CancelIoEx(l.next.h, &l.next.ov) // Accept closes the handle
	} else {
		windows.CancelIoEx(l.next.h, &l.next.ov)
		l.next.close()
	}
	return nil
}

// Addr is the pipe's name.
func (l *Listener) Addr() net.Addr { return Addr(l.name) }

// Addr is a pipe's name as a net.Addr.
type Addr string

func (Addr) Network() string  { return "pipe" }
func (a Addr) String() string { return string(a) }

// ErrNotOwner says the pipe exists but was not created by this user: it is
// not our agent, and nothing is sent to it.
var ErrNotOwner = errors.New("winipc: the pipe belongs to another account")

// Dial connects to the pipe, waiting while every instance is busy. A pipe
// that does not exist is an error wrapping os.ErrNotExist at once. The
// server may only identify the client, never impersonate it, and a pipe
// owned by another account is refused (ErrNotOwner).
func Dial(ctx context.Context, name string) (net.Conn, error) {
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, fmt.Errorf("winipc: pipe name %q: %w", name, err)
	}
	for {
		h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING,
			windows.FILE_FLAG_OVERLAPPED|windows.SECURITY_SQOS_PRESENT|windows.SECURITY_IDENTIFICATION, 0)
		if err == nil {
			if err := checkOwner(h); err != nil {
				windows.CloseHandle(h)
				return nil, fmt.Errorf("winipc: %s: %w", name, err)
			}
			return newConn(h, name)
		}
		switch {
		case errors.Is(err, windows.ERROR_FILE_NOT_FOUND):
			return nil, fmt.Errorf("winipc: connect to %s: %w", name, os.ErrNotExist)
		case errors.Is(err, windows.ERROR_PIPE_BUSY):
		default:
			return nil, fmt.Errorf("winipc: connect to %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("winipc: connect to %s: every instance busy: %w", name, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkOwner refuses a pipe whose owner is not this user. Where the owner
// cannot be read at all (Wine answers without one), the DACL the agent set
// is what protects the pipe, and the connection goes ahead.
func checkOwner(h windows.Handle) error {
	sd, err := windows.GetSecurityInfo(h, windows.SE_KERNEL_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return nil
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return nil
	}
	me, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return fmt.Errorf("winipc: whose process is this: %w", err)
	}
	if !owner.Equals(me.User.Sid) {
		return fmt.Errorf("%w (%s)", ErrNotOwner, owner.String())
	}
	return nil
}

// conn is one end of a pipe: an overlapped handle on the runtime's
// completion port (os.NewFile), with deadlines.
type conn struct {
	*os.File
	name string
}

func newConn(h windows.Handle, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(h), name)
	if f == nil {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("winipc: %s: invalid handle", name)
	}
	return &conn{File: f, name: name}, nil
}

func (c *conn) LocalAddr() net.Addr  { return Addr(c.name) }
func (c *conn) RemoteAddr() net.Addr { return Addr(c.name) }

// NamedLock holds the session-local kernel object name while the returned
// release has not been called and the process lives: the kernel removes the
// object with its last handle, so a crashed holder leaves nothing behind.
// held is true when another process (or an earlier caller here) holds it.
func NamedLock(name string) (release func(), held bool, err error) {
	sa, err := ownerOnly()
	if err != nil {
		return nil, false, err
	}
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, false, fmt.Errorf("winipc: lock name %q: %w", name, err)
	}
	h, err := windows.CreateEvent(sa, 1, 0, p)
	if errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		windows.CloseHandle(h)
		return nil, true, nil
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		// It exists with a DACL that refuses us: held, by someone else.
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("winipc: lock %s: %w", name, err)
	}
	var once sync.Once
	return func() { once.Do(func() { windows.CloseHandle(h) }) }, false, nil
}

// UnderWine says whether this process runs under Wine, which `detour doctor`
// reports and whose known gaps (FILE_FLAG_FIRST_PIPE_INSTANCE is not
// enforced) tests allow for.
func UnderWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
