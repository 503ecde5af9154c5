// "Which tool works for all of us?" in the real extension: Chromium with the
// built extension, the native host (bin/detour relay and agent), and the hub
// (bin/detour-server with the example organisations), all on 127.0.0.1.
//
//   a person at example-borough opens the popup → picks Example Health Board →
//   sees, per category, what both approve (the same answer as `detour common
//   --json`) and opens Microsoft Teams → on teams.microsoft.com (approved at
//   example-borough, with the IT team's note) the toolbar badge and the popup
//   say "approved for use at Example Borough Council" → without a helper the
//   popup lists the bundled catalog and says so. axe checks the popup in
//   English and Welsh. The same question in firefox-esr, through its own
//   native-messaging registration, gets the same answer as the CLI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { axe, screenshot, launchChromium, launchFirefox, startRefusingProxy } from './lib/harness.mjs';
import { ORG, startLoopHub, setupOrg, startNet, leafSPKI, enrolHelper, launchBrowser, helperCLI, tempDir, waitFor, stopAgent } from './lib/stack.mjs';

const PARTNER = 'example-health';
const SITE = 'teams.microsoft.com';
const NOTE = 'Use Teams for meetings with other organisations <b>not</b> email';

let net, hub, home, b;

before(async () => {
  net = await startNet({ [SITE]: 'reachable' });
  hub = await startLoopHub({ k: 1 });
  hub.admin('policy', 'set', ORG, 'microsoft-teams', 'approved', '--note', NOTE);
  // Eight organisations: enough for the popup to offer its filter box.
  hub.admin('org', 'add', 'north-vale', '--name', 'North Vale Council', '--sector', 'local-government');
  hub.admin('org', 'add', 'south-coast', '--name', 'South Coast Health Trust', '--sector', 'health');
  const org = setupOrg(hub);
  home = tempDir('dt-cg');
  const e = enrolHelper(home, hub.url, org.code);
  assert.equal(e.org, ORG);
  const spki = await leafSPKI(net.httpsPort, SITE);
  b = await launchBrowser({
    home,
    hostRules: [`MAP ${SITE} 127.0.0.1:${net.httpsPort}`, 'EXCLUDE 127.0.0.1', 'MAP * ~NOTFOUND'],
    extraArgs: [`--ignore-certificate-errors-spki-list=${spki}`],
  });
}, { timeout: 90000 });

after(async () => {
  await b?.close();
  if (home) { await stopAgent(home); rmSync(home, { recursive: true, force: true }); }
  await hub?.close();
  await net?.close();
});

const listed = (p) => p.$$eval('#common-results li[data-service]', (els) => els.map((e) => `${e.dataset.service}:${e.dataset.status}`));

test('the popup answers "which tool works for all of us?" as the CLI does, and opens it', { timeout: 90000 }, async () => {
  await waitFor(async () => {
    const s = await b.helperState();
    return s?.connected && s.hello?.whitelist_version ? s : null;
  }, { timeout: 20000, what: 'a connected helper with a whitelist' });

  const popup = await b.openPopup('?lang=en');
  assert.equal(await popup.getAttribute('#common', 'data-source'), 'helper');
  assert.equal(await popup.isHidden('#common-degraded'), true);
  assert.match(await popup.textContent('#common-own'), /Example Borough Council/);
  assert.equal(await popup.$(`#org-${ORG}`), null, 'the person\'s own organisation is always included, not offered');
  // Nothing picked: an error that says what to do, on the field.
  await popup.click('#common-go');
  assert.equal(await popup.isVisible('#common-error'), true);
  assert.match(await popup.textContent('#common-error'), /at least one other organisation/);

  // Type to narrow the list.
  await popup.fill('#common-filter', 'health');
  const shown = await popup.$$eval('#common-orgs .govuk-checkboxes__item:not([hidden]) input', (els) => els.map((e) => e.value));
  assert.deepEqual(shown.sort(), [PARTNER, 'south-coast'], shown.join(' '));
  await popup.check(`#org-${PARTNER}`);
  await popup.fill('#common-filter', '');
  await popup.click('#common-go');
  await popup.waitForSelector('#common-results li[data-service]');
  assert.match(await popup.textContent('#common-for'), /Example Borough Council, Example Health Board/);
  const fromPopup = await listed(popup);
  const cli = JSON.parse(helperCLI(home, {}, 'common', ORG, PARTNER, '--json'));
  const fromCLI = cli.categories.flatMap((c) => c.services.map((s) => `${s.service}:${s.status}`));
  assert.deepEqual(fromPopup, fromCLI, 'the same answer, in the same order, as detour common');
  assert.equal(fromPopup[0], 'microsoft-teams:confirmed');
  for (const blocked of ['zoom', 'google-meet', 'google-docs']) assert.ok(!fromPopup.some((x) => x.startsWith(blocked + ':')), `${blocked} is blocked by one of them`);
  assert.match(await popup.textContent('#common-results li[data-service="whereby"]'), /not confirmed: not decided at Example Borough Council/);
  const violations = await axe(popup);
  assert.deepEqual(violations, [], JSON.stringify(violations, null, 1));
  await screenshot(popup, 'common-01-popup');

  // The picked organisations are remembered for next time.
  const again = await b.openPopup('?lang=en');
  assert.equal(await again.isChecked(`#org-${PARTNER}`), true, 'the partner picked last time is ticked again');
  await again.close();

  // Open it: a new tab on the service's own address.
  const [opened] = await Promise.all([
    b.context.waitForEvent('page', { timeout: 10000 }),
    popup.click('#common-results li[data-service="microsoft-teams"] a'),
  ]);
  await opened.waitForURL((u) => u.hostname === SITE, { timeout: 15000 });

  // On the approved site: the badge, and the popup's line with the note.
  const tabId = await waitFor(() => b.serviceWorker.evaluate(async (site) => {
    const [tab] = await chrome.tabs.query({ url: `https://${site}/*` });
    if (!tab) return null;
    return (await chrome.action.getBadgeText({ tabId: tab.id })) ? tab.id : null;
  }, SITE), { timeout: 15000, what: 'the approved badge on the Teams tab' });
  const title = await b.serviceWorker.evaluate((id) => chrome.action.getTitle({ tabId: id }), tabId);
  assert.match(title, /Microsoft Teams is approved for use at Example Borough Council/);
  const here = await b.openPopup(`?lang=en&tab=${tabId}`);
  assert.equal(await here.isVisible('#here'), true);
  assert.equal(await here.textContent('#here-line'), 'Microsoft Teams is approved for use at Example Borough Council.');
  assert.equal(await here.textContent('#here-note'), NOTE, 'the IT team\'s note, as text');
  assert.equal(await here.$('#here-note b'), null, 'markup in the note is not markup');
  await screenshot(here, 'common-02-approved-here');
  // The popup's own tab is no catalog site: no line there.
  const other = await b.openPopup('?lang=en');
  assert.equal(await other.isHidden('#here'), true);
  const d = await b.decisions();
  assert.ok(d.every((x) => x.host === SITE || x.host?.endsWith('.microsoft.com') || !x.approved), JSON.stringify(d));

  // Welsh, and axe again.
  const cy = await b.openPopup('?lang=cy');
  assert.equal(await cy.textContent('#common-heading'), 'Yn gweithio gyda sefydliad arall?');
  await cy.check(`#org-${PARTNER}`);
  await cy.click('#common-go');
  await cy.waitForSelector('#common-results li[data-service]');
  assert.match(await cy.textContent('#common-results'), /Cyfarfodydd fideo/);
  const v2 = await axe(cy);
  assert.deepEqual(v2, [], JSON.stringify(v2, null, 1));
});

test('without a helper the popup lists the bundled catalog and says so', { timeout: 60000 }, async () => {
  const nb = await launchChromium({ helper: false });
  try {
    const p = await nb.openPopup('?lang=en');
    assert.equal(await p.getAttribute('#common', 'data-source'), 'snapshot');
    assert.equal(await p.isVisible('#common-degraded'), true);
    assert.match(await p.textContent('#common-degraded-text'), /helper is not running.*catalog that came with the extension/s);
    assert.equal(await p.isHidden('#common-form'), true, 'no organisations to pick from without a helper');
    const items = await listed(p);
    assert.ok(items.includes('microsoft-teams:unconfirmed') && items.includes('zoom:unconfirmed'), items.join(' '));
    assert.match(await p.textContent('#common-results li[data-service="zoom"]'), /check with your IT team/);
    const v = await axe(p);
    assert.deepEqual(v, [], JSON.stringify(v, null, 1));
    await screenshot(p, 'common-03-degraded');
  } finally {
    await nb.close();
  }
});

// Firefox reaches the helper through its own manifest and its own messaging
// code path (browser.runtime.connectNative, promise-based); the popup's
// answer there must be the CLI's too. The device is enrolled after the
// extension has connected, as when the organisation's policy enrols it while
// the browser is already open. WebDriver BiDi may not open an
// extension page itself, so the way in is the prompt the extension opens on
// a refused tunnel, and the popup is reached from there.
test('firefox-esr: the popup gives the same common ground as the CLI', { timeout: 120000 }, async () => {
  const proxy = await startRefusingProxy();
  const ff = await launchFirefox({ proxyPort: proxy.port });
  try {
    const org = setupOrg(hub, { email: 'ff-it@borough.example' });
    assert.equal(enrolHelper(ff.detourHome, hub.url, org.code).org, ORG);
    const page = await ff.browser.newPage();
    const href = () => page.evaluate(() => location.href).catch(() => '');
    await page.goto('https://docs.google.com/document/d/X/edit').catch(() => {});
    await waitFor(async () => (await href()).startsWith(ff.url('src/prompt/prompt.html')), { what: 'the prompt in Firefox', timeout: 20000 });
    const ready = () => page.evaluate(() => document.body?.dataset.ready === 'true').catch(() => false);
    await waitFor(ready, { what: 'the prompt to render' });
    // The agent may still be fetching the whitelist the enrolment pointed it at.
    await waitFor(async () => {
      const s = await page.evaluate(() => browser.runtime.sendMessage({ cmd: 'state' }));
      return s?.result?.helper?.hello?.whitelist_version ? s : null;
    }, { timeout: 20000, what: 'a connected helper with a whitelist' });
    await page.evaluate((u) => { location.href = u; }, ff.url('src/popup/popup.html?lang=en'));
    await waitFor(async () => (await href()).includes('popup.html') && ready(), { what: 'the popup' });
    assert.equal(await page.evaluate(() => document.querySelector('#common').dataset.source), 'helper');
    // Enrolled after the extension said hello: the helper's enrolment-changed
    // event tells it the person's organisation without a reconnect.
    assert.match(await page.evaluate(() => document.querySelector('#common-own').textContent), /Example Borough Council/);
    assert.equal(await page.evaluate((id) => document.getElementById(`org-${id}`), ORG), null, 'the person\'s own organisation is not offered');
    await page.evaluate((id) => { document.getElementById(`org-${id}`).click(); document.getElementById('common-go').click(); }, PARTNER);
    await waitFor(() => page.evaluate(() => document.querySelectorAll('#common-results li[data-service]').length > 0), { what: 'the answer in Firefox' });
    const fromPopup = await page.evaluate(() => [...document.querySelectorAll('#common-results li[data-service]')].map((e) => `${e.dataset.service}:${e.dataset.status}`));
    const cli = JSON.parse(helperCLI(ff.detourHome, {}, 'common', ORG, PARTNER, '--json'));
    assert.deepEqual(fromPopup, cli.categories.flatMap((c) => c.services.map((s) => `${s.service}:${s.status}`)));
    assert.equal(fromPopup[0], 'microsoft-teams:confirmed');
    const v = await axe(page);
    assert.deepEqual(v, [], JSON.stringify(v, null, 1));
  } finally {
    await ff.close();
    await proxy.close();
  }
});
