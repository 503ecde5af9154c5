// Turns the browser's signals into a candidate and combines it with the
// helper's diagnosis. Pure functions, unit-tested.
import { mapError } from './errors.js';
import { BLOCKS, NON_BLOCKS } from './contract.js';

export { BLOCKS, NON_BLOCKS };
export const isBlock = (m) => BLOCKS.includes(m);

// A browser-only candidate prompts at or above this confidence.
export const BROWSER_THRESHOLD = 0.6;
// A helper verdict is trusted at or above this confidence.
export const HELPER_THRESHOLD = 0.5;
// What only the browser can know: the helper cannot see the browser's own
// policy or the browser's proxy settings, so these stand against "reachable".
const BROWSER_ONLY = ['browser-policy', 'proxy-refused'];
const NO_PROMPT = ['site-down', 'offline', 'captive-portal'];

// Headers that name a filter product (a hint; the helper's fingerprints decide).
// Only two well-known headers: the helper's fingerprints (shared/fingerprints)
// do the real matching.
const HEADER_HINTS = [
  { header: 'x-squid-error', re: /ERR_ACCESS_DENIED/i, vendor: 'squid' },
  { header: 'server', re: /zscaler/i, vendor: 'zscaler' },
];
const BLOCKISH_HOST = /(^|[.-])(block|blocked|blockpage|deny|denied|filter|filtering|restricted|websense|zscaler|zscloud|opendns|umbrella|fortiguard|netsweeper|smoothwall|lightspeed|iboss|sophos)([.-]|$)/i;

export const SELECTED_HEADERS = ['server', 'via', 'x-squid-error', 'content-type'];

// Keeps only the selected response headers, lower-cased, values cut short.
export function selectHeaders(list) {
  const out = {};
  for (const h of list ?? []) {
    const n = String(h.name ?? '').toLowerCase();
    if (SELECTED_HEADERS.includes(n)) out[n] = String(h.value ?? '').slice(0, 120);
  }
  return out;
}

export function isBlockishRedirect(host) {
  if (!host) return false;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('[')) return true;
  return BLOCKISH_HOST.test(host);
}

// browserCandidate({error, status, headers, redirectHost}) → {method,
// confidence, vendor, evidence: [{key, args}], ignore?}
export function browserCandidate(sig) {
  const evidence = [];
  if (sig.error) {
    const m = mapError(sig.error);
    evidence.push({ key: 'evBrowserError', args: [m.error || String(sig.error).slice(0, 80)] });
    if (m.ignore) return { method: 'unknown', confidence: 0, vendor: null, evidence, ignore: m.ignore, error: m.error };
    return { method: m.method, confidence: m.confidence, vendor: null, evidence, error: m.error };
  }
  // A fingerprint matched the redirect target or the page itself.
  const fp = sig.redirectMatch ?? sig.pageMatch;
  if (fp && fp.kind === 'block') {
    evidence.push(sig.redirectMatch ? { key: 'evRedirectMatch', args: [fp.vendor] } : { key: 'evPageMatch', args: [fp.vendor] });
    if (sig.redirectHost) evidence.push({ key: 'evRedirect', args: [sig.redirectHost] });
    if (sig.status) evidence.push({ key: 'evStatus', args: [String(sig.status)] });
    // A page match alone is weaker: a real document may quote a block page.
    const c = Math.min(0.9, (Number(fp.confidence) || 0) * (sig.redirectMatch ? 1 : 0.7));
    return { method: 'http-blockpage', confidence: c, vendor: fp.id, evidence };
  }
  if (fp) return { method: 'unknown', confidence: 0, vendor: null, evidence, ignore: 'look-alike' };
  let vendor = null;
  for (const h of HEADER_HINTS) {
    const v = sig.headers?.[h.header];
    if (v && h.re.test(v)) { vendor = h.vendor; evidence.push({ key: 'evHeader', args: [h.header, v] }); break; }
  }
  if (sig.redirectHost) {
    const blockish = isBlockishRedirect(sig.redirectHost);
    evidence.push({ key: 'evRedirect', args: [sig.redirectHost] });
    return { method: blockish ? 'http-status' : 'unknown', confidence: blockish ? 0.6 : 0.1, vendor, evidence };
  }
  if (sig.status) {
    const s = Number(sig.status);
    evidence.push({ key: 'evStatus', args: [String(s)] });
    const base = { 451: 0.8, 407: 0.7, 403: 0.5 }[s];
    if (base === undefined) return { method: 'unknown', confidence: 0, vendor: null, evidence };
    const confidence = vendor ? Math.max(base, 0.7) : base;
    return { method: vendor ? 'http-blockpage' : 'http-status', confidence, vendor, evidence };
  }
  return { method: 'unknown', confidence: 0, vendor: null, evidence };
}

// combine(candidate, helper) → {prompt, blocked, method, vendor, confidence,
// source, evidence: [{key,args}|{text}]}. `helper` is the diagnose result, or
// null when the helper is absent, lacks diagnose, or failed.
export function combine(cand, helper) {
  const evidence = [...(cand.evidence ?? [])];
  const out = (blocked, method, vendor, confidence, source, possible = false) =>
    ({ prompt: blocked || possible, blocked, possible, method, vendor: vendor ?? null, confidence, source, evidence });
  if (cand.ignore) return out(false, 'unknown', null, 0, 'browser');
  if (helper && typeof helper === 'object') {
    const texts = Array.isArray(helper.evidence) ? helper.evidence : [];
    // Facts are the evidence in coded form, one for one; from a helper
    // whose lists disagree, only the English text is used.
    const facts = Array.isArray(helper.facts) && helper.facts.length === texts.length ? helper.facts : [];
    texts.forEach((t, i) => {
      if (typeof t !== 'string') return;
      const item = { text: t.slice(0, 300) };
      const f = factOf(facts[i]);
      if (f) item.fact = f;
      evidence.push(item);
    });
    const hc = Number(helper.confidence) || 0;
    // The browser's own policy block and its proxy's refusal stand whatever
    // the helper saw from outside the browser.
    if (BROWSER_ONLY.includes(cand.method) && cand.confidence >= BROWSER_THRESHOLD) {
      return out(true, cand.method, cand.vendor ?? helper.vendor, cand.confidence, 'browser');
    }
    if (NO_PROMPT.includes(helper.method)) return out(false, helper.method, null, hc, 'helper');
    if (helper.blocked === true && isBlock(helper.method) && hc >= HELPER_THRESHOLD) {
      // tls-intercepted alone is a signal, not a block.
      if (helper.method === 'tls-intercepted' && cand.method === 'unknown') return out(false, 'tls-intercepted', helper.vendor, hc, 'helper');
      return out(true, helper.method, helper.vendor ?? cand.vendor, hc, 'helper');
    }
    // Possibly blocked: the alternative is offered, without claiming a block.
    if (helper.blocked !== true && helper.possible === true && isBlock(helper.method) && hc > 0) {
      return out(false, helper.method, helper.vendor ?? null, hc, 'helper', true);
    }
    if (helper.blocked === false && hc >= HELPER_THRESHOLD) return out(false, helper.method || 'reachable', null, hc, 'helper');
    // The helper is unsure: fall through to the browser's own signal.
  }
  if (NO_PROMPT.includes(cand.method)) return out(false, cand.method, null, cand.confidence, 'browser');
  const blocked = isBlock(cand.method) && cand.method !== 'tls-intercepted' && cand.confidence >= BROWSER_THRESHOLD;
  return out(blocked, cand.method, cand.vendor, cand.confidence, 'browser');
}

// factOf keeps a helper fact ({code, values}) only in its documented shape:
// a short code and string values, which the pages render as text.
export function factOf(f) {
  if (!f || typeof f !== 'object' || typeof f.code !== 'string' || !/^[a-z0-9]+([.-][a-z0-9]+)*$/.test(f.code) || f.code.length > 64) return null;
  const values = {};
  if (f.values && typeof f.values === 'object') {
    for (const [k, v] of Object.entries(f.values).slice(0, 8)) {
      if (/^[a-z]+$/.test(k) && typeof v === 'string') values[k] = v.slice(0, 300);
    }
  }
  return { code: f.code, values };
}

// Whether prompts are paused now (settings.paused_until is RFC 3339 or null).
export function isPaused(settings, now = Date.now()) {
  const p = settings?.paused_until;
  if (!p) return false;
  const t = Date.parse(p);
  return Number.isFinite(t) && t > now;
}
