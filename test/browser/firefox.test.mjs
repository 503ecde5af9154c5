// Firefox: the Firefox build passes `web-ext lint`, and Debian firefox-esr,
// driven over WebDriver BiDi, installs it, connects to the real native host
// (relay and agent), maps NS_ERROR_PROXY_FORBIDDEN from a refusing proxy to
// proxy-refused and shows the prompt.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { ROOT, EXT_FIREFOX, FIREFOX_ID, FIREFOX_UUID, ensureBuilt, launchFirefox, startRefusingProxy, waitFor, screenshot } from './lib/harness.mjs';

const run = promisify(execFile);

test('web-ext lint: no errors, warnings or notices', async () => {
  ensureBuilt();
  const { stdout } = await run(join(ROOT, 'node_modules/.bin/web-ext'), ['lint', '--source-dir', EXT_FIREFOX, '--self-hosted', '--output', 'json', '--no-input'], { cwd: ROOT, maxBuffer: 10 << 20 })
    .catch((e) => ({ stdout: e.stdout }));
  const r = JSON.parse(stdout.slice(stdout.indexOf('{')));
  const all = [...r.errors, ...r.warnings, ...r.notices].map((m) => `${m.code}: ${m.message}`);
  assert.deepEqual(all, []);
  assert.equal(r.summary.errors, 0);
});

describe('firefox-esr over WebDriver BiDi', () => {
  let ff, proxy;
  before(async () => {
    proxy = await startRefusingProxy();
    ff = await launchFirefox({ proxyPort: proxy.port });
  });
  after(async () => { await ff?.close(); await proxy?.close(); });

  test('installs, connects to the helper, and prompts on a proxy refusal', async () => {
    assert.equal(ff.addonId, FIREFOX_ID);
    const page = await ff.browser.newPage();
    await page.goto('https://docs.google.com/document/d/SECRET/edit').catch(() => {}); // the proxy refuses it
    const prompt = ff.url('src/prompt/prompt.html');
    const href = await waitFor(async () => {
      const h = await page.evaluate(() => location.href).catch(() => '');
      return h.startsWith(prompt) ? h : null;
    }, { timeout: 20000, what: 'the prompt in Firefox' });
    assert.ok(proxy.seen.includes('docs.google.com:443'));
    const u = new URL(href);
    assert.equal(u.searchParams.get('host'), 'docs.google.com');
    assert.equal(u.searchParams.get('method'), 'proxy-refused');
    assert.ok(!href.includes('SECRET'));
    await waitFor(() => page.evaluate(() => document.body.dataset.ready === 'true'), { what: 'the prompt to render' });
    assert.match(await page.evaluate(() => document.querySelector('h1').textContent), /Google Docs.* is blocked/);
    // The background holds one native port to the helper: ask it for its state.
    const state = await waitFor(async () => {
      const s = await page.evaluate(() => browser.runtime.sendMessage({ cmd: 'state' }));
      return s?.result?.helper?.connected ? s.result : null;
    }, { timeout: 15000, what: 'a connected helper' });
    assert.equal(state.helper.hello.protocol, 1);
    assert.match(state.helper.hello.version, /\S/);
    await screenshot(page, 'firefox-prompt').catch(() => {}); // BiDi screenshots of extension pages may be refused
    await page.close();
  });
});
