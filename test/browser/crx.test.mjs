// Self-hosting, end to end in real Chromium: the Chrome Web Store build is
// packed as a CRX3 with an organisation's own key (extension/crx3.mjs),
// served with its updates.xml on 127.0.0.1, and force-installed by a real
// machine policy (/etc/chromium/policies/managed: ExtensionInstallForcelist
// "ID;http://127.0.0.1:PORT/updates.xml") with its 3rdparty managed settings.
// Chromium fetches the update manifest and the CRX, verifies and installs the
// extension under the key's ID, enabled. (The managed settings themselves
// are tested in managed.test.mjs: Playwright cannot open a policy-installed
// extension's pages here, the tab is closed under it.) Linux Chromium installs off-store CRXs by
// policy; Windows and macOS do so only on managed machines (docs/deploy.md).
// The policy file is removed afterwards, even on failure; run under
// flock /tmp/detour-heavy.lock like every browser test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { packCRX3, verifyCRX3, updateManifest } from '../../extension/crx3.mjs';
import { ROOT, CHROMIUM, waitFor, tempDir } from './lib/harness.mjs';

const POLICY_FILE = process.env.DETOUR_CHROMIUM_POLICY ?? '/etc/chromium/policies/managed/detour-test.json';
const STORE_BUILD = join(ROOT, 'extension/dist/chrome-store');

const cleanups = [];
after(async () => { for (const f of cleanups.reverse()) await f(); });
let made = null;
function removePolicy() {
  rmSync(POLICY_FILE, { force: true });
  if (made) rmSync(made, { recursive: true, force: true });
}
process.on('exit', removePolicy);

test('a self-hosted CRX3 with updates.xml is force-installed by policy under its key\'s ID', async () => {
  if (!existsSync(join(STORE_BUILD, 'manifest.json'))) execFileSync(process.execPath, ['extension/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const dir = tempDir('dt-crx');
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('zip', ['-q', '-r', '-X', join(dir, 'detour.zip'), '.'], { cwd: STORE_BUILD });
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const { crx, id } = packCRX3(readFileSync(join(dir, 'detour.zip')), pem);
  assert.equal(verifyCRX3(crx).id, id);
  const version = JSON.parse(readFileSync(join(STORE_BUILD, 'manifest.json'), 'utf8')).version;

  const fetched = [];
  const srv = createServer((req, res) => {
    const path = req.url.split('?')[0];
    fetched.push(path);
    if (path === '/updates.xml') {
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      res.end(updateManifest(id, version, `http://127.0.0.1:${srv.address().port}/detour.crx`));
    } else if (path === '/detour.crx') {
      res.writeHead(200, { 'Content-Type': 'application/x-chrome-extension' });
      res.end(crx);
    } else { res.writeHead(404); res.end(); }
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  cleanups.push(() => new Promise((r) => srv.close(() => r())));

  if (!existsSync(dirname(POLICY_FILE))) {
    let d = dirname(POLICY_FILE);
    while (!existsSync(dirname(d))) d = dirname(d);
    made = d;
    mkdirSync(dirname(POLICY_FILE), { recursive: true });
  }
  cleanups.push(removePolicy);
  writeFileSync(POLICY_FILE, JSON.stringify({
    ExtensionInstallForcelist: [`${id};http://127.0.0.1:${srv.address().port}/updates.xml`],
  }));

  const { chromium } = await import('playwright-core');
  const ud = tempDir('dt-chr');
  cleanups.push(() => rmSync(ud, { recursive: true, force: true }));
  // Playwright's defaults disable extensions and the background networking
  // the extension updater uses; every name still resolves to nothing, so
  // nothing but 127.0.0.1 is reached.
  const ctx = await chromium.launchPersistentContext(ud, {
    executablePath: CHROMIUM, headless: false, ignoreDefaultArgs: ['--disable-extensions', '--disable-background-networking'],
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-component-update',
      '--disable-sync', '--disable-default-apps', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
  cleanups.push(() => ctx.close().catch(() => {}));
  await waitFor(() => fetched.includes('/detour.crx'), { what: 'Chromium to fetch the CRX', timeout: 90000, interval: 500 });
  // Installed under the key's ID, by policy, and enabled: what
  // chrome://extensions-internals (JSON) says.
  const internals = await ctx.newPage();
  const ours = await waitFor(async () => {
    await internals.goto('chrome://extensions-internals').catch(() => {});
    const list = JSON.parse(await internals.evaluate(() => document.body.innerText).catch(() => '[]'));
    return list.find((e) => e.id === id);
  }, { what: 'the extension in chrome://extensions-internals', timeout: 30000, interval: 1000 });
  assert.equal(ours.location, 'EXTERNAL_POLICY_DOWNLOAD');
  assert.deepEqual(ours.disable_reasons, []);
  await internals.close();
  assert.deepEqual([...new Set(fetched)].sort(), ['/detour.crx', '/updates.xml']);
});
