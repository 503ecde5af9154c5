import { api, ask } from '../lib/api.js';
import { initI18n, t, currentLang, methodKey } from '../lib/i18n.js';
import { notApprovedAt } from '../lib/common.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function render(s) {
  const h = s.helper;
  const el = $('helper-state');
  el.dataset.connected = String(h.connected);
  el.className = h.connected ? 'detour-state--connected' : 'detour-state--disconnected';
  el.textContent = t(h.connected ? 'helperConnected' : 'helperNotConnected');
  $('helper-error').textContent = h.connected ? '' : ' ' + t('helperAbsentExplain');
  $('reconnect').hidden = h.connected;
  $('helper-version').textContent = h.hello?.version ?? t('notAvailable');
  const wv = s.status?.whitelist?.version ?? h.hello?.whitelist_version;
  const stale = s.status?.whitelist?.stale ?? h.hello?.whitelist_stale;
  const wl = $('whitelist-version');
  wl.dataset.version = wv ?? '';
  if (wv === null || wv === undefined) wl.textContent = t('whitelistNone', [s.snapshot.built_at.slice(0, 10)]);
  else wl.textContent = t(stale ? 'whitelistStale' : 'whitelistFresh', [String(wv)]);
  const rep = s.status?.reports;
  if (rep?.device_revoked) $('reports').textContent = t('reportUnavailable_device_revoked');
  else $('reports').textContent = rep ? t('reportsLine', [String(rep.queued ?? 0), String(rep.sent ?? 0)]) : (s.report.available ? t('notAvailable') : t('reportUnavailable_' + s.report.why.replace(/-/g, '_')));
  $('reports').dataset.revoked = String(!!rep?.device_revoked);
  const st = s.settings ?? {};
  const byOrg = new Set(st.byOrg ?? []);
  const until = st.paused_until ? Date.parse(st.paused_until) : 0;
  const paused = until > Date.now();
  const off = st.prompts === false;
  $('prompts').textContent = off ? t('promptsOff') : paused ? t('promptsPausedUntil', [new Date(until).toLocaleTimeString(currentLang() === 'cy' ? 'cy-GB' : 'en-GB', { hour: '2-digit', minute: '2-digit', hour12: false })]) : t('promptsOn');
  $('prompts').dataset.paused = String(paused);
  $('prompts').dataset.state = off ? 'off' : paused ? 'paused' : 'on';
  $('prompts-managed').hidden = !byOrg.has('prompts');
  // A setting the organisation fixed cannot be changed here.
  $('pause').hidden = paused || byOrg.has('prompts');
  $('resume').hidden = !paused || byOrg.has('prompts');
  $('auto-report').textContent = t(st.report_automatically ? 'autoReportOn' : 'autoReportOff');
  $('auto-report-managed').hidden = !byOrg.has('report_automatically');
  $('org-row').hidden = !st.org;
  $('org').textContent = st.org ?? '';
  $('support').hidden = !st.support_url;
  if (st.support_url) $('support-link').href = st.support_url;
  const news = s.approved ?? [];
  $('approved').hidden = news.length === 0;
  $('approved-list').textContent = '';
  for (const a of news) {
    const li = document.createElement('li');
    li.className = 'govuk-notification-banner__heading';
    li.dataset.service = a.service;
    li.textContent = t('approvedLine', [a.name]);
    $('approved-list').append(li);
  }
  const ul = $('recent');
  ul.textContent = '';
  const seen = new Set(); // the latest block of each host
  for (const b of s.recent) {
    if (seen.has(b.host)) continue;
    seen.add(b.host);
    const li = document.createElement('li');
    li.dataset.host = b.host;
    const strong = document.createElement('strong');
    strong.textContent = b.serviceName || b.host;
    if (b.possible) li.dataset.verdict = 'possible';
    li.append(strong, ' ', t(b.possible ? 'recentLinePossible' : 'recentLine', [b.host, t(methodKey(b.method) + '_short'), new Date(b.time).toLocaleTimeString(currentLang() === 'cy' ? 'cy-GB' : 'en-GB', { hour: '2-digit', minute: '2-digit', hour12: false })]));
    ul.append(li);
  }
  $('recent-none').hidden = s.recent.length > 0;
  document.body.dataset.ready = 'true';
}

async function refresh() { render(await ask('state')); }

// ---- this tab: approved here? ----------------------------------------------------
async function renderHere() {
  let tabId = Number(params.get('tab'));
  if (!Number.isInteger(tabId) || tabId < 0 || !params.has('tab')) {
    try { tabId = (await api.tabs.query({ active: true, currentWindow: true }))[0]?.id; } catch { tabId = undefined; }
  }
  const rec = tabId === undefined ? null : await ask('tab-approval', { tabId }).catch(() => null);
  $('here').hidden = !rec;
  if (!rec) return;
  $('here').dataset.service = rec.service;
  $('here-line').textContent = t('hereApproved', [rec.name, rec.orgName]);
  $('here-note-wrap').hidden = !rec.note;
  $('here-note').textContent = rec.note; // the IT team's words, as text
}

// ---- working with another organisation? ------------------------------------------
let commonState = null;
const categoryName = (c) => t('category_' + c);

function link(name, url) {
  const a = document.createElement('a');
  a.className = 'govuk-link';
  a.href = url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.textContent = t('openService', [name]);
  a.addEventListener('click', (e) => { e.preventDefault(); api.tabs.create({ url }).catch(() => window.open(url, '_blank', 'noopener')); });
  return a;
}

function renderCommonResults(r) {
  const box = $('common-results');
  box.textContent = '';
  box.dataset.source = r.source;
  if (r.source === 'helper' && r.orgs.length > 0) {
    const p = document.createElement('p');
    p.className = 'govuk-body-s';
    p.id = 'common-for';
    p.textContent = t('commonFor', [r.orgs.map((o) => o.name).join(', ')]);
    box.append(p);
  }
  let any = false;
  for (const c of r.categories) {
    const h = document.createElement('h3');
    h.className = 'govuk-heading-s govuk-!-margin-bottom-1';
    h.textContent = categoryName(c.category);
    const list = () => {
      const ul = document.createElement('ul');
      ul.className = 'govuk-list detour-common-list';
      ul.dataset.category = c.category;
      return ul;
    };
    const sure = list();
    const unsure = list();
    for (const s of c.services) {
      any = true;
      const li = document.createElement('li');
      li.dataset.service = s.service;
      li.dataset.status = s.status;
      const strong = document.createElement('strong');
      strong.textContent = s.name;
      const tag = document.createElement('span');
      tag.className = 'govuk-body-s';
      if (r.source !== 'helper') tag.textContent = ' ' + t('commonCheckIT');
      else if (s.status === 'confirmed') tag.textContent = ' ' + t('commonApprovedByAll');
      else tag.textContent = ' ' + t('commonUnconfirmed', [notApprovedAt(s, r.orgs).map((x) => t('commonStatusAt', [t('status_' + x.status), x.name])).join(', ')]);
      if (s.agreed_by > 0) tag.textContent += ' ' + t('commonAgreedBy', [String(s.agreed_by)]);
      li.append(strong, tag, document.createElement('br'), link(s.name, s.url));
      (s.status === 'confirmed' ? sure : unsure).append(li);
    }
    box.append(h);
    if (sure.children.length === 0) {
      const p = document.createElement('p');
      p.className = 'govuk-body-s';
      p.textContent = t(r.source === 'helper' ? 'commonNothing' : 'commonNoneConfirmed');
      box.append(p);
    } else box.append(sure);
    // Those no one blocks but not every one has approved: one step away, so
    // the confirmed answer stays short.
    if (unsure.children.length > 0) {
      const d = document.createElement('details');
      d.className = 'govuk-details';
      d.dataset.category = c.category;
      const sum = document.createElement('summary');
      sum.className = 'govuk-details__summary';
      const st = document.createElement('span');
      st.className = 'govuk-details__summary-text';
      st.textContent = t(r.source === 'helper' ? 'commonMoreUnconfirmed' : 'commonMoreSnapshot', [String(unsure.children.length)]);
      sum.append(st);
      const body = document.createElement('div');
      body.className = 'govuk-details__text';
      body.append(unsure);
      d.append(sum, body);
      box.append(d);
    }
  }
  box.dataset.any = String(any);
}

async function initCommon() {
  let r;
  try { r = await ask('common', { orgs: [] }); } catch { r = null; }
  commonState = r;
  const degraded = !r || r.source !== 'helper';
  $('common-degraded').hidden = !degraded;
  $('common').dataset.source = r?.source ?? 'none';
  if (degraded) {
    $('common-degraded-text').textContent = t('commonDegraded_' + String(r?.why ?? 'failed').replace(/-/g, '_'), [String(r?.built_at ?? '').slice(0, 10)]);
    $('common-form').hidden = true;
    if (r) renderCommonResults(r);
    return;
  }
  const own = r.own && r.organisations.find((o) => o.id === r.own);
  $('common-own').hidden = !own;
  if (own) $('common-own').textContent = t('commonOwn', [own.name]);
  const box = $('common-orgs');
  box.textContent = '';
  for (const o of r.organisations) {
    if (own && o.id === own.id) continue;
    const div = document.createElement('div');
    div.className = 'govuk-checkboxes__item';
    const input = document.createElement('input');
    input.className = 'govuk-checkboxes__input';
    input.type = 'checkbox';
    input.id = 'org-' + o.id;
    input.value = o.id;
    input.name = 'org';
    const label = document.createElement('label');
    label.className = 'govuk-label govuk-checkboxes__label';
    label.htmlFor = input.id;
    label.textContent = o.name;
    div.append(input, label);
    box.append(div);
  }
  // Pre-tick the organisations picked last time (ids only, kept locally).
  let last = [];
  try { last = (await api.storage.local.get('commonPicked')).commonPicked ?? []; } catch { /* no storage */ }
  for (const id of Array.isArray(last) ? last : []) {
    const input = document.getElementById('org-' + id);
    if (input && input.closest('#common-orgs')) input.checked = true;
  }
  // A sector has many organisations: type to narrow the list (ticked ones stay).
  $('common-filter-group').hidden = r.organisations.length < 8;
  $('common-filter').addEventListener('input', () => {
    const q = $('common-filter').value.trim().toLowerCase();
    for (const item of box.querySelectorAll('.govuk-checkboxes__item')) {
      const input = item.querySelector('input');
      item.hidden = q !== '' && !input.checked && !item.textContent.toLowerCase().includes(q);
    }
  });
  $('common-form').hidden = false;
  $('common-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const picked = [...box.querySelectorAll('input:checked')].map((i) => i.value);
    const orgs = own ? [own.id, ...picked] : picked;
    const err = $('common-error');
    if (picked.length === 0 || orgs.length < 2) {
      err.hidden = false;
      err.textContent = t('commonPickError');
      $('common-group').classList.add('govuk-form-group--error');
      box.querySelector('input')?.focus();
      return;
    }
    err.hidden = true;
    $('common-group').classList.remove('govuk-form-group--error');
    api.storage.local.set({ commonPicked: picked }).catch(() => {});
    try {
      renderCommonResults(await ask('common', { orgs }));
    } catch (x) {
      $('common-results').textContent = t('commonFailed');
    }
  });
}

async function main() {
  await initI18n(params.get('lang'));
  $('lang-switch').setAttribute('lang', currentLang() === 'cy' ? 'en' : 'cy');
  $('lang-switch').addEventListener('click', async (e) => {
    e.preventDefault();
    await api.storage.local.set({ lang: currentLang() === 'cy' ? 'en' : 'cy' });
    location.reload();
  });
  $('pause').addEventListener('click', async () => { await ask('pause', { minutes: 60 }); refresh(); });
  $('resume').addEventListener('click', async () => { await ask('pause', { minutes: null }); refresh(); });
  $('reconnect').addEventListener('click', async () => { render(await ask('reconnect')); });
  await Promise.all([renderHere(), initCommon()]);
  await refresh();
  // The background says when the helper's state changes; a slow poll covers a
  // background that restarted meanwhile.
  api.runtime.onMessage.addListener((m) => { if (m?.event === 'state') refresh(); });
  setInterval(refresh, 5000);
}

main();
