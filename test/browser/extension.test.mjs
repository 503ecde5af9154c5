// The real extension in Debian Chromium with the real native host (relay and
// agent): the helper connects; a filter's block page on a catalog host ends on
// the prompt with an alternative and the organisation's note, quoted as text;
// a site that is merely down does not; the prompt and popup pass axe-core in
// English and Welsh; without the helper the extension degrades (snapshot
// suggestions, reporting visibly unavailable).
import { test, before, after, describe } from 'node:test';
import { rmSync } from 'node:fs';
import assert from 'node:assert/strict';
import { launchChromium, startHub, enrolHelper, tempDir, makeTLS, startSite, closedPort, serveBlockPage, screenshot, axe, waitFor, sleep, CHROME_ID } from './lib/harness.mjs';

const PROMPT = `chrome-extension://${CHROME_ID}/src/prompt/prompt.html`;
const SECRET_PATH = '/document/d/SECRET-DOC-ID/edit?usp=sharing';
// The organisation's note on its Google Docs policy: two lines, the second
// markup that must be shown as text and never run.
const HOSTILE = '<img src=x onerror=alert(1)>';
const NOTE = `Use Microsoft 365 for documents shared with other organisations; ask IT for a guest account.\n${HOSTILE}`;
const APPROVED_NOTE = `Approved for documents that other organisations share with you.\n${HOSTILE}`;

async function gotoQuiet(page, url) {
  // The extension may replace the navigation with its prompt: that is not an error here.
  await page.goto(url, { waitUntil: 'commit', timeout: 15000 }).catch(() => {});
}

async function promptPage(page) {
  await page.waitForURL((u) => u.href.startsWith(PROMPT), { timeout: 20000 });
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return page;
}

describe('with the helper', () => {
  let b, tls, block, down, refused, hub, home;
  before(async () => {
    // A hub with an organisation that blocks Google Docs and names Microsoft 365 instead.
    hub = await startHub();
    hub.admin('org', 'add', 'example-borough', '--name', 'Example Borough Council');
    hub.admin('policy', 'set', 'example-borough', 'google-docs', 'blocked', '--alternatives', 'microsoft-365', '--note', NOTE);
    hub.admin('policy', 'set', 'example-borough', 'microsoft-365', 'approved');
    // The device is enrolled with that organisation (which pins the hub's keys).
    home = tempDir('dt-home');
    const cfg = await enrolHelper(home, hub, 'example-borough');
    assert.equal(cfg.org, 'example-borough');
    tls = makeTLS(['docs.google.com', 'zoom.us', 'trello.com']);
    block = await startSite(serveBlockPage('squid'), { tls });
    down = await startSite((req, res) => { res.writeHead(503, { 'Content-Type': 'text/html' }); res.end('<title>Service Unavailable</title><h1 id="own-503">We are down for maintenance</h1>'); }, { tls });
    refused = await closedPort();
    b = await launchChromium({
      hostRules: [`MAP docs.google.com 127.0.0.1:${block.port}`, `MAP zoom.us 127.0.0.1:${down.port}`, `MAP trello.com 127.0.0.1:${refused}`],
      extraArgs: [`--ignore-certificate-errors-spki-list=${tls.spki}`],
      detourHome: home,
      env: {
        DETOUR_PROBE_CONNECT_TO: `docs.google.com:443:127.0.0.1:${block.port},zoom.us:443:127.0.0.1:${down.port},trello.com:443:127.0.0.1:${refused}`,
        DETOUR_PROBE_CA_FILE: tls.caFile,
        DETOUR_PROBE_PUBLIC_CA_FILE: tls.caFile,
      },
    });
  });
  after(async () => {
    await b?.close();
    await block?.close();
    await down?.close();
    await hub?.close();
    if (home) rmSync(home, { recursive: true, force: true });
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  });

  test('the popup reports a connected helper through relay and agent', async () => {
    const p = await b.openPopup();
    await p.waitForSelector('#helper-state[data-connected="true"]', { timeout: 20000 });
    const st = await b.helperState();
    assert.equal(st.connected, true);
    assert.equal(st.hello.protocol, 1);
    assert.equal(await p.textContent('#helper-version'), st.hello.version);
    assert.match(await p.textContent('#helper-state'), /^Connected$/);
    await screenshot(p, 'popup-connected-en');
    await p.close();
  });

  test('a filter block page on a catalog host ends on the prompt with the approved alternative', async () => {
    // The agent has synced the hub's signed whitelist.
    await waitFor(async () => {
      const p = await b.openPopup();
      const v = await p.getAttribute('#whitelist-version', 'data-version');
      await p.close();
      return Number(v) >= 4;
    }, { timeout: 30000, interval: 500, what: 'the whitelist from the hub' });
    const page = await b.context.newPage();
    let dialogs = 0;
    page.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
    await gotoQuiet(page, `https://docs.google.com${SECRET_PATH}`);
    await promptPage(page);
    const url = new URL(page.url());
    assert.equal(url.searchParams.get('host'), 'docs.google.com');
    assert.ok(['http-blockpage', 'http-status'].includes(url.searchParams.get('method')), url.href);
    assert.ok(!page.url().includes('SECRET'), 'the prompt URL carries no path');
    assert.match(await page.textContent('h1'), /Google Docs.* is blocked/);
    const alts = await page.$$eval('#alternatives li', (els) => els.map((e) => ({ id: e.dataset.service, href: e.querySelector('a').href, text: e.textContent })));
    assert.ok(alts.length >= 1, 'at least one alternative');
    const source = await page.getAttribute('body', 'data-suggest-source');
    const caps = (await b.helperState()).hello.capabilities;
    assert.ok(caps.includes('suggest'), 'the helper suggests');
    assert.equal(source, 'helper');
    assert.equal(await page.getAttribute('body', 'data-status'), 'blocked');
    assert.equal(alts[0].id, 'microsoft-365', JSON.stringify(alts));
    assert.equal(alts[0].href, 'https://www.office.com/');
    assert.match(alts[0].text, /Open Microsoft 365/);
    assert.match(alts[0].text, /Your organisation recommends it instead of Google Docs/);
    assert.match(alts[0].text, /Your organisation approves it/);
    assert.match(await page.textContent('#alt-intro'), /Your organisation has decided to block/);
    // The organisation's note, under the heading, quoted as text: the markup
    // in it is shown literally and makes no element.
    assert.equal(await page.getAttribute('body', 'data-org-note'), 'shown');
    assert.ok(await page.isVisible('#org-note'), 'the note is shown');
    assert.equal(await page.textContent('#org-note-heading'), 'What your IT team says:');
    const lines = await page.$$eval('#org-note blockquote p', (els) => els.map((e) => e.textContent));
    assert.deepEqual(lines, NOTE.split('\n'));
    assert.ok((await page.textContent('#org-note-text')).includes(HOSTILE));
    assert.equal((await page.$$('#org-note img, #org-note-text *:not(p)')).length, 0, 'the note made no elements');
    assert.equal(dialogs, 0);
    assert.ok(!(await page.isHidden('#approvals')), 'how many organisations approve the blocked tool');
    assert.match(await page.textContent('#approvals'), /0 organisations approve Google Docs/);
    // The helper's diagnosis decided, and named the filter.
    const d = (await b.decisions()).filter((x) => x.host === 'docs.google.com' && x.source).at(-1);
    assert.equal(d.source, 'helper', JSON.stringify(d));
    assert.equal(d.helperMethod, 'http-blockpage');
    assert.match(await page.textContent('#vendor'), /Squid/);
    // Technical details name the evidence, the browser's and the helper's.
    await page.click('#details summary');
    assert.match(await page.textContent('#evidence'), /403/);
    assert.match(await page.textContent('#evidence'), /Squid/);
    assert.match(await page.textContent('#tech'), /Detour helper's tests/);
    // Reporting: the device is enrolled and the helper reports, so the button works.
    assert.ok(caps.includes('report'));
    assert.equal((await b.helperState()).hello.enrolled, true);
    assert.equal(await page.isDisabled('#report'), false);
    assert.equal(await page.isChecked('#need-other'), true, 'one click reports with the default need');
    await page.check('#need-shared-document');
    await page.click('#report');
    await page.waitForSelector('#report-result[data-state="queued"]', { timeout: 15000 });
    assert.match(await page.textContent('#report-result'), /Open a document shared with me/);
    const status = await b.serviceWorker.evaluate(() => globalThis.detourDebug.request('status', {}));
    assert.ok(status.reports.queued + status.reports.sent >= 1, JSON.stringify(status.reports));
    await screenshot(page, 'prompt-blockpage-en');
    // Nothing stored holds the path.
    const stored = await b.serviceWorker.evaluate(async () => JSON.stringify([await chrome.storage.session.get(null), await chrome.storage.local.get(null)]));
    assert.ok(!stored.includes('SECRET') && !stored.includes('usp='), stored);
    assert.match(stored, /docs\.google\.com/);
    // The popup lists the block.
    const p = await b.openPopup();
    assert.ok(await p.$('#recent li[data-host="docs.google.com"]'));
    await screenshot(p, 'popup-recent-en');
    await p.close();
    await page.close();
  });

  test('a site that answers 503 itself does not show the prompt', async () => {
    const page = await b.context.newPage();
    await page.goto('https://zoom.us/j/123456', { waitUntil: 'load' });
    await sleep(1500);
    assert.ok(page.url().startsWith('https://zoom.us/'), page.url());
    assert.equal(await page.textContent('#own-503'), 'We are down for maintenance');
    assert.ok(!(await b.decisions()).some((d) => d.host === 'zoom.us' && d.prompt));
    await page.close();
  });

  test('a site that refuses connections is not called a block', async () => {
    const page = await b.context.newPage();
    await gotoQuiet(page, 'https://trello.com/b/board');
    const d = await waitFor(async () => (await b.decisions()).find((x) => x.host === 'trello.com'), { timeout: 15000, what: 'a decision for trello.com' });
    assert.equal(d.prompt, false, JSON.stringify(d));
    assert.equal(d.blocked, false, JSON.stringify(d));
    await sleep(300);
    assert.ok(!page.url().startsWith(PROMPT), page.url());
    await page.close();
  });

  test('paused prompts: a block is recorded but the tab stays', async () => {
    const p = await b.openPopup();
    await p.click('#pause');
    await p.waitForSelector('#prompts[data-paused="true"]');
    const page = await b.context.newPage();
    const n = (await b.decisions()).length;
    await gotoQuiet(page, 'https://docs.google.com/paused');
    const d = await waitFor(async () => (await b.decisions()).slice(n).find((x) => x.host === 'docs.google.com' && x.source), { timeout: 15000, what: 'a decision' });
    assert.equal(d.blocked, true);
    assert.equal(d.prompt, false, 'paused');
    await sleep(500);
    assert.ok(page.url().startsWith('https://docs.google.com/'), page.url());
    await p.click('#resume');
    await p.waitForSelector('#prompts[data-paused="false"]');
    const settings = await b.serviceWorker.evaluate(() => globalThis.detourDebug.request('settings', {}));
    assert.equal(settings.paused_until ?? null, null);
    await p.close();
    await page.close();
  });

  test('report automatically: the block is reported without asking, and the prompt still shows', async () => {
    const before = await b.serviceWorker.evaluate(() => globalThis.detourDebug.request('status', {}));
    await b.serviceWorker.evaluate(() => globalThis.detourDebug.request('settings', { set: { report_automatically: true } }));
    try {
      const page = await b.context.newPage();
      await gotoQuiet(page, 'https://docs.google.com/auto');
      await promptPage(page);
      assert.equal(await page.isHidden('#auto-reported'), false);
      assert.match(await page.textContent('#auto-reported'), /reported automatically/);
      const after = await b.serviceWorker.evaluate(() => globalThis.detourDebug.request('status', {}));
      assert.equal(after.reports.queued + after.reports.sent, before.reports.queued + before.reports.sent + 1);
      await page.close();
    } finally {
      await b.serviceWorker.evaluate(() => globalThis.detourDebug.request('settings', { set: { report_automatically: false } }));
    }
  });

  test('when the organisation approves a reported service, the popup says so', async () => {
    // Google Docs was reported above; the organisation now approves it.
    hub.admin('policy', 'set', 'example-borough', 'google-docs', 'approved', '--note', APPROVED_NOTE);
    const p = await b.openPopup();
    await p.waitForSelector('#approved-list li[data-service="google-docs"]', { timeout: 30000 });
    assert.match(await p.textContent('#approved-list'), /You reported Google Docs.*: your organisation now approves it/);
    assert.equal(await p.isHidden('#approved'), false);
    await screenshot(p, 'popup-approved-en');
    // And the prompt no longer offers an alternative as if it were blocked.
    const page = await b.context.newPage();
    await gotoQuiet(page, 'https://docs.google.com/again');
    await promptPage(page);
    assert.equal(await page.getAttribute('body', 'data-status'), 'approved');
    assert.match(await page.textContent('#approved-note'), /Your organisation lists Google Docs.* as approved/);
    // The note follows the policy: the new one, still as text.
    assert.deepEqual(await page.$$eval('#org-note blockquote p', (els) => els.map((e) => e.textContent)), APPROVED_NOTE.split('\n'));
    await page.close();
    await p.close();
  });

  test('axe-core self-check: it does report a known violation', async () => {
    const page = await b.context.newPage();
    await page.setContent('<html><body><img src="x.png"><button></button></body></html>');
    const ids = (await axe(page)).map((v) => v.id);
    assert.ok(ids.includes('image-alt') && ids.includes('button-name') && ids.includes('html-has-lang'), ids.join(','));
    await page.close();
  });

  for (const lang of ['en', 'cy']) {
    test(`axe-core: prompt and popup have no violations (${lang})`, async () => {
      const page = await b.context.newPage();
      const recent = () => b.serviceWorker.evaluate(async () => (await chrome.storage.session.get('recent')).recent ?? []);
      if ((await recent()).length === 0) { // run alone: make a block first
        await gotoQuiet(page, 'https://docs.google.com/');
        await promptPage(page);
      }
      const rec = (await recent())[0];
      assert.ok(rec, 'a recorded block');
      await page.goto(`${PROMPT}?id=${rec.id}&host=${rec.host}&method=${rec.method}&lang=${lang}`);
      await page.waitForSelector('body[data-ready="true"]');
      assert.equal(await page.getAttribute('html', 'lang'), lang);
      if (lang === 'cy') assert.match(await page.textContent('h1'), /rwystro/);
      // The organisation's note (by now the one given with the approval) stays
      // as written; its heading is translated.
      assert.equal(await page.textContent('#org-note-heading'), lang === 'cy' ? 'Beth mae eich tîm TG yn ei ddweud:' : 'What your IT team says:');
      assert.ok((await page.textContent('#org-note-text')).includes(HOSTILE));
      await page.click('#details summary');
      const v1 = await axe(page);
      assert.deepEqual(v1, [], `prompt (${lang}): ${JSON.stringify(v1, null, 1)}`);
      await screenshot(page, `prompt-${lang}`);
      const p = await b.openPopup(`?lang=${lang}`);
      const v2 = await axe(p);
      assert.deepEqual(v2, [], `popup (${lang}): ${JSON.stringify(v2, null, 1)}`);
      await screenshot(p, `popup-${lang}`);
      await p.close();
      await page.close();
    });
  }
});

describe('without the helper (degraded mode)', () => {
  let b, tls, block;
  before(async () => {
    tls = makeTLS(['docs.google.com']);
    block = await startSite(serveBlockPage('squid'), { tls });
    b = await launchChromium({ helper: false, hostRules: [`MAP docs.google.com 127.0.0.1:${block.port}`], extraArgs: [`--ignore-certificate-errors-spki-list=${tls.spki}`] });
  });
  after(async () => { await b?.close(); await block?.close(); if (tls) rmSync(tls.dir, { recursive: true, force: true }); });

  test('detects from browser signals, suggests from the snapshot, reporting says it needs the helper', async () => {
    const p = await b.openPopup();
    await p.waitForSelector('#helper-state[data-connected="false"]');
    assert.match(await p.textContent('#helper-state'), /Not connected/);
    await p.close();
    const page = await b.context.newPage();
    await gotoQuiet(page, `https://docs.google.com${SECRET_PATH}`);
    await promptPage(page);
    assert.equal(await page.getAttribute('body', 'data-suggest-source'), 'snapshot');
    assert.equal(await page.getAttribute('body', 'data-org-note'), 'none', 'no organisation, no note');
    assert.ok(await page.isHidden('#org-note'));
    assert.ok((await page.$$('#alternatives li')).length >= 1);
    assert.equal(await page.isDisabled('#report'), true);
    assert.match(await page.textContent('#report-unavailable'), /needs the Detour helper/);
    assert.match(await page.textContent('#alt-source'), /helper is not available.*may be out of date/);
    assert.equal(await page.getAttribute('body', 'data-method'), 'http-blockpage', 'the Squid header names the filter');
    assert.match(await page.textContent('#vendor'), /Squid/);
    await screenshot(page, 'prompt-degraded-en');
    await page.close();
  });
});
