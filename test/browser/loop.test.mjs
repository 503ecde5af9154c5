// The whole Detour loop in one test, with real components only: Debian
// Chromium with the built extension, the native host (bin/detour relay and
// agent), the hub (bin/detour-server, SQLite) and the simulated filtered
// network (bin/detour-testnet), all on 127.0.0.1.
//
//   a person at example-borough opens zoom.us, which the network blocks with
//   a Zscaler block page → the prompt says so and offers Microsoft Teams, the
//   approved alternative → they report it (need: meeting) → the hub counts it
//   → the organisation's IT admin signs in to the dashboard and approves Zoom
//   in the review queue → a new signed whitelist version → the helper holds
//   it (popup) → opening zoom.us again, the prompt shows Zoom as approved
//   here (the filter has not caught up yet), no longer blocked with an
//   alternative.
//
// TEST SETTING: the hub runs with k=1 (`serve --k 1`, and `admin --k 1
// aggregates`) so that one report is visible; production keeps k=5.
// The agent sends reports at once (DETOUR_REPORT_DELAY=0) instead of after
// its random delay.
//
// Screenshots: test-results/loop-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { screenshot, axe, RESULTS } from './lib/harness.mjs';
import {
  ORG, startLoopHub, setupOrg, startNet, leafSPKI, probeEnv, enrolHelper, launchBrowser, gotoPrompt, signIn,
  tempDir, waitFor, stopAgent, reportFailures,
} from './lib/stack.mjs';

const HOST = 'zoom.us';
const SERVICE = 'zoom';
const ALTERNATIVE = 'microsoft-teams';

let net, hub, org, home, b, env;

before(async () => {
  net = await startNet({ [HOST]: 'blockpage-zscaler' });
  hub = await startLoopHub({ k: 1 });
  org = setupOrg(hub);
  home = tempDir('dt-lh');
  env = { ...probeEnv(net, { connectTo: [HOST] }), DETOUR_REPORT_DELAY: '0' };
  const e = enrolHelper(home, hub.url, org.code, env);
  assert.equal(e.org, ORG, `enrolled with ${JSON.stringify(e)}`);
  const spki = await leafSPKI(net.httpsPort, HOST);
  b = await launchBrowser({
    home, env,
    // zoom.us goes to the testnet's HTTPS server (which answers it with the
    // Zscaler block page); no other name resolves, so nothing leaves loopback.
    hostRules: [`MAP ${HOST} 127.0.0.1:${net.httpsPort}`, 'EXCLUDE 127.0.0.1', 'MAP * ~NOTFOUND'],
    extraArgs: [`--ignore-certificate-errors-spki-list=${spki}`],
  });
}, { timeout: 90000 });

after(async () => {
  await b?.close();
  if (home) { await stopAgent(home); rmSync(home, { recursive: true, force: true }); }
  await hub?.close();
  await net?.close();
});

// The popup as it appears under the toolbar button: its own width, not a tab's.
async function popupShot(p, name) {
  mkdirSync(RESULTS, { recursive: true });
  await p.locator('body').screenshot({ path: join(RESULTS, `${name}.png`) });
}

function zoomCount(agg) {
  return agg.overview.top_services.find((i) => i.key === SERVICE)?.count ?? null;
}

test('blocked → prompt with the approved alternative → report → counted → approved in review → helper updated → shown as approved', { timeout: 150000 }, async () => {
  const { context } = b;

  // The helper is connected and holds the hub's signed whitelist.
  const hello = await waitFor(async () => {
    const s = await b.helperState();
    return s?.connected && s.hello?.enrolled && s.hello?.whitelist_version ? s.hello : null;
  }, { timeout: 20000, what: 'a connected, enrolled helper with a whitelist' });
  const wl0 = await hub.whitelist();
  assert.equal(hello.whitelist_version, wl0.version, 'the helper holds the hub\'s current version');
  assert.equal(wl0.policies.find((p) => p.org === ORG && p.service === SERVICE)?.status, 'blocked');
  assert.equal(zoomCount(hub.aggregates(ORG)), null, 'nothing counted before the report');

  // 1. Browse to the blocked tool: the prompt, with Microsoft Teams.
  const page = await context.newPage();
  await gotoPrompt(page, `https://${HOST}/j/81234567890?pwd=SECRETPWD`);
  const u = new URL(page.url());
  assert.equal(u.searchParams.get('host'), HOST);
  assert.equal(u.searchParams.get('method'), 'http-blockpage');
  assert.ok(!page.url().includes('SECRETPWD') && !page.url().includes('81234567890'), 'the prompt URL carries no path or query');
  assert.match(await page.textContent('h1'), /Zoom.* is blocked/);
  assert.match(await page.textContent('#vendor'), /zscaler/i);
  assert.equal(await page.getAttribute('body', 'data-suggest-source'), 'helper');
  assert.equal(await page.getAttribute('body', 'data-status'), 'blocked', 'blocked at example-borough');
  assert.match(await page.textContent('#alt-intro'), /approved for your organisation/);
  const alts = await page.$$eval('#alternatives li', (els) => els.map((e) => ({ id: e.dataset.service, text: e.textContent, href: e.querySelector('a')?.href })));
  assert.equal(alts[0]?.id, ALTERNATIVE, JSON.stringify(alts));
  assert.match(alts[0].text, /Microsoft Teams/);
  assert.equal(alts[0].href, 'https://teams.microsoft.com/');
  assert.equal(await page.isDisabled('#report'), false, 'reporting is available: helper connected and enrolled');
  await screenshot(page, 'loop-01-prompt');

  // 2. Report it, saying why it was needed.
  await page.check('#need-meeting');
  await page.click('#report');
  await page.waitForSelector('#report-result[data-state]', { timeout: 20000 });
  assert.equal(await page.getAttribute('#report-result', 'data-state'), 'queued', await page.textContent('#report-result'));
  assert.match(await page.textContent('#report-result'), /meeting/i);
  await screenshot(page, 'loop-02-reported');

  // 3. The hub counts it (k=1 here): zoom, http-blockpage, Zscaler, meeting.
  const count = await waitFor(() => {
    const failed = reportFailures(home);
    if (failed.length) throw new Error(`the agent gave up on the report: ${failed.join('; ')}`);
    return zoomCount(hub.aggregates(ORG));
  }, { timeout: 30000, interval: 500, what: 'the report counted at the hub' }).catch((e) => { throw new Error(`${e.message}; agent failures: ${JSON.stringify(reportFailures(home))}`); });
  assert.equal(count.value, 1, JSON.stringify(count));
  const agg = hub.aggregates(ORG);
  assert.equal(agg.k, 1);
  assert.equal(agg.overview.needs.find((i) => i.key === 'meeting')?.count.value, 1, JSON.stringify(agg.overview.needs));
  assert.equal(agg.org.methods.find((i) => i.key === 'http-blockpage')?.count.value, 1, JSON.stringify(agg.org.methods));
  assert.equal(agg.org.vendors.find((i) => i.key === 'zscaler')?.count.value, 1, JSON.stringify(agg.org.vendors));
  // The same figures from the API, with the organisation admin's token.
  const { token } = hub.adminJSON('api-token', 'create', org.email, '--label', 'loop test');
  const api = await (await fetch(`${hub.url}/api/v1/aggregates?org=${ORG}`, { headers: { Authorization: `Bearer ${token}` } })).json();
  assert.equal(api.k, 1);
  assert.equal(zoomCount(api)?.value, 1, JSON.stringify(api.overview?.top_services));
  const refused = await fetch(`${hub.url}/api/v1/aggregates?org=${ORG}`);
  assert.ok([401, 403].includes(refused.status), `no token: HTTP ${refused.status}`);

  // The popup: connected, the block listed, the report sent.
  let popup = await b.openPopup();
  await popup.waitForSelector('#helper-state[data-connected="true"]');
  assert.ok(await popup.$(`#recent li[data-host="${HOST}"]`), 'the popup lists the block');
  assert.equal(await popup.getAttribute('#whitelist-version', 'data-version'), String(wl0.version));
  await waitFor(async () => { await popup.reload(); await popup.waitForSelector('body[data-ready="true"]'); return /1 sent/.test(await popup.textContent('#reports')); },
    { timeout: 15000, what: 'the popup showing the report sent' });
  await popupShot(popup, 'loop-03-popup');
  await popup.close();

  // 4. The organisation admin signs in and approves Zoom in the review queue.
  const dash = await context.newPage();
  await signIn(dash, hub.url, org.email, org.password);
  await dash.goto(`${hub.url}/`);
  assert.match(await dash.textContent('h1'), /Overview/);
  assert.match(await dash.textContent('#table-top-services'), /Zoom/);
  await screenshot(dash, 'loop-04-dashboard-overview');
  await dash.goto(`${hub.url}/review?status=new`);
  const item = dash.locator(`#table-review-queue a[href="/review/${ORG}/${SERVICE}"]`);
  assert.equal(await item.count(), 1, 'Zoom at example-borough waits in the review queue');
  await screenshot(dash, 'loop-05-review-queue');
  await item.click();
  await dash.waitForURL(`${hub.url}/review/${ORG}/${SERVICE}`);
  await dash.check('#status-approved');
  await dash.fill('#note', 'Approved for meetings set up by partner organisations.');
  await dash.click('#decide button[type=submit]');
  await dash.waitForSelector('.govuk-notification-banner');
  const banner = await dash.textContent('.govuk-notification-banner');
  const m = /Whitelist version (\d+)/.exec(banner);
  assert.ok(m, banner);
  const v1 = Number(m[1]);
  assert.ok(v1 > wl0.version, `a new version (${v1} > ${wl0.version})`);
  await screenshot(dash, 'loop-06-review-approved');

  // The hub publishes it, signed: Zoom is approved at example-borough.
  const wl1 = await hub.whitelist();
  assert.equal(wl1.version, v1);
  assert.equal(wl1.policies.find((p) => p.org === ORG && p.service === SERVICE)?.status, 'approved');

  // 5. The helper receives the new version (pushed over the WebSocket).
  await waitFor(async () => (await b.helperState())?.hello?.whitelist_version === v1, { timeout: 15000, what: `the helper at version ${v1}` });
  popup = await b.openPopup();
  assert.equal(await popup.getAttribute('#whitelist-version', 'data-version'), String(v1));
  assert.match(await popup.textContent('#whitelist-version'), new RegExp(`\\b${v1}\\b`));
  await popupShot(popup, 'loop-07-popup-updated');
  await popup.close();

  // 6. Zoom again: the network still blocks it (the filter has not been
  // changed yet), and the prompt now shows it as approved here instead of
  // blocked-with-an-alternative.
  const again = await context.newPage();
  await gotoPrompt(again, `https://${HOST}/`);
  assert.equal(await again.getAttribute('body', 'data-suggest-source'), 'helper');
  assert.equal(await again.getAttribute('body', 'data-status'), 'approved', 'approved at example-borough now');
  assert.match(await again.textContent('h1'), /Zoom.* is approved, but this network still blocks it/);
  assert.match(await again.textContent('#approved-note'), /lists Zoom.* as approved/);
  assert.doesNotMatch(await again.textContent('#alt-intro'), /decided to block/);
  assert.match(await again.textContent('#alt-heading'), /Other approved tools/);
  const violations = await axe(again);
  assert.deepEqual(violations, [], `axe on the approved prompt: ${JSON.stringify(violations, null, 1)}`);
  // Welsh too.
  const cy = await context.newPage();
  await cy.goto(`${again.url()}&lang=cy`);
  await cy.waitForSelector('body[data-ready="true"]');
  assert.match(await cy.textContent('h1'), /wedi'i gymeradwyo/);
  await cy.close();
  await screenshot(again, 'loop-08-prompt-approved');

  await again.close();
  await dash.close();
  await page.close();
});
