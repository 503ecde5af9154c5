// The whole Detour stack on loopback, for the loop test (test/browser/loop.test.mjs)
// and the demo (test/demo/demo.mjs): a hub (bin/detour-server) with the example
// organisations, an enrolment code and an organisation admin; the simulated
// filtered network (bin/detour-testnet) with catalog hosts aliased to its
// scenarios; a helper home enrolled with the hub; Chromium with the real
// extension whose native host is bin/detour.
//
// Builds on H7's harness (lib/harness.mjs). Everything listens on 127.0.0.1.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  ROOT, BIN, DETOUR, DETOUR_SERVER, EXT_CHROME, CHROMIUM, CHROME_ID, ensureBuilt, tempDir, sleep, waitFor,
  writeChromeHostManifest, chromiumArgs, stopAgent,
} from './harness.mjs';

const GO = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';
export const ORG = 'example-borough';
export const ORG_ADMIN = 'it@borough.example';

// ---- the hub -------------------------------------------------------------------------

// startLoopHub: a fresh data folder (or dataDir, kept), `catalog import
// --examples`, then `serve --addr 127.0.0.1:0 --k K`. k is the k-anonymity
// threshold; tests and the demo pass 1 so that a single report is visible
// (production keeps the default 5). Returns {url, k, admin(...), close()}.
export async function startLoopHub({ k = 1, dataDir, keep = false, addr = '127.0.0.1:0', log } = {}) {
  ensureBuilt({ server: true });
  const data = dataDir ?? tempDir('dt-hub');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  const admin = (...args) => execFileSync(DETOUR_SERVER, ['admin', '--data', data, '--k', String(k), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30000 });
  if (!existsSync(join(data, 'detour.db'))) admin('catalog', 'import', '--examples');
  const proc = spawn(DETOUR_SERVER, ['serve', '--addr', addr, '--data', data, '--k', String(k)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; log?.write(d); });
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`hub did not start: ${err}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      log?.write(d);
      const m = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`hub exited ${c}: ${err}`)); });
  });
  return {
    url, k, dataDir: data, proc,
    log: () => err,
    admin,
    adminJSON: (...args) => JSON.parse(admin(...args, '--json')),
    // The figures the dashboard shows, read with the admin command.
    aggregates: (org) => JSON.parse(admin('aggregates', ...(org ? ['--org', org] : []), '--json')),
    async whitelist() {
      const env = await (await fetch(`${url}/api/v1/whitelist`)).json();
      return JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
    },
    async close() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([once(proc, 'exit'), sleep(5000)]);
      }
      if (!keep) rmSync(data, { recursive: true, force: true });
    },
  };
}

// setupOrg makes what a newcomer's IT team would: an enrolment code for ORG
// and an organisation-admin account (one-time password). Returns
// {code, email, password}.
export function setupOrg(hub, { org = ORG, email = ORG_ADMIN } = {}) {
  const code = hub.adminJSON('enrol-code', 'create', org).code;
  const password = hub.adminJSON('user', 'add', email, '--role', 'org-admin', '--org', org).password;
  if (!code || !password) throw new Error('setupOrg: no code or password from the admin commands');
  return { code, email, password };
}

// ---- the simulated filtered network ------------------------------------------------

// startNet runs bin/detour-testnet with --alias HOST=SCENARIO for each entry
// of aliases and returns its JSON description plus helpers.
export async function startNet(aliases = {}, { dir } = {}) {
  const bin = join(BIN, 'detour-testnet');
  if (!existsSync(bin) || newerThan(bin, [join(ROOT, 'test/testnet'), join(ROOT, 'test/testnet/cmd/detour-testnet'), join(ROOT, 'shared/fingerprints')])) {
    execFileSync(GO, ['build', '-o', bin, './test/testnet/cmd/detour-testnet'],
      { cwd: ROOT, env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
  }
  const args = [];
  if (dir) { mkdirSync(dir, { recursive: true }); args.push('--dir', dir); }
  for (const [h, s] of Object.entries(aliases)) args.push('--alias', `${h}=${s}`);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const info = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`testnet did not print its addresses: ${err}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(t); try { resolve(JSON.parse(out.slice(0, nl))); } catch (e) { reject(e); } }
    });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`testnet exited ${c}: ${err}`)); });
  });
  const httpsPort = Number(info.https.split(':').pop());
  return {
    info, proc, httpsPort,
    proxyPort: Number(info.proxy.split(':').pop()),
    async close() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([once(proc, 'exit'), sleep(3000)]);
      }
    },
  };
}

// newerThan: whether a file in dirs (not recursive) changed after bin was built
// (`make build` does not build detour-testnet, so a stale one could linger).
function newerThan(bin, dirs) {
  const built = statSync(bin).mtimeMs;
  return dirs.some((d) => {
    try { return readdirSync(d).some((f) => statSync(join(d, f)).mtimeMs > built); } catch { return false; }
  });
}

// leafSPKI returns the base64 SHA-256 of the certificate key that
// 127.0.0.1:port presents for servername: Chromium's
// --ignore-certificate-errors-spki-list then trusts that one key only (the
// testnet's stand-in for the public web PKI), and nothing else.
export async function leafSPKI(port, servername) {
  const sock = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  await once(sock, 'secureConnect');
  const raw = sock.getPeerCertificate().raw;
  sock.destroy();
  const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

// probeEnv points the agent's probe at the simulated network: its filtering
// resolver (and the honest one as a second opinion), its connectivity check,
// its public CA, and connect-to rules for hosts served by its HTTPS server.
// Nothing outside 127.0.0.1 is contacted.
export function probeEnv(net, { connectTo = [], proxyHosts = [], directHosts = [] } = {}) {
  const env = {
    DETOUR_PROBE_DNS: net.info.dns,
    DETOUR_PROBE_SECOND_DNS: net.info.public_dns,
    DETOUR_PROBE_CA_FILE: net.info.public_ca_file,
    DETOUR_PROBE_PUBLIC_CA_FILE: net.info.public_ca_file,
    DETOUR_PROBE_CAPTIVE_URL: net.info.online_url,
    DETOUR_PROBE_TIMEOUT: '6s',
  };
  if (connectTo.length) env.DETOUR_PROBE_CONNECT_TO = connectTo.map((h) => `${h}:443:127.0.0.1:${net.httpsPort}`).join(',');
  if (proxyHosts.length) {
    // The agent reaches proxyHosts through the filtering proxy, as the
    // browser does (its PAC file); everything else directly. The hub on
    // 127.0.0.1 is never proxied (Go's proxy rules skip loopback).
    env.HTTPS_PROXY = net.info.proxy;
    env.HTTP_PROXY = net.info.proxy;
    env.NO_PROXY = ['127.0.0.1', 'localhost', ...directHosts].join(',');
  }
  return env;
}

// pacFor returns a data: URL PAC script that sends proxyHosts (and their
// subdomains) to the proxy and everything else DIRECT.
export function pacFor(proxyPort, proxyHosts) {
  const conds = proxyHosts.map((h) => `host == ${JSON.stringify(h)} || dnsDomainIs(host, ${JSON.stringify('.' + h)})`).join(' || ');
  const js = `function FindProxyForURL(url, host) { if (${conds || 'false'}) return "PROXY 127.0.0.1:${proxyPort}"; return "DIRECT"; }`;
  return `data:application/x-ns-proxy-autoconfig;base64,${Buffer.from(js).toString('base64')}`;
}

// ---- the helper ----------------------------------------------------------------------

// enrolHelper runs `bin/detour enrol --hub URL --code CODE --json` in a
// helper home. The enrol command starts the agent for that home with env
// (so the agent carries the probe and report-delay knobs); the browser's
// relay then connects to the same agent.
export function enrolHelper(home, hubURL, code, env = {}) {
  const out = execFileSync(DETOUR, ['enrol', '--hub', hubURL, '--code', code, '--json'],
    { encoding: 'utf8', env: { ...process.env, ...env, DETOUR_HOME: home }, timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out);
}

// reportFailures returns why the agent gave up on reports (best effort, for
// error messages): the last_error of each report in its failed folder.
export function reportFailures(home) {
  const dir = join(home, 'state/reports/failed');
  try {
    return readdirSync(dir).map((f) => {
      try { return JSON.parse(readFileSync(join(dir, f), 'utf8')).last_error ?? f; } catch { return f; }
    });
  } catch { return []; }
}

// helperCLI runs another `bin/detour` command in the helper home.
export function helperCLI(home, env, ...args) {
  return execFileSync(DETOUR, args, { encoding: 'utf8', env: { ...process.env, ...env, DETOUR_HOME: home }, timeout: 30000, stdio: ['ignore', 'pipe', 'pipe'] });
}

// ---- the browser ----------------------------------------------------------------------

// launchBrowser starts Chromium with the extension and the native host in a
// private profile, like the harness's launchChromium, and can also run
// headed (the demo with a display). env reaches the relay and, if the relay
// has to start one, the agent.
// handleSignals false leaves SIGINT/SIGTERM/SIGHUP to the caller (Playwright's
// own handler closes the browser and exits the process at once).
export async function launchBrowser({ home, headless = true, hostRules = [], extraArgs = [], env = {}, viewport = { width: 1100, height: 900 }, handleSignals = true } = {}) {
  ensureBuilt();
  const { chromium } = await import('playwright-core');
  const userDataDir = tempDir('dt-chr');
  writeChromeHostManifest(userDataDir);
  let args = chromiumArgs(EXT_CHROME, { hostRules, extra: extraArgs });
  if (!headless) args = args.filter((a) => a !== '--headless=new');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: false, // --headless=new is in args when headless: extensions need the new headless mode
    args,
    env: { ...process.env, ...env, DETOUR_HOME: home },
    viewport: headless ? viewport : null,
    handleSIGINT: handleSignals, handleSIGTERM: handleSignals, handleSIGHUP: handleSignals,
  });
  const isOurs = (w) => w.url().startsWith(`chrome-extension://${CHROME_ID}/`);
  const sw = context.serviceWorkers().find(isOurs) ?? await context.waitForEvent('serviceworker', { predicate: isOurs, timeout: 20000 });
  const b = {
    context, userDataDir, serviceWorker: sw,
    url: (path) => `chrome-extension://${CHROME_ID}/${path}`,
    async helperState() { return sw.evaluate(() => globalThis.detourDebug?.helper() ?? null); },
    async decisions() { return sw.evaluate(() => globalThis.detourDebug?.decisions ?? []); },
    async openPopup(query = '') {
      const p = await context.newPage();
      await p.goto(b.url(`src/popup/popup.html${query}`));
      await p.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
      return p;
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
  return b;
}

export const PROMPT_PREFIX = `chrome-extension://${CHROME_ID}/src/prompt/prompt.html`;

// gotoBlocked navigates page to url and waits for the extension's prompt to
// replace it (ready: body[data-ready=true]).
export async function gotoPrompt(page, url, { timeout = 25000 } = {}) {
  await page.goto(url, { waitUntil: 'commit', timeout: 15000 }).catch(() => {});
  await page.waitForURL((u) => u.href.startsWith(PROMPT_PREFIX), { timeout });
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return page;
}

// ---- the dashboard ---------------------------------------------------------------------

// signIn signs in to the dashboard at hubURL, changing the one-time password
// when asked to. Returns the password now in force.
export async function signIn(page, hubURL, email, password, newPassword = 'a long demo passphrase for detour') {
  await page.goto(`${hubURL}/sign-in`);
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('main button[type=submit]');
  await page.waitForURL((u) => !u.pathname.endsWith('/sign-in'), { timeout: 15000 });
  if (page.url().endsWith('/account/password')) {
    await page.fill('#current', password);
    await page.fill('#new', newPassword);
    await page.fill('#confirm', newPassword);
    await page.click('main button[type=submit]');
    await page.waitForURL((u) => !u.pathname.endsWith('/account/password'), { timeout: 15000 });
    return newPassword;
  }
  return password;
}

export { sleep, waitFor, stopAgent, tempDir, ROOT };
