import { api, ask } from '../lib/api.js';
import { initI18n, t, evidenceText, methodKey, needKey } from '../lib/i18n.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function row(dl, labelKey, value) {
  const div = document.createElement('div');
  div.className = 'govuk-summary-list__row';
  const dt = document.createElement('dt');
  dt.className = 'govuk-summary-list__key';
  dt.textContent = t(labelKey);
  const dd = document.createElement('dd');
  dd.className = 'govuk-summary-list__value';
  dd.textContent = value;
  div.append(dt, dd);
  dl.append(div);
}

// The helper's reasons have stable codes: say them in the page's language,
// keeping the helper's own sentence for a code this version does not know.
function reasonText(r, blockedName) {
  switch (r?.code) {
    case 'org-alternative': return t('reason_org_alternative', [blockedName]);
    case 'approved-here': return t('reason_approved_here');
    case 'approved-by-n': return t('reason_approved_by_n', [(/\d+/.exec(r.text ?? '') ?? ['?'])[0]]);
    case 'shared-features': return t('reason_shared_features', [blockedName]);
    case 'agreed-by-n': return t('reason_agreed_by_n', [(/\d+/.exec(r.text ?? '') ?? ['?'])[0]]);
    default: return typeof r?.text === 'string' ? r.text.slice(0, 200) : '';
  }
}

async function main() {
  await initI18n(params.get('lang'));
  const id = params.get('id') ?? '';
  let rec = null;
  try { rec = await ask('get-block', { id }); } catch { /* the background restarted */ }
  rec ??= { id, host: params.get('host') ?? '', scheme: 'https', method: params.get('method') ?? 'unknown', vendor: params.get('vendor'), evidence: [], serviceName: null };
  const name = rec.serviceName || rec.host;
  // A possible block is worded as one: the alternative without the claim.
  const possible = rec.possible === true;
  document.title = t(possible ? 'promptTitleForPossible' : 'promptTitleFor', [name]);
  $('headline').textContent = t(possible ? 'headlinePossible' : 'headline', [name]);
  $('how').textContent = possible ? t('possibleHow') : t(methodKey(rec.method));
  document.body.dataset.verdict = possible ? 'possible' : 'blocked';
  if (possible) {
    $('report-heading').textContent = t('reportHeadingPossible');
    $('report').textContent = t('reportButtonPossible');
  }
  if (rec.vendor) { $('vendor').hidden = false; $('vendor').textContent = t(possible ? 'vendorLinePossible' : 'vendorLine', [rec.vendorName ?? rec.vendor]); }
  document.body.dataset.method = rec.method;

  // Alternatives and the helper's state, asked for together.
  const sugP = ask('suggest', { host: rec.host }).catch(() => null);
  const stateP = ask('availability').catch(() => null);
  const sug = await sugP;
  const list = $('alternatives');
  const alts = (sug?.alternatives ?? []).filter((a) => a.url);
  document.body.dataset.suggestSource = sug?.source ?? 'none';
  document.body.dataset.status = sug?.status ?? 'unknown';
  if (sug?.status === 'approved' && !possible) {
    // Approved here, yet the network still blocks it (the filter has not
    // caught up, or it is a mistake): say so first; other approved tools
    // for the same job come second.
    $('headline').textContent = t('headlineApproved', [name]);
    const note = document.createElement('p');
    note.className = 'govuk-inset-text';
    note.id = 'approved-note';
    note.textContent = t('altApprovedHere', [name]);
    $('vendor').after(note);
    $('alt-heading').textContent = t('altHeadingApproved');
    $('alt-intro').textContent = t(alts.length ? 'altIntroHelper' : 'altNone');
  } else if (alts.length === 0) {
    $('alt-intro').textContent = t('altNone');
  } else {
    $('alt-intro').textContent = (sug.status === 'blocked' ? t('statusBlockedHere', [name]) + ' ' : '')
      + t(sug.source !== 'helper' ? 'altIntroSnapshot' : sug.org ? 'altIntroHelper' : 'altIntroHelperNoOrg');
  }
  // What the organisation's IT team wrote with its policy for this tool,
  // quoted under the heading: text only, one paragraph a line.
  const orgNote = typeof sug?.note === 'string' ? sug.note.trim().slice(0, 2000) : '';
  if (orgNote) {
    const quote = $('org-note-text');
    for (const line of orgNote.split('\n')) {
      if (!line.trim()) continue;
      const p = document.createElement('p');
      p.className = 'govuk-body';
      p.textContent = line;
      quote.append(p);
    }
    quote.lastElementChild?.classList.add('govuk-!-margin-bottom-0');
    $('org-note').hidden = false;
  }
  document.body.dataset.orgNote = orgNote ? 'shown' : 'none';
  for (const a of alts) {
    const li = document.createElement('li');
    li.className = 'detour-alternative';
    li.dataset.service = a.service;
    const link = document.createElement('a');
    link.className = 'govuk-button';
    link.setAttribute('role', 'button');
    link.setAttribute('draggable', 'false');
    link.href = a.url;
    link.textContent = t('openAlternative', [a.name]);
    li.append(link);
    const reasons = (a.reasons ?? []).map((r) => reasonText(r, name)).filter(Boolean);
    if (reasons.length) {
      const p = document.createElement('p');
      p.className = 'govuk-body-s';
      p.textContent = reasons.join(' · ');
      li.append(p);
    }
    list.append(li);
  }
  if (typeof sug?.approvals === 'number') {
    $('approvals').hidden = false;
    $('approvals').textContent = t(sug.approvals === 1 ? 'approvalsOne' : 'approvalsMany', [name, String(sug.approvals)]);
  }
  if (sug?.source === 'snapshot') {
    $('alt-source').hidden = false;
    $('alt-source').textContent = t(sug.helperError === -1 ? 'snapshotNote' : 'snapshotNoteNoList', [sug.built_at ? sug.built_at.slice(0, 10) : '?']);
  } else if (sug?.stale) {
    $('alt-source').hidden = false;
    $('alt-source').textContent = t('staleNote');
  }

  // Try again: the same site's front page (only scheme and host are kept).
  $('retry').addEventListener('click', () => {
    location.href = `${rec.scheme === 'http' ? 'http' : 'https'}://${rec.host}/`;
  });

  // Report.
  const state = await stateP;
  // What the organisation set by policy: its message (as text) and help link.
  const org = state?.org ?? {};
  if (org.message) {
    $('org-message-text').textContent = org.message;
    $('org-message').hidden = false;
  }
  if (org.support_url) {
    $('support-link').href = org.support_url;
    $('support').hidden = false;
  }
  const av = state?.report ?? { available: false, why: 'absent' };
  const button = $('report');
  if (rec.reported) {
    $('auto-reported').hidden = false;
    $('auto-reported').textContent = t(rec.reported.automatic ? 'reportedAutomatically' : 'reportQueued');
  }
  if (!av.available) {
    button.disabled = true;
    button.setAttribute('aria-disabled', 'true');
    button.classList.add('govuk-button--disabled');
    for (const r of document.querySelectorAll('input[name=need]')) r.disabled = true;
    $('report-unavailable').hidden = false;
    $('report-unavailable').textContent = t('reportUnavailable_' + av.why.replace(/-/g, '_'));
    button.setAttribute('aria-describedby', 'report-unavailable');
  }
  $('report-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (button.disabled) return;
    const need = document.querySelector('input[name=need]:checked')?.value ?? 'other';
    button.disabled = true;
    const out = $('report-result');
    const r = await ask('report', { id: rec.id, need }).catch(() => ({ ok: false, why: 'failed' }));
    out.className = 'govuk-body govuk-!-font-weight-bold';
    if (r.ok) {
      out.textContent = t('reportQueuedFor', [t(needKey(need))]);
      out.dataset.state = 'queued';
    } else {
      out.textContent = t('reportFailed_' + String(r.why ?? 'failed').replace(/-/g, '_'));
      out.dataset.state = 'failed';
      button.disabled = false;
    }
  });

  // Technical details.
  const tech = $('tech');
  row(tech, 'techHost', rec.host);
  row(tech, 'techVerdict', t(possible ? 'verdict_possible' : 'verdict_blocked'));
  row(tech, 'techMethod', rec.method);
  if (rec.vendor) row(tech, 'techVendor', rec.vendorName ?? rec.vendor);
  if (typeof rec.confidence === 'number') row(tech, 'techConfidence', `${Math.round(rec.confidence * 100)}%`);
  row(tech, 'techSource', t('source_' + (rec.source ?? 'browser')));
  for (const e of rec.evidence ?? []) {
    const li = document.createElement('li');
    li.textContent = evidenceText(e);
    $('evidence').append(li);
  }
  document.body.dataset.ready = 'true';
}

main();
