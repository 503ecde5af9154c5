// Detour's background: the helper connection, block detection on catalog
// hosts only, and the bridge the prompt and popup pages talk to.
import { api, browserName } from './lib/api.js';
import { Helper, HelperError, LOCAL_ABSENT, CODE_UNKNOWN_TYPE } from './lib/native.js';
import { CODES } from './lib/contract.js';
import { browserCandidate, combine, isPaused, selectHeaders, isBlockishRedirect } from './lib/verdict.js';
import { catalogHosts, serviceForHost, matchPatterns, urlFilters, originOf, snapshotAlternatives } from './lib/catalog.js';
import { SNAPSHOT } from './generated/snapshot.js';
import { matchPage, matchRedirect } from './lib/pagematch.js';
import { diagnoseRequest, reportRequest, suggestRequest, pauseRequest } from './lib/messages.js';
import { commonRequest, snapshotCommon, withNames } from './lib/common.js';
import { readManaged, parseManaged, effective } from './lib/managed.js';

const services = SNAPSHOT.services;
const hosts = catalogHosts(services);
const patterns = matchPatterns(hosts);
const filters = urlFilters(hosts);
const store = api.storage.session ?? api.storage.local;
const RECENT_MAX = 20;
const DIAGNOSE_TIMEOUT_MS = 8000;
const PROMPT_PATH = 'src/prompt/prompt.html';

// ---- the helper ------------------------------------------------------------
const helper = new Helper({ connect: (h) => api.runtime.connectNative(h), browser: browserName() });
let settings = null; // the helper's settings, or null when it has none

// Open pages (the popup) re-render when the helper connects or goes away.
function broadcast(kind) {
  try { api.runtime.sendMessage({ event: kind }).catch(() => {}); } catch { /* no page open */ }
}
helper.on('state', async (s) => {
  if (s.connected) await refreshSettings();
  broadcast('state');
});
// "What you reported is now approved", worked out by the agent from the
// whitelist: kept (service id and name only) for the popup.
async function noteApproved(data) {
  if (typeof data?.service !== 'string') return;
  const { approved = [] } = await api.storage.local.get('approved');
  const next = [{ service: data.service, name: String(data.name ?? data.service).slice(0, 200), at: Date.now() },
    ...approved.filter((a) => a.service !== data.service)].slice(0, 5);
  await api.storage.local.set({ approved: next });
  broadcast('state');
}

helper.on('event', (type, data) => {
  if (type === 'service-approved') noteApproved(data);
  if (type === 'settings-changed') settings = data;
  // Enrolled after our hello (the organisation's policy enrols as the agent
  // starts, often after the browser connected): the popup's "your
  // organisation" and the approved badge need the new org at once.
  if (type === 'enrolment-changed' && helper.hello) {
    helper.hello = { ...helper.hello, enrolled: data.enrolled === true, org: data.org ?? null, hub: data.hub ?? null };
  }
  if (type === 'whitelist-updated' && helper.hello) {
    helper.hello = { ...helper.hello, whitelist_version: data.version, whitelist_stale: false };
  }
  broadcast('state');
});

async function refreshSettings() {
  try { settings = await helper.request('settings', {}); } catch { settings = null; }
}

// The person's settings: the helper's, or kept here without a helper.
async function ownSettings() {
  if (settings) return settings;
  const { localSettings } = await api.storage.local.get('localSettings');
  return localSettings ?? { report_automatically: false, paused_until: null };
}

// What the organisation set by browser policy (lib/managed.js): read at start
// and again whenever the policy changes.
let managed = parseManaged({});
async function refreshManaged() { managed = await readManaged(api); }
let managedReady = refreshManaged();
api.storage.onChanged?.addListener((_, area) => {
  if (area === 'managed') { managedReady = refreshManaged().then(() => broadcast('state')); }
});

// The settings in force: managed values over the person's.
async function currentSettings() {
  await managedReady;
  return effective(await ownSettings(), managed);
}

api.runtime.onStartup?.addListener(() => { helper.start(); });
api.runtime.onInstalled?.addListener(() => { helper.start(); });
helper.start();

// ---- recent blocks (scheme and host only) -------------------------------------
async function recent() {
  const { recent: r } = await store.get('recent');
  return Array.isArray(r) ? r : [];
}
async function saveBlock(rec) {
  const r = (await recent()).filter((x) => x.id !== rec.id);
  r.unshift(rec);
  await store.set({ recent: r.slice(0, RECENT_MAX) });
}
async function getBlock(id) { return (await recent()).find((x) => x.id === id) ?? null; }

// ---- detection -------------------------------------------------------------
// The last decisions (host and verdict only), for the popup's diagnostics and
// the browser tests (read from the service worker as globalThis.detourDebug).
const decisions = [];
function decided(d) {
  decisions.push({ at: Date.now(), ...d });
  if (decisions.length > 20) decisions.shift();
}
globalThis.detourDebug = {
  decisions,
  helper: () => helper.state(),
  managed: () => managed,
  // Lets the browser tests drive the helper as the tray would (settings).
  request: (type, fields) => helper.request(type, fields),
};

const inflight = new Map(); // tabId → {host, at}

function catalogURL(url) {
  const o = originOf(url);
  if (!o) return null;
  const svc = serviceForHost(services, o.host);
  return svc ? { ...o, service: svc } : null;
}

async function handleSignal(tabId, url, sig, mode = 'prompt') {
  if (tabId < 0) return null;
  const o = catalogURL(url);
  if (!o) return null;
  const cand = browserCandidate(sig);
  if (cand.ignore) { decided({ host: o.host, prompt: false, method: 'unknown', ignored: cand.ignore }); return null; }
  // One decision per failed load: the same failure is often reported by both
  // webNavigation and webRequest; a later, clearer signal still counts. A new
  // load (onBeforeRequest) clears this.
  const last = inflight.get(tabId);
  const recent = last && last.host === o.host && Date.now() - last.at < 3000;
  // A page seen after a status or error signal for the same load adds nothing.
  if (recent && (mode === 'banner' || cand.confidence <= last.confidence)) return null;
  inflight.set(tabId, { host: o.host, at: Date.now(), confidence: cand.confidence });
  if (cand.confidence <= 0 && !sig.status && !sig.error) return null;

  let diag = null;
  let helperNote = null;
  try {
    diag = await helper.request('diagnose', diagnoseRequest(o.origin, { ...sig, error: cand.error ?? sig.error }), DIAGNOSE_TIMEOUT_MS);
  } catch (e) {
    helperNote = e instanceof HelperError ? e.code : CODES.INTERNAL;
  }
  const v = combine(cand, diag);
  const st = await currentSettings();
  const quiet = isPaused(st) || !st.prompts;
  decided({ host: o.host, prompt: v.prompt && !quiet, promptsOff: !st.prompts, mode, blocked: v.blocked, possible: v.possible, method: v.method, vendor: v.vendor,
    source: v.source, browserMethod: cand.method, helperMethod: diag?.method ?? null, helperError: helperNote });
  if (!v.blocked && !v.possible) return null;
  const rec = {
    id: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
    time: Date.now(),
    scheme: o.scheme,
    host: o.host,
    service: o.service.id,
    serviceName: o.service.name,
    category: o.service.category,
    method: v.method,
    possible: v.possible === true,
    vendor: v.vendor,
    vendorName: v.vendor ? SNAPSHOT.vendors?.[v.vendor] ?? v.vendor : null,
    confidence: v.confidence,
    source: v.source,
    helper: helperNote === null ? 'diagnosed' : helperNote === LOCAL_ABSENT ? 'absent' : helperNote === CODE_UNKNOWN_TYPE ? 'no-diagnose' : 'failed',
    evidence: v.evidence,
    paused: isPaused(st),
    promptsOff: !st.prompts,
    reported: null,
  };
  // Only a proven block is reported without asking: a possible one waits
  // for the person, who knows whether they could work.
  if (st.report_automatically && !rec.paused && !rec.possible) {
    try {
      await helper.request('report', reportRequest(rec, 'other'));
      rec.reported = { state: 'queued', need: 'other', automatic: true };
    } catch { /* the prompt offers the button */ }
  }
  await saveBlock(rec);
  // Paused by the person, or prompts off by the organisation: noticed and
  // kept (and reported automatically if so set), but nothing is shown.
  if (quiet) return null;
  if (mode === 'banner') return rec;
  await openPrompt(tabId, rec);
  return rec;
}

async function openPrompt(tabId, rec) {
  const q = new URLSearchParams({ id: rec.id, host: rec.host, method: rec.method });
  if (rec.vendor) q.set('vendor', rec.vendor);
  try {
    await api.tabs.update(tabId, { url: api.runtime.getURL(`${PROMPT_PATH}?${q}`) });
  } catch { /* the tab has gone */ }
}

// A new main-frame load of a catalog host starts a new decision.
api.webRequest.onBeforeRequest.addListener((d) => {
  inflight.delete(d.tabId);
}, { urls: patterns, types: ['main_frame'] });

// Navigation errors in the main frame (the browser's error page).
api.webNavigation.onErrorOccurred.addListener((d) => {
  if (d.frameId !== 0) return;
  handleSignal(d.tabId, d.url, { error: d.error });
}, { url: filters });

api.webRequest.onErrorOccurred.addListener((d) => {
  handleSignal(d.tabId, d.url, { error: d.error });
}, { urls: patterns, types: ['main_frame'] });

api.webRequest.onBeforeRedirect.addListener((d) => {
  const to = originOf(d.redirectUrl);
  if (!to || serviceForHost(services, to.host)) return;
  // The redirect URL is matched here and dropped: only its host is kept.
  const fp = matchRedirect(SNAPSHOT.rules, d.redirectUrl);
  if (fp) { handleSignal(d.tabId, d.url, { status: d.statusCode, redirectHost: to.host, redirectMatch: fp }); return; }
  if (!isBlockishRedirect(to.host)) return;
  handleSignal(d.tabId, d.url, { status: d.statusCode, redirectHost: to.host });
}, { urls: patterns, types: ['main_frame'] });

const headerSpec = ['responseHeaders'];
api.webRequest.onHeadersReceived.addListener((d) => {
  if (![403, 407, 451].includes(d.statusCode)) return;
  handleSignal(d.tabId, d.url, { status: d.statusCode, headers: selectHeaders(d.responseHeaders) });
}, { urls: patterns, types: ['main_frame'] }, headerSpec);

// ---- suggestions and reports ----------------------------------------------------
async function suggest(host) {
  const svc = serviceForHost(services, host);
  const fromSnapshot = (helperError) => ({
    source: 'snapshot', status: 'unknown', approvals: null, stale: true, built_at: SNAPSHOT.built_at,
    alternatives: snapshotAlternatives(services, svc), helperError,
  });
  let r;
  try {
    r = await helper.request('suggest', suggestRequest(host));
  } catch (e) {
    return fromSnapshot(e instanceof HelperError ? e.code : CODES.INTERNAL);
  }
  const alternatives = (Array.isArray(r.alternatives) ? r.alternatives : []).map((a) => {
    const id = typeof a.service === 'object' && a.service ? a.service.id : String(a.service ?? '');
    const s = services.find((x) => x.id === id) ?? (typeof a.service === 'object' ? a.service : { id });
    return { service: id, name: s.name ?? id, url: s.url ?? null, rank: a.rank, reasons: Array.isArray(a.reasons) ? a.reasons : [] };
  });
  // A helper that holds no whitelist yet knows no approvals: the bundled
  // catalog's tools for the same job are still worth showing, marked as such.
  if (alternatives.length === 0 && (helper.hello?.whitelist_version ?? null) === null) return fromSnapshot('no-list');
  return {
    source: 'helper', status: r.status ?? 'unknown', approvals: typeof r.approvals === 'number' ? r.approvals : null,
    alternatives, stale: !!r.stale, org: r.org ?? null, built_at: SNAPSHOT.built_at,
    note: typeof r.note === 'string' ? r.note : '', // the organisation's own words: the prompt shows them as text
  };
}

// deviceRevoked remembers the helper saying its IT team revoked this device
// (status reports.device_revoked, or a report refused with DEVICE_REVOKED):
// nothing can be reported until it is enrolled again.
let deviceRevoked = false;

function reportAvailability() {
  if (!helper.connected) return { available: false, why: 'absent' };
  if (!helper.can('report')) return { available: false, why: 'unsupported' };
  if (helper.hello?.enrolled === false) return { available: false, why: 'not-enrolled' };
  if (deviceRevoked) return { available: false, why: 'device-revoked' };
  return { available: true };
}

async function report(id, need) {
  const rec = await getBlock(id);
  if (!rec) throw new HelperError(CODES.INVALID_PARAMS, 'no such block');
  const av = reportAvailability();
  if (!av.available) return { ok: false, why: av.why };
  try {
    const r = await helper.request('report', reportRequest(rec, need));
    rec.reported = { state: r.state ?? 'queued', need, automatic: false };
    await saveBlock(rec);
    return { ok: true, result: r };
  } catch (e) {
    if (e.code === CODES.DEVICE_REVOKED) deviceRevoked = true;
    const why = { [CODES.NOT_ENROLLED]: 'not-enrolled', [CODES.DEVICE_REVOKED]: 'device-revoked' }[e.code] ?? 'failed';
    return { ok: false, why, code: e.code ?? CODES.INTERNAL };
  }
}

async function setPause(minutes) {
  // Prompts the organisation switched off are neither paused nor resumed.
  if ((await currentSettings()).byOrg.includes('prompts')) return currentSettings();
  const until = minutes ? new Date(Date.now() + minutes * 60000).toISOString() : null;
  if (helper.can('settings')) {
    try {
      settings = await helper.request('settings', pauseRequest(until));
      return currentSettings();
    } catch { /* fall back to local */ }
  }
  const own = await ownSettings();
  const local = { report_automatically: !!own.report_automatically, paused_until: until };
  await api.storage.local.set({ localSettings: local });
  return currentSettings();
}

async function fullState() {
  let status = null;
  if (helper.connected && helper.can('status')) {
    try { status = await helper.request('status', {}, 3000); } catch { /* hello is enough */ }
    if (status) deviceRevoked = status.reports?.device_revoked === true;
  }
  return {
    helper: helper.state(),
    status,
    settings: await currentSettings(),
    report: reportAvailability(),
    recent: await recent(),
    approved: (await api.storage.local.get('approved')).approved ?? [],
    snapshot: { built_at: SNAPSHOT.built_at, services: services.length, hosts: hosts.length },
  };
}

// A readable page on a catalog host, from the content script: matched here
// against the fingerprints, then dropped.
async function pageSignal(msg, sender) {
  const tabId = sender.tab?.id;
  if (tabId === undefined || !sender.url) return null;
  const fp = matchPage(SNAPSHOT.rules, { title: String(msg.title ?? ''), html: String(msg.html ?? '') });
  if (!fp) return null;
  const rec = await handleSignal(tabId, sender.url, { pageMatch: fp }, 'banner');
  return rec ? { banner: { id: rec.id, name: rec.serviceName, method: rec.method, possible: rec.possible } } : null;
}

// What a content script (running in a web page) may ask.
const contentCommands = {
  page: pageSignal,
  'open-prompt': async (m, sender) => {
    const rec = await getBlock(String(m.id ?? ''));
    if (rec && sender.tab?.id !== undefined) await openPrompt(sender.tab.id, rec);
    return null;
  },
};

// ---- common ground, and the positive signal -------------------------------------
// "Which tool works for all of us?" from the helper's signed whitelist; without
// a helper (or before it holds a whitelist) from the bundled catalog, which
// knows no organisation's decisions: the popup says which.
async function common(orgs) {
  const fromSnapshot = (why) => ({ source: 'snapshot', why, built_at: SNAPSHOT.built_at, own: null,
    ...withNames(snapshotCommon(services), services) });
  if (!helper.connected) return fromSnapshot('absent');
  if (!helper.can('common')) return fromSnapshot('unsupported');
  let r;
  try {
    r = await helper.request('common', commonRequest(orgs));
  } catch (e) {
    // An organisation the whitelist does not list is the helper's own sentence.
    if (e instanceof HelperError && e.code === CODES.INVALID_PARAMS) throw e;
    return fromSnapshot('failed');
  }
  if (!Array.isArray(r.organisations) || r.organisations.length === 0) return fromSnapshot('no-list');
  return { source: 'helper', built_at: SNAPSHOT.built_at, own: helper.hello?.org ?? null, ...withNames(r, services) };
}

let orgNames = { version: null, names: new Map() };
async function orgName(id) {
  const v = helper.hello?.whitelist_version ?? null;
  if (orgNames.version !== v || !orgNames.names.has(id)) {
    try {
      const r = await helper.request('common', commonRequest([]));
      orgNames = { version: v, names: new Map((r.organisations ?? []).map((o) => [o.id, o.name])) };
    } catch { /* the id is shown instead */ }
  }
  return orgNames.names.get(id) ?? id;
}

// On a catalog site that the person's organisation approves, the toolbar badge
// says so (staff are often unsure a tool nobody told them about is allowed).
// Only catalog hosts are listened to (filters); the browser clears a tab's
// badge when the tab goes elsewhere, and the popup trusts the record only
// while the badge is still set.
const approvalKey = (tabId) => `approval:${tabId}`;
async function markApproval(tabId, url) {
  const o = catalogURL(url);
  if (!o || tabId < 0) return;
  await store.remove(approvalKey(tabId));
  if (!helper.connected || !helper.can('suggest')) return;
  let r;
  try { r = await helper.request('suggest', suggestRequest(o.host)); } catch { return; }
  if (r?.status !== 'approved' || typeof r.org !== 'string') return;
  const rec = { host: o.host, service: o.service.id, name: o.service.name, url: o.service.url, org: r.org,
    orgName: await orgName(r.org), note: typeof r.note === 'string' ? r.note : '' };
  await store.set({ [approvalKey(tabId)]: rec });
  try {
    await api.action.setBadgeText({ tabId, text: '\u2713' });
    await api.action.setBadgeBackgroundColor({ tabId, color: '#00703c' });
    await api.action.setTitle({ tabId, title: api.i18n.getMessage('badgeApprovedTitle', [rec.name, rec.orgName]) });
  } catch { /* the tab has gone */ }
  decided({ host: o.host, approved: true });
}
api.webNavigation.onCompleted.addListener((d) => {
  if (d.frameId !== 0) return;
  markApproval(d.tabId, d.url);
}, { url: filters });
api.tabs?.onRemoved?.addListener((tabId) => { store.remove(approvalKey(tabId)); });

async function tabApproval(tabId) {
  if (!Number.isInteger(tabId) || tabId < 0) return null;
  const rec = (await store.get(approvalKey(tabId)))[approvalKey(tabId)] ?? null;
  if (!rec) return null;
  try { if (!(await api.action.getBadgeText({ tabId }))) return null; } catch { return null; }
  return rec;
}

const commands = {
  state: () => fullState(),
  availability: async () => {
    const st = await currentSettings();
    return { report: reportAvailability(), org: { org: st.org, support_url: st.support_url, message: st.message } };
  },
  reconnect: async () => { await helper.start(); return fullState(); },
  'get-block': (m) => getBlock(String(m.id ?? '')),
  suggest: (m) => suggest(String(m.host ?? '')),
  report: (m) => report(String(m.id ?? ''), String(m.need ?? 'other')),
  pause: (m) => setPause(m.minutes ?? null),
  common: (m) => common(Array.isArray(m.orgs) ? m.orgs : []),
  'tab-approval': (m) => tabApproval(Number(m.tabId)),
};

const extensionOrigin = api.runtime.getURL('');
api.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (sender.id !== api.runtime.id || !msg) return false;
  // Extension pages may use every command; content scripts only theirs.
  const fromPage = typeof sender.url === 'string' && sender.url.startsWith(extensionOrigin);
  const table = fromPage ? commands : contentCommands;
  if (!Object.hasOwn(table, msg.cmd)) return false;
  Promise.resolve().then(() => table[msg.cmd](msg, sender)).then(
    (r) => sendResponse({ ok: true, result: r }),
    (e) => sendResponse({ ok: false, error: String(e?.message ?? e) }));
  return true;
});
