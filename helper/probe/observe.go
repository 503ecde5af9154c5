package probe

import (
	"net/http"
	"net/netip"
	"net/url"

	"github.com/detour-project/detour/helper/fingerprint"
)

// What the probe saw, before any judgement. Measuring (prober.go) fills an
// observation; judging (judge.go) reads nothing else. Keeping the two apart
// is what lets the corpus tests replay a real product's answer as a set of
// observations, without a network, and lets the control measurement be
// weighed in the same single pass.

// observation is everything one probe measured.
type observation struct {
	url     *url.URL
	host    string
	catalog bool
	// hops are the HTTP exchanges of the redirect chain, in order; the last
	// one is where measuring stopped (a failure, a final answer, or a hop
	// that already says enough).
	hops []hopObs
	// ref is the connectivity check (nil when none was made or awaited).
	ref *refResult
	// control is the hub's view of the site from outside (nil: not asked).
	control *controlObs
	// timedOut: the overall deadline passed before measuring finished.
	timedOut bool
	// tooManyRedirects: the chain was still redirecting after maxHops.
	tooManyRedirects bool
}

// Failure kinds of one step, as the operating system reported them.
const (
	failRefused     = "refused"
	failReset       = "reset" // reset, aborted, broken pipe, or closed (EOF)
	failTimeout     = "timeout"
	failUnreachable = "unreachable"
	failOther       = "other"
)

// dnsObs is one lookup of the target host by the configured resolver.
type dnsObs struct {
	resolver string // "the system resolver" or "the resolver at H:P"
	loopback bool   // an explicitly given resolver on loopback (a test network)
	res      dnsResult
	alive    bool // for a dead answer: the resolver answers other questions
	second   []secondOpinion
}

// secondOpinion is another resolver's answer for the same name.
type secondOpinion struct {
	resolver string
	res      dnsResult
}

// proxyObs is what the explicit proxy did.
type proxyObs struct {
	host       string
	unresolved bool   // its name could not be resolved
	dialErr    string // it did not accept a connection
	// The CONNECT tunnel (https through a proxy).
	tunnelCut    bool   // no answer to CONNECT (cut or closed)
	tunnelErr    string // another failure reading the answer
	tunnelStatus int    // a non-2xx answer to CONNECT
	tunnelHeader http.Header
	tunnelBody   []byte
}

// hopObs is one GET of the chain: connecting, TLS, HTTP.
type hopObs struct {
	url *url.URL
	// Connecting.
	mapped           string // --connect-to destination host:port
	mappedUnresolved bool
	dns              *dnsObs // nil for --connect-to, an IP literal or a proxy
	sinkholed        bool    // no answer was an address to connect to: not connected
	onlyUnspecified  bool    // every usable answer was 0.0.0.0 or ::
	proxy            *proxyObs
	port             string
	tried            []netip.Addr
	connected        string // the remote address, when connected
	dialErr          string // a fail* kind
	dialErrText      string
	// TLS (https only).
	spokeFirst bool   // the server sent bytes before the ClientHello
	preTLSCut  string // the connection was cut before TLS began: the error
	tlsErr     string // a fail* kind for the handshake
	tlsErrText string
	noSNI      *bool // a ClientHello without the name was answered (asked after a reset)
	tls        *tlsInfo
	// HTTP.
	httpErr     string // a fail* kind
	httpErrText string
	badRequest  string // the request could not be made
	answered    bool
	status      int
	header      http.Header
	body        []byte
	location    string
	viaProxy    bool // a plain-http request answered by the proxy itself
}

// tlsInfo is what the certificate chain showed.
type tlsInfo struct {
	noCert  bool
	public  bool // verifies against the public roots (the web PKI)
	trusted bool // verifies against the machine's roots
	nameOK  bool
	expired bool // verifies, but only at a time inside its validity dates
	issuer  string
	match   *fingerprint.Match // inspection CA recognised by name
}

func (t *tlsInfo) anomalous() bool { return !t.public || !t.nameOK || t.expired }

// sitesOwn reports whether only the site (or its CDN) could have written
// what came over this session: a chain that ends in a public root and is
// valid for the name. A filter on the path cannot forge that; it can only
// cut the connection.
func (t *tlsInfo) sitesOwn() bool { return t != nil && t.public && t.nameOK && !t.expired }

// failed reports whether the hop ended before an HTTP answer.
func (h *hopObs) failed() bool { return !h.answered }

// controlObs is the hub's outside view of the host (see control.go).
type controlObs struct {
	host   string // the catalog host the hub fetched
	status int    // 0 when the hub could not fetch it (err says why)
	title  string
	length int
	public bool // the hub saw a chain ending in a public root
	// resolved: the hub's resolver found the name (it exists), even if
	// the hub could not fetch the page.
	resolved bool
	err      string
	// unavailable: the hub did not answer (refused, rate-limited, down);
	// then nothing is known about the site.
	unavailable bool
}
