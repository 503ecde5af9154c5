import { api, ask } from '../lib/api.js';
import { initI18n, t, currentLang, methodKey } from '../lib/i18n.js';

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
  const until = s.settings?.paused_until ? Date.parse(s.settings.paused_until) : 0;
  const paused = until > Date.now();
  $('prompts').textContent = paused ? t('promptsPausedUntil', [new Date(until).toLocaleTimeString(currentLang() === 'cy' ? 'cy-GB' : 'en-GB', { hour: '2-digit', minute: '2-digit', hour12: false })]) : t('promptsOn');
  $('prompts').dataset.paused = String(paused);
  $('pause').hidden = paused;
  $('resume').hidden = !paused;
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
    li.append(strong, ' ', t('recentLine', [b.host, t(methodKey(b.method) + '_short'), new Date(b.time).toLocaleTimeString(currentLang() === 'cy' ? 'cy-GB' : 'en-GB', { hour: '2-digit', minute: '2-digit', hour12: false })]));
    ul.append(li);
  }
  $('recent-none').hidden = s.recent.length > 0;
  document.body.dataset.ready = 'true';
}

async function refresh() { render(await ask('state')); }

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
  await refresh();
  // The background says when the helper's state changes; a slow poll covers a
  // background that restarted meanwhile.
  api.runtime.onMessage.addListener((m) => { if (m?.event === 'state') refresh(); });
  setInterval(refresh, 5000);
}

main();
