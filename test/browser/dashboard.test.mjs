// The IT dashboard in a real browser: a fresh hub (bin/detour-server) on a
// free 127.0.0.1 port with a temporary --data folder, an account made with
// `admin user add`, made-up counts from `admin seed-demo`; then Chromium
// signs in, changes the one-time password, reviews an item, sees the
// decision (and the new whitelist version), and runs axe-core with the WCAG
// 2.2 AA rules on every page, in English and in Welsh. The page's own
// Content-Security-Policy stays on: axe is injected through the DevTools
// protocol (page.evaluate), and any CSP violation the pages report fails
// the test. Screenshots go to test-results/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER = process.env.DETOUR_SERVER_BIN ?? join(ROOT, 'bin/detour-server');
const RESULTS = join(ROOT, 'test-results');
const AXE = readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

let data, hub, base, browser;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function admin(...args) {
  return execFileSync(SERVER, ['admin', '--data', data, ...args], { encoding: 'utf8', timeout: 30000 });
}

before(async () => {
  if (!existsSync(SERVER)) {
    execFileSync('/usr/local/go/bin/go', ['build', '-o', SERVER, './server/cmd/detour-server'],
      { cwd: ROOT, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' } });
  }
  mkdirSync(RESULTS, { recursive: true });
  data = mkdtempSync(join(tmpdir(), 'detour-dashboard-'));
  const port = await freePort();
  // A single sign-on provider, so the sign-in page shows its button (the
  // provider is discovered only when the button is used: never here).
  const sso = join(data, 'sso.json');
  writeFileSync(sso, JSON.stringify({ providers: [{ id: 'entra', name: 'Example Entra ID', issuer: 'http://127.0.0.1:9',
    client_id: 'detour', client_secret: 'x', allowed_domains: ['example.org'], default_role: 'viewer' }] }));
  hub = spawn(SERVER, ['serve', '--addr', `127.0.0.1:${port}`, '--data', data, '--examples', '--sso', sso], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  hub.stderr.on('data', (b) => { log += b; });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`hub did not start:\n${log}`)), 20000);
    hub.stdout.on('data', (b) => { if (String(b).includes('listening on')) { clearTimeout(t); resolve(); } });
    hub.on('exit', (code) => reject(new Error(`hub exited ${code}:\n${log}`)));
  });
  base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: process.env.DETOUR_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (hub && hub.exitCode === null) {
    hub.kill('SIGTERM');
    await new Promise((r) => { hub.once('exit', r); setTimeout(r, 5000); });
  }
  if (data) rmSync(data, { recursive: true, force: true });
});

// axeCheck runs axe-core on the page as it is and fails on any violation.
async function axeCheck(page, name) {
  await page.evaluate(AXE);
  const res = await page.evaluate((tags) => globalThis.axe.run(document, { runOnly: { type: 'tag', values: tags } }), WCAG);
  const detail = res.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n    ')}`);
  assert.equal(res.violations.length, 0, `axe on ${name}:\n  ${detail.join('\n  ')}`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(RESULTS, `dashboard-${name}.png`), fullPage: true });
}

test('dashboard: sign in, review an item, every page accessible in English and Welsh', async () => {
  const user = JSON.parse(admin('user', 'add', 'it-lead@example.org', '--role', 'sector-admin', '--json'));
  const seeded = JSON.parse(admin('seed-demo', '--json'));
  assert.ok(seeded.reports > 0, 'seed-demo counted nothing');

  const context = await browser.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  const cspErrors = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });

  // Sign in with the one-time password, then choose a new one.
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/sign-in$/);
  assert.match(await page.textContent('main'), /Sign in with Example Entra ID/);
  await axeCheck(page, 'sign-in');
  await shot(page, 'sign-in');
  await page.fill('#email', 'it-lead@example.org');
  await page.fill('#password', 'wrong password');
  await page.click('button[type=submit]');
  await page.waitForSelector('.govuk-error-summary');
  await axeCheck(page, 'sign-in with an error');
  await page.fill('#email', 'it-lead@example.org');
  await page.fill('#password', user.password);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/account\/password$/);
  await axeCheck(page, 'change password');
  await page.fill('#current', user.password);
  await page.fill('#new', 'a new and long passphrase');
  await page.fill('#confirm', 'a new and long passphrase');
  await page.click('main button[type=submit]');
  await page.waitForURL(`${base}/`);
  assert.match(await page.textContent('h1'), /Overview/);
  assert.match(await page.textContent('main'), /fewer than 5/, 'the seeded tail should show suppressed counts');

  // Review the first item in the queue: approve it.
  await page.goto(`${base}/review?status=new`);
  const link = page.locator('#table-review-queue a[href^="/review/"]').first();
  const href = await link.getAttribute('href');
  assert.ok(href, 'the review queue is empty');
  await link.click();
  await page.waitForURL(`${base}${href}`);
  await page.check('#status-approved');
  await page.fill('#note', 'Approved after review <b>by IT</b>');
  await page.click('#decide button[type=submit]');
  await page.waitForSelector('.govuk-notification-banner');
  const banner = await page.textContent('.govuk-notification-banner');
  assert.match(banner, /Whitelist version \d+/);
  const summary = await page.textContent('#table-summary');
  assert.match(summary, /Approved/);
  await shot(page, 'review-decided');
  // The decision shows everywhere: the queue's filter, the matrix, the audit log.
  await page.goto(`${base}/review?status=approved`);
  assert.ok(await page.locator(`#table-review-queue a[href="${href}"]`).count() === 1, 'the approved item is not listed as approved');
  await page.goto(`${base}/audit`);
  assert.match(await page.textContent('main'), /Policy changed/);
  // The hub's signed whitelist carries the new policy.
  const [, org, svc] = href.split('/').slice(1);
  const env = await (await fetch(`${base}/api/v1/whitelist`)).json();
  const doc = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
  const pol = doc.policies.find((p) => p.org === org && p.service === svc);
  assert.equal(pol?.status, 'approved', `whitelist policy for ${org}/${svc}`);
  assert.ok(doc.version > 1, 'the decision made a new whitelist version');

  // Every page, in both languages, with axe.
  await page.goto(`${base}/`);
  const service = await page.locator('#table-top-services a[href^="/services/"]').first().getAttribute('href');
  const contactEdit = async () => {
    await page.goto(`${base}/contacts`);
    await page.selectOption('#contact-org', { index: 0 });
    await page.fill('#contact-name', 'Morgan Filtering');
    await page.fill('#contact-role', 'Network lead');
    await page.fill('#contact-email', 'morgan@example.org');
    await page.click('#contact-form button[type=submit]');
    await page.waitForSelector('.govuk-notification-banner');
  };
  await contactEdit();
  const editHref = await page.locator('#table-contacts a[href^="/contacts/"]').first().getAttribute('href');
  // An enrolment code made from the dashboard is shown once (issue 18).
  await page.goto(`${base}/codes?lang=en`);
  await page.fill('#code-devices', '2');
  await page.click('#create-code button[type=submit]');
  await page.waitForSelector('#new-code');
  assert.match(await page.textContent('#new-code'), /^dtr-/);
  await axeCheck(page, 'code created');
  const codeHref = await page.locator('#table-codes a[href^="/codes/"]').first().getAttribute('href');
  // An invitation link, shown once; its page, opened as the invitee would.
  admin('user', 'add', 'colleague@example.org', '--role', 'viewer', '--json');
  await page.goto(`${base}/people?lang=en`);
  await page.fill('#invite-email', 'invitee@example.org');
  await page.selectOption('#invite-role', 'viewer');
  await page.click('#invite button[type=submit]');
  await page.waitForSelector('#invitation-link');
  const inviteLink = (await page.textContent('#invitation-link')).trim();
  await axeCheck(page, 'invitation made');
  const personHref = await page.locator('#table-people a[href^="/people/"]').first().getAttribute('href');
  // An API token, shown once.
  await page.goto(`${base}/tokens?lang=en`);
  await page.fill('#token-label', 'monthly report');
  await page.click('#create-token button[type=submit]');
  await page.waitForSelector('#new-token');
  const apiToken = (await page.textContent('#new-token')).trim();
  await axeCheck(page, 'token made');
  const api = await page.request.get(`${base}/api/v1/aggregates`, { headers: { Authorization: `Bearer ${apiToken}` } });
  assert.equal(api.status(), 200, 'the new token reads the aggregates');
  const pages = [
    ['overview', '/'], ['service', service], ['organisations', '/orgs'], ['organisation', `/orgs/${org}`],
    ['matrix', '/matrix'], ['review-queue', '/review'], ['review-item', href], ['contacts', '/contacts'],
    ['contact-edit', editHref], ['audit', '/audit'], ['password', '/account/password'],
    ['codes', '/codes'], ['code', codeHref], ['people', '/people'], ['person', personHref],
    ['invitation', new URL(inviteLink).pathname], ['second-factor', '/account/totp'],
    ['tokens', '/tokens'], ['catalog', '/catalog'], ['catalog-edit', service.replace('/services/', '/catalog/')],
  ];
  for (const lang of ['en', 'cy']) {
    for (const [name, path] of pages) {
      const res = await page.goto(`${base}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`);
      assert.equal(res.status(), 200, `${name} (${lang}): HTTP ${res.status()}`);
      assert.equal(await page.getAttribute('html', 'lang'), lang);
      await axeCheck(page, `${name} (${lang})`);
      await shot(page, `${name}-${lang}`);
    }
  }
  // Welsh strings are really Welsh.
  await page.goto(`${base}/?lang=cy`);
  assert.match(await page.textContent('h1'), /Trosolwg/);
  assert.match(await page.textContent('main'), /llai na 5/);
  // Exports download from the same pages.
  const csv = await (await page.request.get(`${base}/?export=top-services&format=csv&lang=en`)).text();
  assert.match(csv.split('\n')[0], /Service,Reports/);

  // Sign out; the pages are closed again.
  await page.goto(`${base}/?lang=en`);
  await page.click('header button[type=submit]');
  await page.waitForURL(/\/sign-in$/);
  await axeCheck(page, 'signed out');
  assert.deepEqual(cspErrors, [], 'pages must not break their own Content-Security-Policy');
  await context.close();
});
