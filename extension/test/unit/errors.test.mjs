import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapError } from '../../src/lib/errors.js';

const table = [
  // [browser string, method, minimum confidence, ignore]
  ['net::ERR_BLOCKED_BY_ADMINISTRATOR', 'browser-policy', 0.9],
  ['net::ERR_BLOCKED_BY_CLIENT', 'unknown', 0, 'blocked-by-client'],
  ['net::ERR_ABORTED', 'unknown', 0, 'aborted'],
  ['net::ERR_NAME_NOT_RESOLVED', 'dns-nxdomain', 0.5],
  ['net::ERR_CONNECTION_RESET', 'tcp-reset', 0.5],
  ['net::ERR_CONNECTION_REFUSED', 'tcp-reset', 0.1],
  ['net::ERR_CONNECTION_TIMED_OUT', 'tcp-timeout', 0.4],
  ['net::ERR_TUNNEL_CONNECTION_FAILED', 'proxy-refused', 0.6],
  ['net::ERR_SSL_PROTOCOL_ERROR', 'tls-reset', 0.5],
  ['net::ERR_CONNECTION_CLOSED', 'tls-reset', 0.4],
  ['net::ERR_CERT_AUTHORITY_INVALID', 'tls-intercepted', 0.4],
  ['net::ERR_INTERNET_DISCONNECTED', 'offline', 0.9],
  ['ERR_CONNECTION_RESET', 'tcp-reset', 0.5], // without the prefix
  ['NS_ERROR_PROXY_FORBIDDEN', 'proxy-refused', 0.6],
  ['NS_ERROR_UNKNOWN_HOST', 'dns-nxdomain', 0.5],
  ['NS_ERROR_NET_RESET', 'tcp-reset', 0.5],
  ['NS_ERROR_NET_TIMEOUT', 'tcp-timeout', 0.4],
  ['NS_ERROR_OFFLINE', 'offline', 0.9],
  ['NS_BINDING_ABORTED', 'unknown', 0, 'aborted'],
  ['NS_ERROR_CONTENT_BLOCKED', 'unknown', 0, 'blocked-by-client'],
  ['Error code 2152398878', 'dns-nxdomain', 0.5], // Firefox webNavigation: NS_ERROR_UNKNOWN_HOST
  ['Error code 2152398861', 'tcp-reset', 0.1], // NS_ERROR_CONNECTION_REFUSED
  ['Error code 2152398850', 'unknown', 0, 'aborted'], // NS_BINDING_ABORTED
  ['0x804B001E', 'dns-nxdomain', 0.5],
];

for (const [s, method, min, ignore] of table) {
  test(`maps ${s}`, () => {
    const m = mapError(s);
    assert.equal(m.method, method);
    assert.ok(m.confidence >= min, `confidence ${m.confidence} < ${min}`);
    assert.equal(m.ignore, ignore);
  });
}

test('unknown and hostile strings stay unknown', () => {
  for (const s of ['net::ERR_SOMETHING_NEW', 'NS_ERROR_SOMETHING_NEW', 'Error code 1', '', null, undefined, 42,
    '<script>alert(1)</script>', 'x'.repeat(1000), 'net::ERR_BLOCKED_BY_ADMINISTRATOR; drop', '__proto__', 'constructor', 'ERR_constructor']) {
    const m = mapError(s);
    assert.equal(m.method, 'unknown', String(s).slice(0, 40));
    assert.equal(m.confidence, 0);
    assert.equal(m.ignore, undefined);
  }
});

test('names are normalised with the net:: prefix', () => {
  assert.equal(mapError('ERR_NAME_NOT_RESOLVED').error, 'net::ERR_NAME_NOT_RESOLVED');
  assert.equal(mapError('Error code 2152398878').error, 'NS_ERROR_UNKNOWN_HOST');
});

test('Firefox proxy and protection codes', () => {
  assert.equal(mapError('Error code 2152400251').error, 'NS_ERROR_PROXY_FORBIDDEN'); // 0x804b057b
  assert.equal(mapError('Error code 2152400251').method, 'proxy-refused');
  assert.equal(mapError('NS_ERROR_PROXY_UNAVAILABLE_FOR_LEGAL_REASONS').method, 'proxy-refused');
  assert.equal(mapError('NS_ERROR_PROXY_BAD_GATEWAY').method, 'site-down', "a proxy's upstream failure is not a block");
  assert.equal(mapError('NS_ERROR_PROXY_AUTHENTICATION_FAILED').method, 'unknown');
  assert.equal(mapError('NS_ERROR_TRACKING_URI').ignore, 'blocked-by-client');
  assert.equal(mapError('Error code 2155347971').method, 'browser-policy'); // 0x80780003
});
