import { test } from 'node:test';
import assert from 'node:assert/strict';
import { browserCandidate, combine, isPaused, selectHeaders, isBlockishRedirect, BROWSER_THRESHOLD, factOf } from '../../src/lib/verdict.js';

const H = (o) => ({ blocked: false, method: 'unknown', vendor: null, confidence: 0, evidence: [], ...o });

test('browser candidates', () => {
  assert.equal(browserCandidate({ error: 'net::ERR_BLOCKED_BY_ADMINISTRATOR' }).method, 'browser-policy');
  assert.equal(browserCandidate({ error: 'net::ERR_BLOCKED_BY_CLIENT' }).ignore, 'blocked-by-client');
  const s451 = browserCandidate({ status: 451 });
  assert.equal(s451.method, 'http-status');
  assert.ok(s451.confidence >= BROWSER_THRESHOLD);
  const s403 = browserCandidate({ status: 403 });
  assert.equal(s403.method, 'http-status');
  assert.ok(s403.confidence < BROWSER_THRESHOLD, 'a bare 403 is often the site itself');
  const squid = browserCandidate({ status: 403, headers: { 'x-squid-error': 'ERR_ACCESS_DENIED 0' } });
  assert.equal(squid.method, 'http-blockpage');
  assert.equal(squid.vendor, 'squid');
  assert.ok(squid.confidence >= BROWSER_THRESHOLD);
  assert.equal(browserCandidate({ status: 503 }).method, 'unknown');
  assert.equal(browserCandidate({ status: 404 }).confidence, 0);
  assert.equal(browserCandidate({ status: 302, redirectHost: 'block.example-filter.net' }).method, 'http-status');
  assert.equal(browserCandidate({ status: 302, redirectHost: 'accounts.google.com' }).method, 'unknown');
});

test('blockish redirects', () => {
  assert.ok(isBlockishRedirect('10.0.0.1'));
  assert.ok(isBlockishRedirect('gateway.zscaler.net'));
  assert.ok(isBlockishRedirect('blockpage.example.org'));
  assert.ok(!isBlockishRedirect('accounts.google.com'));
  assert.ok(!isBlockishRedirect('login.microsoftonline.com'));
  assert.ok(!isBlockishRedirect('unblocked.example.com'), 'a word inside another word does not count');
});

test('combine: helper absent falls back to the browser signal', () => {
  assert.equal(combine(browserCandidate({ error: 'net::ERR_CONNECTION_RESET' }), null).prompt, true);
  assert.equal(combine(browserCandidate({ error: 'net::ERR_CONNECTION_REFUSED' }), null).prompt, false);
  assert.equal(combine(browserCandidate({ error: 'net::ERR_INTERNET_DISCONNECTED' }), null).prompt, false);
  assert.equal(combine(browserCandidate({ error: 'net::ERR_CERT_AUTHORITY_INVALID' }), null).prompt, false, 'interception alone is not a block');
  assert.equal(combine(browserCandidate({ status: 503 }), null).prompt, false);
  assert.equal(combine(browserCandidate({ status: 403 }), null).prompt, false);
  assert.equal(combine(browserCandidate({ status: 451 }), null).prompt, true);
  assert.equal(combine(browserCandidate({ error: 'net::ERR_BLOCKED_BY_CLIENT' }), H({ blocked: true, method: 'tcp-reset', confidence: 1 })).prompt, false,
    'an ad blocker is never an organisation block, whatever the helper says');
});

test('combine: a confident helper wins', () => {
  const v = combine(browserCandidate({ status: 403 }), H({ blocked: true, method: 'http-blockpage', vendor: 'fortinet', confidence: 0.9, evidence: ['The page matches FortiGuard'] }));
  assert.deepEqual([v.prompt, v.method, v.vendor, v.source], [true, 'http-blockpage', 'fortinet', 'helper']);
  assert.ok(v.evidence.some((e) => e.text === 'The page matches FortiGuard'));
  assert.equal(combine(browserCandidate({ error: 'net::ERR_CONNECTION_RESET' }), H({ method: 'reachable', confidence: 0.9 })).prompt, false);
  // An unsure helper leaves the browser's signal standing.
  assert.equal(combine(browserCandidate({ error: 'net::ERR_CONNECTION_RESET' }), H({ method: 'unknown', confidence: 0.1 })).prompt, true);
  // A refused connection is weak alone, but the helper can confirm it.
  assert.equal(combine(browserCandidate({ error: 'net::ERR_CONNECTION_REFUSED' }), H({ blocked: true, method: 'tcp-reset', confidence: 0.8 })).prompt, true);
});

test('combine: site-down, offline and captive portal never prompt', () => {
  for (const m of ['site-down', 'offline', 'captive-portal']) {
    const v = combine(browserCandidate({ error: 'net::ERR_CONNECTION_RESET' }), H({ method: m, confidence: 0.3 }));
    assert.equal(v.prompt, false, m);
    assert.equal(v.method, m);
  }
});

test('combine: browser policy and proxy refusal stand against a reachable verdict', () => {
  const v = combine(browserCandidate({ error: 'net::ERR_BLOCKED_BY_ADMINISTRATOR' }), H({ method: 'reachable', confidence: 0.95 }));
  assert.deepEqual([v.prompt, v.method, v.source], [true, 'browser-policy', 'browser']);
  assert.equal(combine(browserCandidate({ error: 'net::ERR_TUNNEL_CONNECTION_FAILED' }), H({ method: 'reachable', confidence: 0.95 })).method, 'proxy-refused');
});

test('combine: hostile helper answers are contained', () => {
  const v = combine(browserCandidate({ status: 451 }), { blocked: true, method: 'not-a-method', confidence: 'high', evidence: [{ x: 1 }, 'y'.repeat(5000)] });
  assert.equal(v.method, 'http-status', 'an unknown method from the helper is ignored');
  assert.ok(v.evidence.every((e) => e.key || (typeof e.text === 'string' && e.text.length <= 300)));
});

test('paused', () => {
  const now = Date.parse('2026-01-01T10:00:00Z');
  assert.equal(isPaused({ paused_until: '2026-01-01T11:00:00Z' }, now), true);
  assert.equal(isPaused({ paused_until: '2026-01-01T09:00:00Z' }, now), false);
  assert.equal(isPaused({ paused_until: null }, now), false);
  assert.equal(isPaused({ paused_until: 'garbage' }, now), false);
  assert.equal(isPaused(null, now), false);
});

test('only selected headers are kept', () => {
  const h = selectHeaders([{ name: 'Server', value: 'FortiGate' }, { name: 'Set-Cookie', value: 'secret' }, { name: 'X-Squid-Error', value: 'ERR_ACCESS_DENIED 0' }]);
  assert.deepEqual(h, { server: 'FortiGate', 'x-squid-error': 'ERR_ACCESS_DENIED 0' });
  assert.equal(browserCandidate({ status: 403, headers: h }).vendor, 'squid');
  assert.equal(browserCandidate({ status: 403, headers: { server: 'nginx' } }).vendor, null);
});

test('a possible block from the helper prompts without claiming a block', () => {
  const v = combine(browserCandidate({ status: 403 }), H({ blocked: false, possible: true, method: 'http-status', confidence: 0.4,
    evidence: ['the answer is 403'], facts: [{ code: 'http.403-unknown' }] }));
  assert.equal(v.prompt, true);
  assert.equal(v.blocked, false);
  assert.equal(v.possible, true);
  assert.equal(v.method, 'http-status');
  assert.deepEqual(v.evidence.at(-1), { text: 'the answer is 403', fact: { code: 'http.403-unknown', values: {} } });
  // possible with a method that is not a block, or from an older helper: no prompt of its own.
  assert.equal(combine(browserCandidate({ status: 403 }), H({ possible: true, method: 'reachable', confidence: 0.7 })).prompt, false);
  assert.equal(combine(browserCandidate({ status: 403 }), H({ method: 'reachable', confidence: 0.7 })).possible, false);
  // A proven block stays a block.
  const b = combine(browserCandidate({ status: 403 }), H({ blocked: true, method: 'http-blockpage', confidence: 0.9 }));
  assert.equal(b.blocked, true);
  assert.equal(b.possible, false);
});

test('facts keep only their documented shape', () => {
  assert.deepEqual(factOf({ code: 'dns.answer', values: { host: 'a.example', addrs: '1.2.3.4', bad: 3, 'No-Way': 'x' } }),
    { code: 'dns.answer', values: { host: 'a.example', addrs: '1.2.3.4' } });
  for (const f of [null, 'x', { code: 3 }, { code: 'Bad Code' }, { code: 'x'.repeat(65) }]) assert.equal(factOf(f), null);
  assert.equal(factOf({ code: 'page.blockpage', values: { evidence: 'y'.repeat(900) } }).values.evidence.length, 300);
});
