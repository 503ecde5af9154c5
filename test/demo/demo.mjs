// `make demo` (scripts/demo.sh): Detour on a simulated filtered network.
//
// Starts, all on 127.0.0.1:
//   - detour-testnet, a loopback network whose filter blocks catalog tools the
//     way real products do: zoom.us gets a Zscaler block page, slack.com is
//     hidden by the filtering DNS resolver, www.dropbox.com is refused by the
//     filtering proxy (a refused tunnel); trello.com, miro.com and
//     teams.microsoft.com get through;
//   - a hub (detour-server, SQLite in .run/demo/hub) with the example
//     organisations, an enrolment code and an IT account for example-borough.
//     DEMO SETTING: k=1, so a single report shows on the dashboard
//     (production hubs keep k=5);
//   - the helper's agent (DETOUR_HOME=.run/demo/home), enrolled with the hub,
//     its probe pointed at the simulated network, reports sent at once;
//   - Chromium with the extension and the native host, its names and proxy
//     set up so that it browses the simulated network only.
//
// With a display ($DISPLAY) the browser opens for you to try; without one
// (or with --headless) the demo runs the story by itself and writes
// test-results/demo-*.png (ending with IT approving Zoom and the prompt
// saying so). Ctrl-C stops everything.
import { mkdirSync, rmSync, createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  ORG, startLoopHub, setupOrg, startNet, leafSPKI, probeEnv, pacFor, enrolHelper, launchBrowser, gotoPrompt, signIn, PROMPT_PREFIX, reportFailures,
  waitFor, sleep, stopAgent, ROOT,
} from '../browser/lib/stack.mjs';
import { DETOUR, RESULTS } from '../browser/lib/harness.mjs';

const K = 1;
const RUN = join(ROOT, '.run/demo');
const HOME = join(RUN, 'home');
const args = new Set(process.argv.slice(2));
const headless = args.has('--headless') || !process.env.DISPLAY;

// What the simulated network does with each catalog host.
const BLOCKPAGE = ['zoom.us'];
const DNS_BLOCKED = ['slack.com', 'app.slack.com'];
const PROXY_REFUSED = ['dropbox.com', 'www.dropbox.com'];
const ALLOWED = ['trello.com', 'miro.com', 'teams.microsoft.com'];
const aliases = {
  ...Object.fromEntries(BLOCKPAGE.map((h) => [h, 'blockpage-zscaler'])),
  ...Object.fromEntries(DNS_BLOCKED.map((h) => [h, 'dns-nxdomain'])),
  ...Object.fromEntries(PROXY_REFUSED.map((h) => [h, 'proxy-refused'])),
  ...Object.fromEntries(ALLOWED.map((h) => [h, 'reachable'])),
};

const say = (s = '') => process.stdout.write(s + '\n');
const stoppers = [];
let stopping = false;
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  say('\nStopping the demo...');
  for (const f of stoppers.reverse()) {
    try { await f(); } catch { /* keep stopping the rest */ }
  }
  say(`Stopped. Logs are in ${RUN}.`);
  process.exit(code);
}
process.on('SIGINT', () => stopAll(130));
process.on('SIGTERM', () => stopAll(143));

async function main() {
  // A fresh demo each time: the story starts from nothing counted.
  rmSync(RUN, { recursive: true, force: true });
  mkdirSync(HOME, { recursive: true, mode: 0o700 });
  mkdirSync(RESULTS, { recursive: true });
  const log = (name) => createWriteStream(join(RUN, name), { flags: 'a' });

  say('Starting the simulated filtered network...');
  const net = await startNet(aliases, { dir: join(RUN, 'net') });
  stoppers.push(() => net.close());

  say(`Starting the hub (demo: k=${K})...`);
  const hub = await startLoopHub({ k: K, dataDir: join(RUN, 'hub'), keep: true, log: log('hub.log') });
  stoppers.push(() => hub.close());
  const org = setupOrg(hub);

  // The agent: probe pointed at the simulated network (the proxy for the
  // hosts the browser reaches through it), reports sent at once.
  const direct = [...BLOCKPAGE, ...DNS_BLOCKED, ...ALLOWED];
  const agentEnv = {
    ...probeEnv(net, { connectTo: [...BLOCKPAGE, ...ALLOWED], proxyHosts: PROXY_REFUSED, directHosts: direct }),
    DETOUR_REPORT_DELAY: '0',
    DETOUR_HOME: HOME,
  };
  say('Starting the helper and enrolling it with the hub...');
  const agentLog = log('agent.log');
  const agent = spawn(DETOUR, ['agent', '--hub', hub.url, '--no-tray'], { env: { ...process.env, ...agentEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout.pipe(agentLog);
  agent.stderr.pipe(agentLog);
  stoppers.push(async () => {
    if (agent.exitCode === null) { agent.kill('SIGTERM'); await Promise.race([once(agent, 'exit'), sleep(3000)]); }
    await stopAgent(HOME);
  });
  const enrolled = await waitFor(() => {
    try { return enrolHelper(HOME, hub.url, org.code, agentEnv); } catch { return null; }
  }, { timeout: 30000, interval: 500, what: 'enrolment' });

  // The browser: catalog hosts to the simulated network, nothing else resolves.
  const spki = await leafSPKI(net.httpsPort, BLOCKPAGE[0]);
  const hostRules = [
    ...[...BLOCKPAGE, ...ALLOWED].map((h) => `MAP ${h} 127.0.0.1:${net.httpsPort}`),
    ...DNS_BLOCKED.map((h) => `MAP ${h} ~NOTFOUND`),
    'EXCLUDE 127.0.0.1',
    'MAP * ~NOTFOUND',
  ];
  const b = await launchBrowser({
    home: HOME, headless, handleSignals: false,
    env: Object.fromEntries(Object.entries(agentEnv).filter(([k]) => k.startsWith('DETOUR_'))),
    hostRules,
    extraArgs: [`--ignore-certificate-errors-spki-list=${spki}`, `--proxy-pac-url=${pacFor(net.proxyPort, PROXY_REFUSED)}`],
  });
  stoppers.push(() => b.close());
  await waitFor(async () => (await b.helperState())?.hello?.whitelist_version, { timeout: 20000, what: 'the extension connected to the helper' });

  const intro = [
    '',
    'Detour demo is running on a simulated filtered network (everything on 127.0.0.1).',
    `  Organisation:  ${enrolled.org} (Example Borough Council), enrolled at ${hub.url}`,
    `  Dashboard:     ${hub.url}/   demo: k=${K} (a single report shows; real hubs use k=5)`,
    `    sign in as   ${org.email}   password: ${org.password}  (you will be asked to choose a new one)`,
    '  The network blocks:',
    '    https://zoom.us/           a Zscaler block page      (Example Borough approves Microsoft Teams instead)',
    '    https://slack.com/         the filtering DNS resolver says the name does not exist',
    '    https://www.dropbox.com/   the filtering proxy refuses the tunnel (Squid)',
    '  and lets through https://trello.com/, https://miro.com/ and https://teams.microsoft.com/.',
    `  Logs: ${RUN}/hub.log, ${HOME}/state/agent.log`,
  ];
  intro.forEach((l) => say(l));

  if (!headless) {
    say('\nWhat to try: open https://zoom.us/ — Detour shows how it was blocked and offers Microsoft Teams;');
    say('choose why you needed it and click "Report this block"; then sign in to the dashboard and see it counted;');
    say('approve Zoom in the review queue and open the Detour popup (toolbar) to see the new whitelist version.');
    say('Press Ctrl-C (or close the browser) to stop.');
    const dash = await b.context.newPage();
    await dash.goto(`${hub.url}/sign-in`).catch(() => {});
    const first = b.context.pages()[0];
    await first.goto('https://zoom.us/', { waitUntil: 'commit' }).catch(() => {});
    await first.bringToFront();
    try {
      await first.waitForURL((u) => u.href.startsWith(PROMPT_PREFIX), { timeout: 20000 });
      say('(The first tab shows Detour\'s prompt for zoom.us.)');
      if (args.has('--screenshot')) {
        await first.waitForSelector('body[data-ready="true"]');
        await first.screenshot({ path: join(RESULTS, 'demo-headed-prompt.png') });
      }
    } catch { say('(zoom.us did not show the prompt yet: see the logs above.)'); }
    await new Promise((resolve) => b.context.on('close', resolve));
    await stopAll(0);
    return;
  }

  say('\nNo display: running the story headless; screenshots go to test-results/demo-*.png');
  mkdirSync(RESULTS, { recursive: true });
  const shot = async (page, name, what) => {
    const path = join(RESULTS, `demo-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    say(`  ✔ ${what}  → test-results/demo-${name}.png`);
  };
  const { context } = b;

  // 1. A vendor block page.
  const zoom = await context.newPage();
  await gotoPrompt(zoom, 'https://zoom.us/j/81234567890');
  expect(/Zoom.* is blocked/.test(await zoom.textContent('h1')), 'the Zoom prompt');
  const alt = await zoom.$eval('#alternatives li', (e) => e.dataset.service).catch(() => null);
  expect(alt === 'microsoft-teams', `Microsoft Teams offered first (got ${alt})`);
  await shot(zoom, '01-prompt-blockpage', `zoom.us: Zscaler block page → prompt offers Microsoft Teams (${await zoom.getAttribute('body', 'data-method')})`);

  // 2. A DNS block.
  const slack = await context.newPage();
  await gotoPrompt(slack, 'https://slack.com/');
  await shot(slack, '02-prompt-dns', `slack.com: hidden by the filtering DNS → prompt (${await slack.getAttribute('body', 'data-method')})`);

  // 3. A refused tunnel.
  const dropbox = await context.newPage();
  await gotoPrompt(dropbox, 'https://www.dropbox.com/');
  await shot(dropbox, '03-prompt-proxy', `www.dropbox.com: the proxy refuses the tunnel → prompt (${await dropbox.getAttribute('body', 'data-method')})`);

  // 4. An allowed tool loads as usual, and so does the alternative.
  const trello = await context.newPage();
  await trello.goto('https://trello.com/');
  await sleep(1500);
  expect(trello.url().startsWith('https://trello.com/') && /works/.test(await trello.textContent('h1')), 'trello.com loads normally');
  await shot(trello, '04-allowed', 'trello.com: allowed, loads normally, no prompt');

  // 5. Report the Zoom block.
  await zoom.bringToFront();
  await zoom.check('#need-meeting');
  await zoom.click('#report');
  await zoom.waitForSelector('#report-result[data-state]', { timeout: 20000 });
  expect(await zoom.getAttribute('#report-result', 'data-state') === 'queued', `the report queued (${await zoom.textContent('#report-result')})`);
  await shot(zoom, '05-reported', 'Report this block (need: join a meeting) → queued, sent anonymously');

  // 6. Counted at the hub, seen on the dashboard.
  await waitFor(() => hub.aggregates(ORG).overview.top_services.find((i) => i.key === 'zoom')?.count.value === 1,
    { timeout: 30000, interval: 500, what: 'the report counted' }).catch((e) => {
    throw new Error(`${e.message}; the agent's failed reports: ${JSON.stringify(reportFailures(HOME))}`);
  });
  const dash = await context.newPage();
  await signIn(dash, hub.url, org.email, org.password);
  await dash.goto(`${hub.url}/`);
  expect(/Zoom/.test(await dash.textContent('#table-top-services')), 'Zoom on the overview');
  await shot(dash, '06-dashboard-overview', `dashboard overview: Zoom counted (demo: k=${K})`);
  await dash.goto(`${hub.url}/review?status=new`);
  await shot(dash, '07-dashboard-review', 'dashboard review queue: Zoom at Example Borough Council, new');

  // 7. The popup.
  const popup = await context.newPage();
  await popup.goto(b.url('src/popup/popup.html'));
  await popup.waitForSelector('body[data-ready="true"]');
  await popup.locator('body').screenshot({ path: join(RESULTS, 'demo-08-popup.png') });
  say('  ✔ the popup: helper connected, whitelist version, reports sent, recent blocks  → test-results/demo-08-popup.png');

  // 8. IT approves Zoom; the new whitelist reaches the helper; the prompt says approved.
  await dash.bringToFront();
  await dash.goto(`${hub.url}/review/${ORG}/zoom`);
  await dash.check('#status-approved');
  await dash.fill('#note', 'Approved for meetings that partner organisations set up.');
  await dash.click('#decide button[type=submit]');
  await dash.waitForSelector('.govuk-notification-banner');
  const version = Number((/Whitelist version (\d+)/.exec(await dash.textContent('.govuk-notification-banner')) ?? [])[1]);
  expect(version > 0, 'a new whitelist version after the decision');
  await shot(dash, '09-review-approved', `dashboard: Zoom approved → whitelist version ${version} published`);
  await waitFor(async () => (await b.helperState())?.hello?.whitelist_version === version, { timeout: 20000, what: `the helper at version ${version}` });
  const again = await context.newPage();
  await gotoPrompt(again, 'https://zoom.us/');
  expect(await again.getAttribute('body', 'data-status') === 'approved', 'the prompt showing Zoom as approved');
  await shot(again, '10-prompt-approved', `zoom.us again: the helper holds version ${version}; the prompt says Zoom is approved (the filter still blocks it)`);

  say('\nThe demo story ran to the end.');
  await stopAll(0);
}

function expect(ok, what) {
  if (!ok) throw new Error(`demo: expected ${what}`);
}

main().catch(async (e) => {
  process.stderr.write(`\n${e.stack ?? e}\n`);
  if (existsSync(join(RUN, 'hub.log'))) process.stderr.write(`(logs in ${RUN})\n`);
  await stopAll(1);
});
