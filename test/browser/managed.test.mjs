// Settings an organisation sets for the extension by browser policy, in real
// Chromium with a real policy file: Chromium on Linux reads
// /etc/chromium/policies/managed/*.json at start, and the "3rdparty" policy
// reaches the extension as chrome.storage.managed (checked against the
// schema the manifest declares). "prompts": false is honoured (the block is
// noticed, no prompt opens) and the popup says the setting is the
// organisation's; the organisation's message and support link show in the
// prompt. The same in Debian's firefox-esr, which reads
// /etc/firefox/policies/policies.json ("3rdparty" → "Extensions" → our id
// reaches browser.storage.managed). The policy files are machine-wide, so it is removed afterwards even
// when a test fails (run under flock /tmp/detour-heavy.lock, as every
// browser test is, so that no other browser starts meanwhile).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { launchChromium, launchFirefox, startRefusingProxy, makeTLS, startSite, serveBlockPage, screenshot, axe, waitFor, sleep, CHROME_ID, FIREFOX_ID } from './lib/harness.mjs';

export const POLICY_FILE = process.env.DETOUR_CHROMIUM_POLICY ?? '/etc/chromium/policies/managed/detour-test.json';
export const FIREFOX_POLICY_FILE = process.env.DETOUR_FIREFOX_POLICY ?? '/etc/firefox/policies/policies.json';
const PROMPT = `chrome-extension://${CHROME_ID}/src/prompt/prompt.html`;
const MESSAGE = 'Blocked tools are reviewed every Monday. <b>Not markup</b>';
const SUPPORT = 'https://it.example-council.test/detour';

// A policy file written here, and how to put things back: what was there
// before (restored), or the folders made for it (removed).
const undo = new Map(); // path → {before: Buffer|null, createdDir: string|null}
function writeFileForTest(path, content) {
  if (!undo.has(path)) {
    const dir = dirname(path);
    let createdDir = null;
    if (!existsSync(dir)) {
      let d = dir;
      while (!existsSync(dirname(d))) d = dirname(d);
      createdDir = d;
      mkdirSync(dir, { recursive: true });
    }
    undo.set(path, { before: existsSync(path) ? readFileSync(path) : null, createdDir });
  }
  writeFileSync(path, content);
}
function writePolicy(extensionSettings) {
  writeFileForTest(POLICY_FILE, JSON.stringify({ '3rdparty': { extensions: { [CHROME_ID]: extensionSettings } } }, null, 2));
}
function removePolicy() {
  for (const [path, u] of undo) {
    if (u.before) writeFileSync(path, u.before);
    else rmSync(path, { force: true });
    if (u.createdDir) rmSync(u.createdDir, { recursive: true, force: true });
    undo.delete(path);
  }
}
// Even a crash or ^C leaves no policy behind for the next browser test.
process.on('exit', removePolicy);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { removePolicy(); process.exit(130); });

async function gotoQuiet(page, url) {
  await page.goto(url, { waitUntil: 'commit', timeout: 15000 }).catch(() => {});
}

describe('managed settings by Chromium policy', () => {
  let tls, block;
  before(async () => {
    tls = makeTLS(['docs.google.com']);
    block = await startSite(serveBlockPage('squid'), { tls });
  });
  after(async () => {
    removePolicy();
    await block?.close();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  });
  const launch = () => launchChromium({ helper: false, hostRules: [`MAP docs.google.com 127.0.0.1:${block.port}`], extraArgs: [`--ignore-certificate-errors-spki-list=${tls.spki}`] });

  test('prompts off by policy: the block is noticed, no prompt opens, the popup says it is the organisation\'s', async () => {
    writePolicy({ prompts: false, org: 'example-council', support_url: SUPPORT, unknown_setting: 1 });
    const b = await launch();
    try {
      const m = await waitFor(async () => {
        const v = await b.serviceWorker.evaluate(() => globalThis.detourDebug.managed());
        return v.names.length > 0 && v;
      }, { what: 'managed settings', timeout: 15000 });
      assert.deepEqual(m.values, { prompts: false, org: 'example-council', support_url: SUPPORT });
      const page = await b.context.newPage();
      await gotoQuiet(page, 'https://docs.google.com/document/d/X/edit');
      const d = await waitFor(async () => (await b.decisions()).find((x) => x.host === 'docs.google.com' && x.blocked), { what: 'a decision for docs.google.com', timeout: 20000 });
      assert.equal(d.promptsOff, true);
      assert.equal(d.prompt, false);
      // The decision is taken before a prompt would open: give it time to (not) happen.
      await sleep(1500);
      assert.ok(!page.url().startsWith(PROMPT), `no prompt opened (at ${page.url()})`);
      await page.close();

      const p = await b.openPopup();
      assert.equal(await p.getAttribute('#prompts', 'data-state'), 'off');
      assert.equal(await p.textContent('#prompts'), 'Off');
      assert.ok(await p.isVisible('#prompts-managed'));
      assert.equal(await p.textContent('#prompts-managed'), 'Set by your organisation');
      assert.ok(await p.isHidden('#pause'), 'a setting the organisation fixed has no pause button');
      assert.ok(await p.isHidden('#auto-report-managed'), 'report_automatically was not set by policy');
      assert.equal(await p.textContent('#org'), 'example-council');
      assert.equal(await p.getAttribute('#support-link', 'href'), SUPPORT);
      // The block is still listed: noticed, not shown.
      assert.ok(await p.$('#recent li[data-host="docs.google.com"]'));
      assert.deepEqual(await axe(p), []);
      await screenshot(p, 'popup-managed-en');
      await p.goto(b.url('src/popup/popup.html?lang=cy'));
      await p.waitForSelector('body[data-ready="true"]');
      assert.equal(await p.textContent('#prompts-managed'), "Wedi'i osod gan eich sefydliad");
      assert.equal(await p.textContent('#prompts'), 'I ffwrdd');
      assert.deepEqual(await axe(p), []);
      await screenshot(p, 'popup-managed-cy');
    } finally {
      await b.close();
    }
  });

  test('prompts on, with the organisation\'s message and support link in the prompt', async () => {
    writePolicy({ prompts: true, report_automatically: false, message: MESSAGE, support_url: SUPPORT });
    const b = await launch();
    try {
      await waitFor(() => b.serviceWorker.evaluate(() => globalThis.detourDebug.managed().names.length === 4), { what: 'managed settings', timeout: 15000 });
      const page = await b.context.newPage();
      await gotoQuiet(page, 'https://docs.google.com/document/d/X/edit');
      await page.waitForURL((u) => u.href.startsWith(PROMPT), { timeout: 20000 });
      await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
      assert.ok(await page.isVisible('#org-message'));
      assert.equal(await page.textContent('#org-message-text'), MESSAGE, 'shown as text');
      assert.equal(await page.$('#org-message-text b'), null);
      assert.equal(await page.getAttribute('#support-link', 'href'), SUPPORT);
      assert.deepEqual(await axe(page), []);
      await screenshot(page, 'prompt-managed-en');
      const p = await b.openPopup();
      assert.equal(await p.getAttribute('#prompts', 'data-state'), 'on');
      assert.ok(await p.isVisible('#prompts-managed'));
      assert.ok(await p.isVisible('#auto-report-managed'));
      assert.equal(await p.textContent('#auto-report'), 'Off');
    } finally {
      await b.close();
    }
  });
});

describe('managed settings by Firefox policies.json', () => {
  let proxy;
  before(async () => { proxy = await startRefusingProxy(); });
  after(async () => { removePolicy(); await proxy?.close(); });
  const policy = (settings) => writeFileForTest(FIREFOX_POLICY_FILE, JSON.stringify({ policies: { '3rdparty': { Extensions: { [FIREFOX_ID]: settings } } } }, null, 2));
  const prompt = (ff) => ff.url('src/prompt/prompt.html');
  const href = (page) => page.evaluate(() => location.href).catch(() => '');

  // WebDriver BiDi may not open extension pages itself: the prompt that the
  // extension opens is the way in, and the popup is reached from there.
  test('firefox-esr reads /etc/firefox/policies/policies.json: the message shows, the settings are the organisation\'s', async () => {
    policy({ prompts: true, report_automatically: false, message: MESSAGE, support_url: SUPPORT, a_typo: 1 });
    const ff = await launchFirefox({ proxyPort: proxy.port });
    try {
      const page = await ff.browser.newPage();
      await page.goto('https://docs.google.com/document/d/X/edit').catch(() => {});
      await waitFor(async () => (await href(page)).startsWith(prompt(ff)), { what: 'the prompt in Firefox', timeout: 20000 });
      await waitFor(() => page.evaluate(() => document.body.dataset.ready === 'true'), { what: 'the prompt to render' });
      assert.equal(await page.evaluate(() => document.querySelector('#org-message-text').textContent), MESSAGE);
      assert.equal(await page.evaluate(() => document.querySelector('#support-link').href), SUPPORT);
      const st = (await page.evaluate(() => browser.runtime.sendMessage({ cmd: 'state' }))).result.settings;
      assert.deepEqual(st.byOrg, ['message', 'prompts', 'report_automatically', 'support_url']);
      await page.evaluate((u) => { location.href = u; }, ff.url('src/popup/popup.html'));
      await waitFor(async () => (await href(page)).includes('popup.html') && page.evaluate(() => document.body.dataset.ready === 'true'), { what: 'the popup' });
      const shown = await page.evaluate(() => ({
        prompts: document.querySelector('#prompts').textContent,
        promptsTag: !document.querySelector('#prompts-managed').hidden && document.querySelector('#prompts-managed').textContent,
        auto: document.querySelector('#auto-report').textContent,
        autoTag: !document.querySelector('#auto-report-managed').hidden,
        pause: !document.querySelector('#pause').hidden,
      }));
      assert.deepEqual(shown, { prompts: 'On', promptsTag: 'Set by your organisation', auto: 'Off', autoTag: true, pause: false });
    } finally {
      await ff.close();
    }
  });

  test('firefox-esr: prompts off by policy, the same refusal opens no prompt', async () => {
    policy({ prompts: false });
    const ff = await launchFirefox({ proxyPort: proxy.port });
    try {
      const page = await ff.browser.newPage();
      const seen = proxy.seen.length;
      await page.goto('https://docs.google.com/document/d/X/edit').catch(() => {});
      await waitFor(() => proxy.seen.length > seen, { what: 'the refused tunnel' });
      // The first test shows this refusal prompts within seconds when prompts are on.
      await sleep(5000);
      assert.ok(!(await href(page)).startsWith('moz-extension:'), `no prompt opened (at ${await href(page)})`);
    } finally {
      await ff.close();
    }
  });
});
