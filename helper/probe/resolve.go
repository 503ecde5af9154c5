package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsResult is what one resolver said about a name.
type dnsResult struct {
	addrs   []netip.Addr
	nx      bool   // the name does not exist (or has no address)
	rcode   string // for a --dns resolver: the response code when not NOERROR
	dead    bool   // the resolver did not answer at all
	err     error
	elapsed time.Duration
}

// resolver answers for a name, through the system resolver or one server.
type resolver struct {
	server string // host:port; "" means the system resolver
}

func newResolver(addr string) resolver {
	if addr == "" {
		return resolver{}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
	}
	return resolver{server: addr}
}

func (r resolver) String() string {
	if r.server == "" {
		return "the system resolver"
	}
	return "the resolver at " + r.server
}

// loopback reports whether this is an explicitly given resolver on loopback:
// a test or development network, whose loopback answers are believed.
func (r resolver) loopback() bool {
	if r.server == "" {
		return false
	}
	h, _, _ := net.SplitHostPort(r.server)
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func (r resolver) lookup(ctx context.Context, host string) dnsResult {
	start := time.Now()
	if a, err := netip.ParseAddr(host); err == nil {
		return dnsResult{addrs: []netip.Addr{a.Unmap()}}
	}
	var res dnsResult
	if r.server == "" {
		res = r.lookupSystem(ctx, host)
	} else {
		res = r.lookupServer(ctx, host)
	}
	res.elapsed = time.Since(start)
	return res
}

func (r resolver) lookupSystem(ctx context.Context, host string) dnsResult {
	addrs, err := systemResolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) {
			switch {
			case de.IsNotFound:
				return dnsResult{nx: true, err: err}
			case de.IsTimeout || errors.Is(err, context.DeadlineExceeded):
				return dnsResult{dead: true, err: err}
			}
		}
		return dnsResult{dead: true, err: err}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Unmap())
	}
	return dnsResult{addrs: out}
}

// lookupServer asks for A and AAAA at once; UDP, then TCP when truncated.
func (r resolver) lookupServer(ctx context.Context, host string) dnsResult {
	type answer struct {
		msg *dns.Msg
		err error
	}
	askCtx := func(ctx context.Context, qtype uint16) answer {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(host), qtype)
		m.RecursionDesired = true
		in, _, err := (&dns.Client{Net: "udp", Dialer: newDialer()}).ExchangeContext(ctx, m, r.server)
		if err == nil && in.Truncated {
			in, _, err = (&dns.Client{Net: "tcp", Dialer: newDialer()}).ExchangeContext(ctx, m, r.server)
		}
		return answer{in, err}
	}
	// A and AAAA at once. Some resolvers never answer AAAA; once A is in,
	// AAAA gets only a little longer, so such a resolver does not cost the
	// whole DNS step.
	ch6 := make(chan answer, 1)
	ch4 := make(chan answer, 1)
	ctx6, cancel6 := context.WithCancel(ctx)
	defer cancel6()
	go func() { ch6 <- askCtx(ctx6, dns.TypeAAAA) }()
	go func() { ch4 <- askCtx(ctx, dns.TypeA) }()
	var a4, a6 answer
	select {
	case a4 = <-ch4:
		select {
		case a6 = <-ch6:
		case <-time.After(500 * time.Millisecond):
			// Left to finish on its own (the channel is buffered).
			cancel6()
			a6 = answer{err: fmt.Errorf("no AAAA answer from %s", r.server)}
		}
	case a6 = <-ch6:
		a4 = <-ch4
	}
	if a4.err != nil && a6.err != nil {
		return dnsResult{dead: true, err: fmt.Errorf("asking %s: %w", r.server, a4.err)}
	}
	var res dnsResult
	nxCount := 0
	for _, a := range []answer{a4, a6} {
		if a.err != nil {
			continue
		}
		switch a.msg.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			nxCount++
			res.rcode = "NXDOMAIN"
			continue
		default:
			res.rcode = dns.RcodeToString[a.msg.Rcode]
			continue
		}
		for _, rr := range a.msg.Answer {
			switch v := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(v.A); ok {
					res.addrs = append(res.addrs, ip.Unmap())
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
					res.addrs = append(res.addrs, ip)
				}
			}
		}
	}
	if len(res.addrs) == 0 {
		res.nx = true
		if res.rcode == "" {
			res.rcode = "no address"
		}
	}
	_ = nxCount
	return res
}

// alive asks the resolver for the root zone, which every working resolver
// answers, to tell a resolver that drops one name from one that is down.
func (r resolver) alive(ctx context.Context) bool {
	if r.server == "" {
		_, err := systemResolver().LookupNS(ctx, ".")
		var de *net.DNSError
		return err == nil || (errors.As(err, &de) && !de.IsTimeout && de.IsNotFound)
	}
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeNS)
	_, _, err := (&dns.Client{Net: "udp", Dialer: newDialer()}).ExchangeContext(ctx, m, r.server)
	return err == nil
}

// addrClass says why an answer cannot be the real address of a public site.
type addrClass int

const (
	addrPublic      addrClass = iota
	addrUnspecified           // 0.0.0.0, ::
	addrLoopback              // 127/8, ::1
	addrPrivate               // RFC 1918, ULA, link-local
	addrBogon                 // documentation, reserved, multicast, CGNAT, benchmarking
)

var bogons = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "2001:db8::/32", "100::/64"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

func classifyAddr(a netip.Addr) addrClass {
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		return addrUnspecified
	case a.IsLoopback():
		return addrLoopback
	case a.IsPrivate() || a.IsLinkLocalUnicast():
		return addrPrivate
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return addrBogon
	}
	for _, p := range bogons {
		if p.Contains(a) {
			return addrBogon
		}
	}
	return addrPublic
}
