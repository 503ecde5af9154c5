// Builders for the requests the extension sends to the helper. Pure, and
// checked against shared/protocol/schema in the unit tests: optional fields
// are left out rather than sent as null, and strings are cut to the schema's
// limits.
import { NEEDS } from './contract.js';

export { NEEDS };

const label = (s) => (typeof s === 'string' ? s.replace(/[\x00-\x1f\x7f]/g, '').slice(0, 100) : '');

export function diagnoseRequest(origin, sig = {}) {
  const signal = {};
  if (label(sig.error)) signal.error = label(sig.error);
  const st = Number(sig.status);
  if (Number.isInteger(st) && st >= 100 && st <= 599) signal.status = st;
  if (typeof sig.redirectHost === 'string' && /^[a-z0-9.-]{1,253}$/.test(sig.redirectHost)) signal.redirect_host = sig.redirectHost;
  return Object.keys(signal).length ? { url: origin, signal } : { url: origin };
}

export function reportRequest({ host, method, vendor }, need) {
  const r = { host, need: NEEDS.includes(need) ? need : 'other' };
  if (method) r.method = method;
  if (label(vendor)) r.vendor = label(vendor);
  return r;
}

export function suggestRequest(host) { return { host }; }

export function pauseRequest(until) { return { set: { paused_until: until } }; }

export { commonRequest } from './common.js';
