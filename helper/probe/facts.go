package probe

import (
	"sort"
	"strings"

	"github.com/detour-project/detour/shared/protocol"
)

// FactText is the English sentence for each fact code, with {name} where a
// value goes. `evidence` (English) is rendered from it; the extension's
// catalogs (extension/_locales/{en,cy}, keys "fact_" + the code with "." and
// "-" as "_") carry the same sentences for the person's own language, and a
// test keeps the three in step.
var FactText = map[string]string{
	"connect-to":            "--connect-to sends {from} to {to}, so the name is not looked up and the address is not judged",
	"connect-to.unresolved": "the --connect-to target {host} could not be resolved",

	"dns.answer":             "{resolver} answered {addrs} for {host}",
	"dns.block-address":      "{addr} is a known {vendor} block address",
	"dns.catalog-hidden":     "{host} is a catalog service, which exists, so the resolver is hiding it",
	"dns.dead":               "{resolver} did not answer at all ({error})",
	"dns.no-address":         "{resolver} says {host} has no address ({rcode})",
	"dns.not-connected":      "that address is never connected to",
	"dns.nowhere":            "the name does not exist anywhere: a typo or a retired address, not a block",
	"dns.nxdomain":           "{resolver} says {host} does not exist",
	"dns.only-unspecified":   "the only address is 0.0.0.0 or ::, which is never connected to",
	"dns.probably-typo":      "{host} is not a catalog service and no second resolver could confirm it exists: most likely a typo",
	"dns.second-agrees":      "{resolver} agrees that {host} does not exist",
	"dns.second-knows":       "but {resolver} knows {host} ({addrs}): the name exists and your resolver hides it",
	"dns.silent-for-name":    "{resolver} answers other questions but gave no answer about {host}",
	"dns.sinkhole":           "{host} cannot be at that address: the resolver points it at a sinkhole (no connection is made there)",
	"dns.some-skipped":       "some of those addresses cannot be a public service's and are skipped",
	"dns.unspecified-shared": "many DNS filters answer 0.0.0.0 or :: (Pi-hole, AdGuard Home, Cloudflare Gateway and others), so the filter is not named",

	"http.403-unknown":       "the answer is 403 Forbidden with no known filter's page, over a connection the network could have answered: possibly a filter's bare refusal, possibly the site's own",
	"http.407":               "the answer is 407: a proxy asks for credentials before it lets the request through",
	"http.451":               "the answer is 451 Unavailable For Legal Reasons, over a connection the network could have answered",
	"http.511":               "the answer is 511 Network Authentication Required: a captive portal",
	"http.bad-request":       "cannot request {url}: {error}",
	"http.cut-after-request": "the connection was cut after the request for {host} was sent: a filter reading the request",
	"http.failed":            "reading the answer from {host} failed: {error}",
	"http.no-answer":         "{host} accepted the request but did not answer in time",
	"http.not-found":         "the site itself answered {status} Not Found: its own error, not a block",
	"http.other":             "the site answered {status}",
	"http.reachable":         "the site answered {status}: it is reachable",
	"http.redirect":          "{host} answered {status}, redirecting to {url}",
	"http.server-error":      "the site answered {status}: a server error on its side, not a block",
	"http.site-refuses":      "the site itself answered {status} over its own certificate, which no filter on the way can forge: the site refuses this request, your organisation does not",

	"page.blockpage":           "the answer is {vendor}'s block page ({evidence})",
	"page.blockpage-sites-tls": "it came over the site's own certificate, where no filter could have written it, so it is reported with less certainty",
	"page.quotes-blockpage":    "the page quotes {vendor}'s block page inside a longer page that came over the site's own certificate: it is the site's own content, not a block",
	"page.captive-portal":      "the answer is a captive portal ({evidence}): sign in to the network first",
	"page.cdn-challenge":       "the answer is a {vendor} browser check ({evidence}): the site's own bot protection, not a block by your organisation; a browser passes it",
	"page.matched":             "the answer matched {vendor} ({evidence})",
	"page.reads-blocked":       "the page reads like a block page (\"{phrase}\") but is no known filter's: possibly blocked",
	"page.reads-blocked-title": "the page's title reads like a block page (\"{title}\") but it is no known filter's: possibly blocked",
	"page.server-default":      "the answer is {vendor}'s default error page ({evidence}): the site's own web server, not your organisation's filter",
	"page.site-protection":     "the site's own protection service ({vendor}) refused this request ({evidence}); that is the site's decision, not your organisation's filter",
	"page.upstream-failure":    "a proxy reports that it could not reach the site ({evidence}): the site is down or unreachable, not blocked",

	"probe.timeout": "the probe ran out of time",

	"proxy.auth":             "the proxy asks for credentials",
	"proxy.dropped":          "the proxy {proxy} dropped the connection: {error}",
	"proxy.gateway-error":    "a 502/503/504 from a proxy usually means it could not reach the site",
	"proxy.refusal-vendor":   "its refusal is {vendor}'s ({evidence})",
	"proxy.refused":          "the proxy {proxy} refused to open a tunnel to {target}: {status} (a browser shows ERR_TUNNEL_CONNECTION_FAILED)",
	"proxy.tunnel":           "the proxy opened a tunnel to {target}",
	"proxy.tunnel-cut":       "the proxy {proxy} gave no answer to the tunnel request for {target}: {error}",
	"proxy.unreachable":      "the proxy {proxy} did not accept a connection ({error}): nothing can be reached through it",
	"proxy.unresolved":       "the proxy {proxy} could not be resolved",
	"proxy.upstream-failure": "the proxy says it could not reach the site ({evidence}): the site is down, not blocked",
	"proxy.using":            "using the proxy {proxy}",

	"redirect.blockish":        "that address is on another site and its name or path says it is a block page, though no known filter's",
	"redirect.blockish-failed": "the site sent the browser to {url}, which looks like a filter's block page",
	"redirect.sites-own":       "{host} sent that redirect over its own certificate, which no filter on the way can forge: it is the site's choice, not a block",
	"redirect.too-many":        "the site redirected more than {n} times",
	"redirect.unreadable":      "{host} redirected to an unreadable address \"{location}\"",
	"redirect.unusable":        "{host} answered, but sent the browser to {url}, which cannot be used",

	"ref.failed":     "the connectivity check {host} failed too ({error})",
	"ref.online":     "the connectivity check {host} answered normally",
	"ref.redirected": "the connectivity check {host} was redirected to {location}",
	"ref.specific":   "other sites are reachable, so this failure is specific to {host}",
	"ref.unexpected": "the connectivity check {host} was answered with {status} instead of an empty 204",

	"tcp.connected":      "connected to {addr}",
	"tcp.cut-before-tls": "{host} accepted the connection, then cut it before TLS began ({error})",
	"tcp.failed":         "connecting to {host} ({addrs} port {port}) failed: {error}",
	"tcp.refused":        "{host} ({addrs} port {port}) refused the connection: nothing is listening there. That is how a site that is down looks, so it is not reported as a block",
	"tcp.reset":          "{host} ({addrs} port {port}) accepted the connection and reset it at once",
	"tcp.timeout":        "connecting to {host} ({addrs} port {port}) timed out: the connection attempts were dropped",
	"tcp.unreachable":    "there is no route to {host} ({addrs} port {port})",

	"tls.answers-without-name":    "the same server answers a ClientHello that does not name the site, so it is the name that is filtered",
	"tls.browser-refuses":         "browsers on this machine will refuse that certificate",
	"tls.cut-after-hello":         "the connection was cut right after the TLS ClientHello naming {host}: this is how SNI filtering looks",
	"tls.cuts-without-name":       "the same server also cuts a ClientHello without the name",
	"tls.expired-sites-fault":     "an out-of-date certificate is the site's own fault, not a block",
	"tls.failed":                  "the TLS handshake with {host} failed: {error}",
	"tls.inspection-ca":           "the certificate chain names \"{name}\", a {vendor} TLS-inspection CA",
	"tls.inspection-signal":       "TLS inspection is a sign of a filter rather than a block by itself",
	"tls.no-answer":               "the TLS ClientHello naming {host} got no answer",
	"tls.no-cert":                 "the server presented no certificate",
	"tls.other-name":              "the certificate is valid but for another name; something answered in the site's place",
	"tls.private-ca-loads":        "the certificate comes from a CA this machine trusts that is not public and names no inspection product; the page loads",
	"tls.private-trusted":         "the TLS certificate for {host} is issued by \"{issuer}\", which is not a public CA, but this machine trusts it (an inspection CA installed by IT, or a private one)",
	"tls.private-trusted-expired": "the TLS certificate for {host} is issued by \"{issuer}\", which is not a public CA, though this machine trusts it; the certificate is outside its validity dates",
	"tls.private-untrusted":       "the TLS certificate for {host} is issued by \"{issuer}\", which is not a public CA, and this machine does not trust it either",
	"tls.public":                  "the TLS certificate for {host} is issued by \"{issuer}\", a public CA",
	"tls.public-expired":          "the TLS certificate for {host} is from a public CA (\"{issuer}\") but is outside its validity dates",
	"tls.public-other-name":       "the TLS certificate (issued by \"{issuer}\", a public CA) is not valid for {host}",
	"tls.server-spoke-first":      "the server spoke before the TLS handshake: it is not a TLS server",

	"browser.error":              "the browser reported {error}",
	"browser.status":             "the browser saw status {status}",
	"browser.error-agrees":       "the browser reported {error}, which agrees",
	"browser.status-agrees":      "the browser saw status {status}, which agrees",
	"browser.error-decides":      "the browser reported {error}; the probe could not tell, so the browser's observation decides",
	"browser.status-decides":     "the browser saw status {status}; the probe could not tell, so the browser's observation decides",
	"browser.error-policy":       "the browser reported {error}: the browser itself blocks this site by enterprise policy",
	"browser.status-policy":      "the browser saw status {status}: the browser itself blocks this site by enterprise policy",
	"browser.redirect-blockpage": "the browser was redirected to {host}, {vendor}'s block page",
	"browser.redirect-agrees":    "the browser was redirected to {host}, {vendor}'s block page, which agrees",

	"verdict.captive": "a captive portal is intercepting web requests: sign in to the network first",
	"verdict.offline": "nothing else is reachable either, so the network is down rather than this site blocked",

	"control.same":        "the hub, from outside this network, got the same answer from {host} (status {status}): the site answers everyone this way, so this network is not what stops it",
	"control.differs":     "the hub, from outside this network, reached {host} normally (status {status}, title \"{title}\"): this network treats the site differently",
	"control.exists":      "the hub, from outside this network, reached {host} (status {status}): the name exists, so this network's resolver hides it",
	"control.unreachable": "the hub, from outside this network, could not fetch {host} either ({error}), so it cannot tell whether this network interferes",
	"control.nowhere":     "the hub, from outside this network, cannot find the name {host} either ({error}): it does not exist anywhere, so it is not a block",
	"control.unavailable": "the hub's control measurement was not available ({error})",
}

// Render writes a fact in English.
func Render(f protocol.Fact) string {
	t, ok := FactText[f.Code]
	if !ok {
		t = f.Code
	}
	if len(f.Values) == 0 {
		return t
	}
	keys := make([]string, 0, len(f.Values))
	for k := range f.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, "{"+k+"}", f.Values[k])
	}
	return strings.NewReplacer(pairs...).Replace(t)
}

// tidyFacts keeps facts within the protocol's limits (at most 50, values
// without control characters and at most maxEvidenceLen characters).
func tidyFacts(in []protocol.Fact) []protocol.Fact {
	out := make([]protocol.Fact, 0, min(len(in), maxEvidence))
	for _, f := range in {
		if len(out) == maxEvidence {
			out[maxEvidence-1] = protocol.Fact{Code: "probe.more"}
			break
		}
		if len(f.Values) > 0 {
			vs := make(map[string]string, len(f.Values))
			for k, v := range f.Values {
				vs[k] = tidyText(v, maxFactValueLen)
			}
			f.Values = vs
		}
		out = append(out, f)
	}
	return out
}

const maxFactValueLen = 300

// englishEvidence renders facts as the evidence sentences.
func englishEvidence(fs []protocol.Fact) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, Render(f))
	}
	return tidyEvidence(out)
}

func init() { FactText["probe.more"] = "… (further observations left out)" }
