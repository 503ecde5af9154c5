package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// EnvLoopbackOnly, set to "1", confines every socket the probe opens (DNS,
// TCP, TLS, HTTP, the connectivity check) to the loopback range. The test
// suite sets it for the whole run, so that no test — whatever it forgets to
// configure — can send a packet to any other address. The check runs before
// connect(2), so a refused address sees no traffic at all.
const EnvLoopbackOnly = "DETOUR_PROBE_LOOPBACK_ONLY"

// newDialer returns the dialer every probe connection goes through.
func newDialer() *net.Dialer { return &net.Dialer{Control: guardAddress} }

func guardAddress(network, address string, _ syscall.RawConn) error {
	if os.Getenv(EnvLoopbackOnly) != "1" {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() {
		return fmt.Errorf("probe: %s %s refused: %s=1 allows loopback addresses only", network, address, EnvLoopbackOnly)
	}
	return nil
}

// systemResolver is net.DefaultResolver, except under EnvLoopbackOnly, where
// the resolver's own connections to the system's name servers go through the
// guarded dialer too.
func systemResolver() *net.Resolver {
	if os.Getenv(EnvLoopbackOnly) != "1" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return newDialer().DialContext(ctx, network, address)
	}}
}
