// Maps the browser's own failure strings to Detour's method vocabulary.
// Chrome family: "net::ERR_*" (webNavigation and webRequest onErrorOccurred).
// Firefox: "NS_ERROR_*" / "SEC_ERROR_*" names (webRequest) or "Error code N"
// (webNavigation), where N is the nsresult number. Anything not listed maps to
// "unknown" with no confidence: the helper, if present, decides.
//
// A mapping is a candidate, not a verdict: confidence says how much the
// browser signal alone suggests a block by the organisation.

const NS_NET = 0x804b0000; // NS_ERROR_GENERATE_FAILURE(NS_ERROR_MODULE_NETWORK, 0)

// ignore: the failure is never an organisation's block (an ad blocker, the
// person stopped the load, a download, our own redirect to the prompt).
const CHROME = {
  'ERR_BLOCKED_BY_ADMINISTRATOR': { method: 'browser-policy', confidence: 0.95 },
  'ERR_BLOCKED_BY_CLIENT': { ignore: 'blocked-by-client' },
  'ERR_BLOCKED_BY_RESPONSE': { ignore: 'blocked-by-response' },
  'ERR_ABORTED': { ignore: 'aborted' },
  'ERR_NAME_NOT_RESOLVED': { method: 'dns-nxdomain', confidence: 0.6 },
  'ERR_NAME_RESOLUTION_FAILED': { method: 'dns-nxdomain', confidence: 0.4 },
  'ERR_CONNECTION_RESET': { method: 'tcp-reset', confidence: 0.6 },
  'ERR_CONNECTION_REFUSED': { method: 'tcp-reset', confidence: 0.4 },
  'ERR_CONNECTION_ABORTED': { method: 'tcp-reset', confidence: 0.4 },
  'ERR_EMPTY_RESPONSE': { method: 'tcp-reset', confidence: 0.4 },
  'ERR_CONNECTION_TIMED_OUT': { method: 'tcp-timeout', confidence: 0.5 },
  'ERR_TIMED_OUT': { method: 'tcp-timeout', confidence: 0.4 },
  'ERR_ADDRESS_UNREACHABLE': { method: 'tcp-timeout', confidence: 0.3 },
  'ERR_TUNNEL_CONNECTION_FAILED': { method: 'proxy-refused', confidence: 0.7 },
  'ERR_PROXY_CONNECTION_FAILED': { method: 'offline', confidence: 0.5 },
  'ERR_SSL_PROTOCOL_ERROR': { method: 'tls-reset', confidence: 0.6 },
  'ERR_CONNECTION_CLOSED': { method: 'tls-reset', confidence: 0.5 },
  'ERR_SSL_VERSION_OR_CIPHER_MISMATCH': { method: 'tls-reset', confidence: 0.3 },
  'ERR_CERT_AUTHORITY_INVALID': { method: 'tls-intercepted', confidence: 0.5 },
  'ERR_CERT_COMMON_NAME_INVALID': { method: 'tls-intercepted', confidence: 0.5 },
  'ERR_INTERNET_DISCONNECTED': { method: 'offline', confidence: 0.95 },
};

// Codes from Firefox's nsIXPCComponents_Results (xpcom/base/ErrorList.py).
const FIREFOX = {
  'NS_ERROR_UNKNOWN_HOST': { code: NS_NET + 0x1e, method: 'dns-nxdomain', confidence: 0.6 },
  'NS_ERROR_CONNECTION_REFUSED': { code: NS_NET + 0x0d, method: 'tcp-reset', confidence: 0.4 },
  'NS_ERROR_NET_RESET': { code: NS_NET + 0x14, method: 'tcp-reset', confidence: 0.6 },
  'NS_ERROR_NET_EMPTY_RESPONSE': { code: NS_NET + 0x24, method: 'tcp-reset', confidence: 0.4 },
  'NS_ERROR_NET_TIMEOUT': { code: NS_NET + 0x0e, method: 'tcp-timeout', confidence: 0.5 },
  'NS_ERROR_NET_TIMEOUT_EXTERNAL': { code: NS_NET + 0x55, method: 'tcp-timeout', confidence: 0.4 },
  'NS_ERROR_NET_INTERRUPT': { code: NS_NET + 0x47, method: 'tls-reset', confidence: 0.5 },
  // A proxy's own answers: Firefox maps the proxy's status to these.
  'NS_ERROR_PROXY_FORBIDDEN': { code: NS_NET + 0x57b, method: 'proxy-refused', confidence: 0.8 },
  'NS_ERROR_PROXY_UNAVAILABLE_FOR_LEGAL_REASONS': { code: NS_NET + 0x5ab, method: 'proxy-refused', confidence: 0.85 },
  'NS_ERROR_PROXY_AUTHENTICATION_FAILED': { code: NS_NET + 0x57f, method: 'unknown', confidence: 0 },
  'NS_ERROR_PROXY_BAD_GATEWAY': { code: NS_NET + 0x5de, method: 'site-down', confidence: 0.5 },
  'NS_ERROR_PROXY_GATEWAY_TIMEOUT': { code: NS_NET + 0x5e0, method: 'site-down', confidence: 0.4 },
  'NS_ERROR_PROXY_SERVICE_UNAVAILABLE': { code: NS_NET + 0x5df, method: 'offline', confidence: 0.4 },
  'NS_ERROR_PROXY_CONNECTION_REFUSED': { code: NS_NET + 0x48, method: 'offline', confidence: 0.5 },
  'NS_ERROR_UNKNOWN_PROXY_HOST': { code: NS_NET + 0x2a, method: 'offline', confidence: 0.5 },
  'NS_ERROR_OFFLINE': { code: NS_NET + 0x10, method: 'offline', confidence: 0.95 },
  'NS_BINDING_ABORTED': { code: NS_NET + 0x02, ignore: 'aborted' },
  'NS_ERROR_ABORT': { code: 0x80004004, ignore: 'aborted' },
  'NS_BINDING_CANCELLED_OLD_LOAD': { code: 0x805d0027, ignore: 'aborted' },
  // Content blocking, tracking protection and Safe Browsing: the browser's own
  // protections or an add-on, never the organisation's filter.
  'NS_ERROR_CONTENT_BLOCKED': { code: 0x805e0006, ignore: 'blocked-by-client' },
  'NS_ERROR_TRACKING_URI': { code: 0x805d0022, ignore: 'blocked-by-client' },
  'NS_ERROR_BLOCKED_URI': { code: 0x805d0025, ignore: 'blocked-by-client' },
  'NS_ERROR_MALWARE_URI': { code: 0x805d001e, ignore: 'blocked-by-client' },
  'NS_ERROR_PHISHING_URI': { code: 0x805d001f, ignore: 'blocked-by-client' },
  'NS_ERROR_BLOCKED_BY_POLICY': { code: 0x80780003, method: 'browser-policy', confidence: 0.95 },
  'SEC_ERROR_UNKNOWN_ISSUER': { method: 'tls-intercepted', confidence: 0.5 },
  'SSL_ERROR_BAD_CERT_DOMAIN': { method: 'tls-intercepted', confidence: 0.5 },
};

const FIREFOX_BY_CODE = new Map(
  Object.entries(FIREFOX).filter(([, v]) => v.code).map(([k, v]) => [v.code, k]));

// mapError(str) → {error, method, confidence, ignore?}. `error` is the
// normalised name (e.g. "net::ERR_CONNECTION_RESET", "NS_ERROR_UNKNOWN_HOST").
export function mapError(raw) {
  const unknown = (error) => ({ error, method: 'unknown', confidence: 0 });
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 200) return unknown('');
  const s = raw.trim();
  let m = /^(?:net::)?(ERR_[A-Z0-9_]+)$/.exec(s);
  if (m) {
    const e = CHROME[m[1]];
    const error = 'net::' + m[1];
    if (!e) return unknown(error);
    return e.ignore ? { error, method: 'unknown', confidence: 0, ignore: e.ignore } : { error, method: e.method, confidence: e.confidence };
  }
  m = /^Error code (\d+)$/i.exec(s) || /^(0x[0-9a-f]{8})$/i.exec(s);
  let name = null;
  if (m) name = FIREFOX_BY_CODE.get(Number(m[1])) ?? null;
  else if (/^(NS_|SEC_|SSL_|MOZILLA_PKIX_)[A-Z0-9_]+$/.test(s)) name = s;
  if (!name) return unknown(m ? s : s.slice(0, 80));
  const e = FIREFOX[name];
  if (!e) return unknown(name);
  return e.ignore ? { error: name, method: 'unknown', confidence: 0, ignore: e.ignore } : { error: name, method: e.method, confidence: e.confidence };
}
