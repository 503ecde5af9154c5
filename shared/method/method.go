// Package method is the one vocabulary for how a block happened (or why a
// failure is not a block). Probe output, the protocol, reports and the
// dashboard all use these strings; shared/protocol's schemas list the same set.
package method

// Block methods: the organisation's network or browser stopped the request.
const (
	DNSNXDomain    = "dns-nxdomain"
	DNSSinkhole    = "dns-sinkhole"
	TCPReset       = "tcp-reset"
	TCPTimeout     = "tcp-timeout"
	TLSReset       = "tls-reset"
	TLSIntercepted = "tls-intercepted"
	HTTPBlockpage  = "http-blockpage"
	HTTPStatus     = "http-status"
	ProxyRefused   = "proxy-refused"
	BrowserPolicy  = "browser-policy"
)

// Non-block reasons: a verdict that is not a block says why.
const (
	Reachable     = "reachable"
	SiteDown      = "site-down"
	Offline       = "offline"
	CaptivePortal = "captive-portal"
	Unknown       = "unknown"
)

// Blocks lists every block method, in the order the dashboard shows them.
var Blocks = []string{DNSNXDomain, DNSSinkhole, TCPReset, TCPTimeout, TLSReset,
	TLSIntercepted, HTTPBlockpage, HTTPStatus, ProxyRefused, BrowserPolicy}

// NonBlocks lists every reason a failure is not a block.
var NonBlocks = []string{Reachable, SiteDown, Offline, CaptivePortal, Unknown}

// IsBlock reports whether m names a block method.
func IsBlock(m string) bool {
	for _, b := range Blocks {
		if b == m {
			return true
		}
	}
	return false
}

// Valid reports whether m is any word of the vocabulary.
func Valid(m string) bool {
	if IsBlock(m) {
		return true
	}
	for _, b := range NonBlocks {
		if b == m {
			return true
		}
	}
	return false
}

// Needs are the reasons a person may give for needing a blocked service.
var Needs = []string{"meeting", "shared-document", "file-exchange", "project-board", "guidance", "other"}

// ValidNeed reports whether n is one of Needs.
func ValidNeed(n string) bool {
	for _, x := range Needs {
		if x == n {
			return true
		}
	}
	return false
}
