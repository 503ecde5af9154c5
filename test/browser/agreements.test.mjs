// The filtering owners' pages in a real browser: agreements, the closed
// forum, the directory and common ground, on a fresh hub with the example
// organisations (bin/detour-server on 127.0.0.1). A sector admin answers an
// agreement, posts in its thread, invites a filtering owner, and confirms
// their own directory entry; axe-core (WCAG 2.2 AA) checks every page in
// English and Welsh with the pages' own Content-Security-Policy on.
// Screenshots: test-results/owners-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { axe, screenshot } from './lib/harness.mjs';
import { startLoopHub } from './lib/stack.mjs';

let hub, browser;

before(async () => {
  hub = await startLoopHub({ k: 5 });
  hub.admin('agreement', 'propose', 'whereby', '--by', 'example-borough', '--note', 'No install; guests join from a link <b>ok</b>');
  hub.admin('agreement', 'endorse', 'example-borough', 'whereby');
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: process.env.DETOUR_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, { timeout: 60000 });

after(async () => {
  await browser?.close();
  await hub?.close();
});

async function clean(page, name) {
  const v = await axe(page);
  assert.deepEqual(v, [], `${name}: ${JSON.stringify(v, null, 1)}`);
}

test('agreements, forum, directory and common ground: usable and accessible in English and Welsh', { timeout: 120000 }, async () => {
  const user = hub.adminJSON('user', 'add', 'lead@sector.example', '--role', 'sector-admin');
  const context = await browser.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  const csp = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });
  await page.goto(`${hub.url}/sign-in`);
  await page.fill('#email', 'lead@sector.example');
  await page.fill('#password', user.password);
  await page.click('main button[type=submit]');
  await page.waitForURL(/\/account\/password$/);
  await page.fill('#current', user.password);
  await page.fill('#new', 'a long passphrase for the sector lead');
  await page.fill('#confirm', 'a long passphrase for the sector lead');
  await page.click('main button[type=submit]');
  await page.waitForURL(`${hub.url}/`);

  // The agreement: endorse for example-health, then discuss.
  await page.goto(`${hub.url}/agreements/whereby?lang=en`);
  assert.match(await page.textContent('#table-agreement'), /No install; guests join from a link <b>ok<\/b>/);
  await page.selectOption('#answer-org', 'example-health');
  await page.check('#decision-endorsed');
  await page.click('#answer button[type=submit]');
  await page.waitForSelector('.govuk-notification-banner');
  assert.match(await page.textContent('#table-answers'), /Example Health Board/);
  await page.fill('#post-body', 'Both boards use it for multi-agency meetings <script>x</script>');
  await page.click('#post button[type=submit]');
  await page.waitForSelector('#table-posts td');
  assert.match(await page.textContent('#table-posts'), /Sector administrator/);
  assert.match(await page.textContent('#table-posts'), /<script>x<\/script>/, 'the post is shown as text');
  const wl = await hub.whitelist();
  assert.deepEqual(wl.agreements?.find((a) => a.service === 'whereby')?.endorsed_by, ['example-borough', 'example-health']);

  // A service thread, a directory entry, an owner's invitation.
  await page.goto(`${hub.url}/forum/services/zoom?lang=en`);
  await page.fill('#post-body', 'Zoom: who has assessed the web client?');
  await page.click('#post button[type=submit]');
  await page.waitForSelector('#table-posts td');
  await page.goto(`${hub.url}/directory?lang=en`);
  await page.fill('#entry-name', 'Alex Morgan');
  await page.fill('#entry-role', 'Sector filtering lead');
  await page.fill('#entry-contact', 'filtering@sector.example');
  await page.click('#entry-save');
  await page.waitForSelector('.govuk-notification-banner');
  await page.fill('#owner-name', 'Sam Jones');
  await page.fill('#owner-email', 'sam@health.example');
  await page.selectOption('#owner-org', 'example-health');
  await page.click('#invite-owner button[type=submit]');
  await page.waitForSelector('#invitation-link');
  await clean(page, 'owner invitation made');
  const invite = new URL((await page.textContent('#invitation-link')).trim()).pathname;

  const pages = [['agreements', '/agreements'], ['agreement', '/agreements/whereby'], ['forum', '/forum'], ['thread', '/forum/services/zoom'],
    ['directory', '/directory'], ['common-ground', '/common-ground?category=video'], ['common-ground-files', '/common-ground?category=files'], ['owner-invitation', invite]];
  for (const lang of ['en', 'cy']) {
    for (const [name, path] of pages) {
      const res = await page.goto(`${hub.url}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`);
      assert.equal(res.status(), 200, `${name} (${lang})`);
      assert.equal(await page.getAttribute('html', 'lang'), lang);
      await clean(page, `${name} (${lang})`);
      await screenshot(page, `owners-${name}-${lang}`);
    }
  }
  await page.goto(`${hub.url}/common-ground?category=video&lang=cy`);
  assert.match(await page.textContent('h1'), /Tir cyffredin: galwadau fideo/);
  assert.deepEqual(csp, []);

  // The invited owner accepts and lands as the organisation's admin.
  const owner = await (await browser.newContext({ locale: 'en-GB' })).newPage();
  await owner.goto(`${hub.url}${invite}?lang=en`);
  await owner.fill('#new', 'a long passphrase for sam jones');
  await owner.fill('#confirm', 'a long passphrase for sam jones');
  await owner.click('main button[type=submit]');
  await owner.waitForURL(`${hub.url}/`);
  await owner.goto(`${hub.url}/directory?lang=en`);
  assert.match(await owner.textContent('#table-directory'), /Sam Jones/);
  assert.match(await owner.textContent('#table-directory'), /Alex Morgan/);
  await context.close();
});
