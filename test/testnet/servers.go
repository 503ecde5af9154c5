package testnet

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/detour-project/detour/shared/fingerprints"
)

type tlsCert = tls.Certificate

func tlsConfig(c *tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{*c}, MinVersion: tls.VersionTLS12}
}

func tlsListener(ln net.Listener, cfg *tls.Config) net.Listener { return tls.NewListener(ln, cfg) }

// quietLog drops the servers' own error lines (aborted handshakes are the
// point of several scenarios).
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// serveDNS starts a resolver on UDP and TCP (same port). The filtering one
// answers by scenario; the public one tells the truth: every known host is
// 127.0.0.1 unless the scenario says no resolver knows it.
func (n *Network) serveDNS(public bool) (string, error) {
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		if len(req.Question) != 1 {
			m.Rcode = dns.RcodeFormatError
			_ = w.WriteMsg(m)
			return
		}
		q := req.Question[0]
		name := strings.TrimSuffix(strings.ToLower(q.Name), ".")
		b, ok := n.lookup(name)
		switch {
		case name == "":
			// The root: answer NOERROR, so a probe can tell that the resolver works.
		case !ok || (public && b.publicNX) || (!public && b.nx):
			m.Rcode = dns.RcodeNameError
		default:
			addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
			if !public && b.filterDNS != nil {
				addrs = b.filterDNS
			}
			for _, a := range addrs {
				hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 60}
				switch {
				case q.Qtype == dns.TypeA && a.Is4():
					hdr.Rrtype = dns.TypeA
					m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
				case q.Qtype == dns.TypeAAAA && a.Is6():
					hdr.Rrtype = dns.TypeAAAA
					m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
				}
			}
		}
		_ = w.WriteMsg(m)
	})
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("testnet: dns udp: %w", err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			_ = pc.Close()
			lastErr = err
			continue
		}
		udp := &dns.Server{PacketConn: pc, Handler: handler}
		tcp := &dns.Server{Listener: ln, Handler: handler}
		go func() { _ = udp.ActivateAndServe() }()
		go func() { _ = tcp.ActivateAndServe() }()
		n.closers = append(n.closers, func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
		return addr, nil
	}
	return "", fmt.Errorf("testnet: dns: no port free for both UDP and TCP: %w", lastErr)
}

// serveProxy is a forward proxy in the style of Squid. It tunnels (CONNECT)
// and forwards (absolute-URI GET) only to 127.0.0.1, whatever the host name
// (ports 443 and 80 go to the network's HTTPS and HTTP servers);
// hosts whose scenario says so get Squid's ERR_ACCESS_DENIED page or its
// ERR_CONNECT_FAIL upstream-failure page instead.
func (n *Network) serveProxy(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if r.Method != http.MethodConnect && r.URL.Host != "" {
		host = r.URL.Host
	}
	b, known := n.lookup(host)
	if known && b.proxy != "" {
		n.proxyPage(w, b.proxy)
		return
	}
	_, p, err := net.SplitHostPort(host)
	if err != nil {
		p = "80"
	}
	// The proxy's "internet" is this network: the standard ports reach its
	// web servers, so a catalog host aliased to a scenario works through it.
	switch p {
	case "443":
		p = port(n.HTTPS)
	case "80":
		p = port(n.HTTP)
	}
	target := net.JoinHostPort("127.0.0.1", p)
	if r.Method == http.MethodConnect {
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			n.proxyPage(w, "upstream-fail")
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			_ = up.Close()
			http.Error(w, "no hijack", http.StatusInternalServerError)
			return
		}
		c, rw, err := hj.Hijack()
		if err != nil {
			_ = up.Close()
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() {
			if rw.Reader.Buffered() > 0 {
				_, _ = io.CopyN(up, rw.Reader, int64(rw.Reader.Buffered()))
			}
			_, _ = io.Copy(up, c)
			_ = up.Close()
		}()
		_, _ = io.Copy(c, up)
		_ = c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		n.proxyPage(w, "upstream-fail")
		return
	}
	defer up.Close()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Connection")
	out.Header.Set("Connection", "close")
	if err := out.Write(up); err != nil {
		n.proxyPage(w, "upstream-fail")
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(up), out)
	if err != nil {
		n.proxyPage(w, "upstream-fail")
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.Header().Add("Via", "1.1 proxy."+Domain+" (squid/5.7)")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (n *Network) proxyPage(w http.ResponseWriter, kind string) {
	id := "squid"
	if kind == "upstream-fail" {
		id = "squid-upstream"
	}
	f := fingerprints.MustLoad()
	for _, fp := range f.Fingerprints {
		if fp.ID == id {
			for k, v := range fp.Sample.Headers {
				w.Header().Set(k, v)
			}
			w.WriteHeader(fp.Sample.Status)
			_, _ = io.WriteString(w, fp.Sample.Body)
			return
		}
	}
}
