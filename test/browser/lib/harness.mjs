// The browser test harness: builds what is missing, launches Debian Chromium
// with the real extension and the real native host (bin/detour) registered in
// a private profile, starts the hub and loopback sites, and keeps screenshots
// in test-results/. Reused by the loop test and the benchmark.
//
// Everything listens on 127.0.0.1 only.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHTTP } from 'node:http';
import { createServer as createHTTPS } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = join(ROOT, 'bin');
export const DETOUR = join(BIN, 'detour');
export const DETOUR_SERVER = join(BIN, 'detour-server');
export const EXT_CHROME = join(ROOT, 'extension/dist/chrome');
export const EXT_FIREFOX = join(ROOT, 'extension/dist/firefox');
export const RESULTS = join(ROOT, 'test-results');
export const CHROMIUM = process.env.DETOUR_CHROMIUM ?? '/usr/bin/chromium';
export const FIREFOX = process.env.DETOUR_FIREFOX ?? '/usr/bin/firefox-esr';
export const CHROME_ID = 'namjglpjppneocddaipepcedcopfegan';
export const FIREFOX_ID = 'detour@detour-project.org';
export const NATIVE_HOST = 'org.detour.helper';

const GO = existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : 'go';

// ensureBuilt builds the binaries and the extension when they are missing
// (`make build` normally did it already).
export function ensureBuilt({ server = false } = {}) {
  const env = { ...process.env, CGO_ENABLED: '0' };
  if (!existsSync(DETOUR)) execFileSync(GO, ['build', '-o', DETOUR, './helper/cmd/detour'], { cwd: ROOT, env, stdio: 'inherit' });
  if (server && !existsSync(DETOUR_SERVER)) execFileSync(GO, ['build', '-o', DETOUR_SERVER, './server/cmd/detour-server'], { cwd: ROOT, env, stdio: 'inherit' });
  if (!existsSync(join(EXT_CHROME, 'manifest.json')) || !existsSync(join(EXT_CHROME, 'vendor/govuk.css'))) {
    execFileSync(process.execPath, ['extension/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  }
}

// A short temporary folder (Unix socket paths must stay under 108 bytes).
export function tempDir(prefix = 'dt') {
  return mkdtempSync(join('/tmp', `${prefix}-`));
}

// stopAgent ends the agent that a relay started for this DETOUR_HOME (its pid
// is in the lock file), so tests leave no process behind.
export async function stopAgent(detourHome) {
  const lock = join(detourHome, 'run/agent.lock');
  let pid = 0;
  try { pid = Number.parseInt(readFileSync(lock, 'utf8').trim(), 10); } catch { return; }
  if (!(pid > 1)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  for (let i = 0; i < 40; i++) {
    try { process.kill(pid, 0); } catch { return; }
    await sleep(50);
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(f, { timeout = 10000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) { last = e; }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

export function writeChromeHostManifest(userDataDir, hostPath = DETOUR) {
  const dir = join(userDataDir, 'NativeMessagingHosts');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${NATIVE_HOST}.json`), JSON.stringify({
    name: NATIVE_HOST, description: 'Detour helper (test)', path: hostPath, type: 'stdio',
    allowed_origins: [`chrome-extension://${CHROME_ID}/`],
  }, null, 2));
}

export function chromiumArgs(extDir, { hostRules = [], extra = [] } = {}) {
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--no-default-browser-check', '--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable',
    `--disable-extensions-except=${extDir}`, `--load-extension=${extDir}`];
  if (hostRules.length) args.push(`--host-resolver-rules=${hostRules.join(',')}`);
  return args.concat(extra);
}

// launchChromium starts Chromium with the extension and, unless helper is
// false, the native host registered. env is added to the browser's
// environment (and so the relay's and the agent's): DETOUR_HOME is set to a
// fresh temporary folder, plus any DETOUR_PROBE_* knobs given.
// isolate (default true) ends the host rules with "MAP * ~NOTFOUND" so that
// nothing the browser does leaves the machine.
export async function launchChromium({ helper = true, hostRules = [], env = {}, extraArgs = [], detourHome, hubConfig, isolate = true } = {}) {
  ensureBuilt();
  const { chromium } = await import('playwright-core');
  const userDataDir = tempDir('dt-chr');
  const home = detourHome ?? tempDir('dt-home');
  if (hubConfig) writeHelperConfig(home, hubConfig);
  if (helper) writeChromeHostManifest(userDataDir);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: false, // --headless=new is in args: extensions need the new headless mode
    args: chromiumArgs(EXT_CHROME, { hostRules: isolate && !hostRules.includes('MAP * ~NOTFOUND') ? [...hostRules, 'MAP * ~NOTFOUND', 'EXCLUDE 127.0.0.1'] : hostRules, extra: extraArgs }),
    env: { ...process.env, DETOUR_HOME: home, ...env },
    ignoreHTTPSErrors: false,
    viewport: { width: 1000, height: 900 },
  });
  let sw = context.serviceWorkers().find((w) => w.url().startsWith(`chrome-extension://${CHROME_ID}/`));
  if (!sw) sw = await context.waitForEvent('serviceworker', { predicate: (w) => w.url().startsWith(`chrome-extension://${CHROME_ID}/`), timeout: 15000 });
  const b = {
    context, userDataDir, detourHome: home, serviceWorker: sw, extensionId: CHROME_ID,
    url: (path) => `chrome-extension://${CHROME_ID}/${path}`,
    async page() {
      const p = context.pages()[0] ?? await context.newPage();
      return p;
    },
    async openPopup(query = '') {
      const p = await context.newPage();
      await p.goto(b.url(`src/popup/popup.html${query}`));
      await p.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
      return p;
    },
    // The background's recent decisions (hosts and verdicts only), for tests.
    async decisions() { return sw.evaluate(() => globalThis.detourDebug?.decisions ?? []); },
    async helperState() { return sw.evaluate(() => globalThis.detourDebug?.helper() ?? null); },
    async close() {
      await context.close().catch(() => {});
      await stopAgent(home);
      rmSync(userDataDir, { recursive: true, force: true });
      if (!detourHome) rmSync(home, { recursive: true, force: true });
    },
  };
  return b;
}

// writeHelperConfig writes the agent's config.json (hub URL, pinned keys, org).
export function writeHelperConfig(home, cfg) {
  mkdirSync(join(home, 'config'), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, 'config/config.json'), JSON.stringify(cfg, null, 2), { mode: 0o600 });
}

// ---- loopback sites ------------------------------------------------------------

// makeTLS creates a test CA and a leaf certificate for the given names with
// openssl, in a temporary folder. Returns file paths and PEM strings.
export function makeTLS(names, dir = tempDir('dt-tls')) {
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=Detour Test Public CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`]);
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? 'IP:' : 'DNS:') + n).join(',')}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2', '-extfile', 'ext.cnf']);
  return {
    dir, caFile: join(dir, 'ca.pem'), certFile: join(dir, 'leaf.pem'), keyFile: join(dir, 'leaf.key'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), cert: readFileSync(join(dir, 'leaf.pem'), 'utf8'), key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
    spki: execFileSync('sh', ['-c', 'openssl x509 -in leaf.pem -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64'], { cwd: dir }).toString().trim(),
  };
}

// startSite serves handler on 127.0.0.1 (HTTPS when tls is given).
export async function startSite(handler, { tls } = {}) {
  const srv = tls ? createHTTPS({ cert: tls.cert, key: tls.key }, handler) : createHTTP(handler);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const sockets = new Set();
  srv.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return {
    port: srv.address().port,
    server: srv,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); srv.close(() => r()); }),
  };
}

// A port on 127.0.0.1 that nothing listens on (connection refused).
export async function closedPort() {
  const s = createHTTP();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

// Block pages as filters serve them (public facts; see shared/fingerprints).
export const BLOCK_PAGES = {
  squid: {
    status: 403,
    headers: { 'Server': 'squid/5.7', 'X-Squid-Error': 'ERR_ACCESS_DENIED 0', 'Content-Type': 'text/html;charset=utf-8', 'Mime-Version': '1.0' },
    body: '<!DOCTYPE html><html><head><title>ERROR: The requested URL could not be retrieved</title></head><body>'
      + '<div id="titles"><h1>ERROR</h1><h2>The requested URL could not be retrieved</h2></div>'
      + '<div id="content"><p>The following error was encountered while trying to retrieve the URL: <a href="https://docs.google.com/">https://docs.google.com/</a></p>'
      + '<blockquote id="error"><p><b>Access Denied.</b></p></blockquote>'
      + '<p>Access control configuration prevents your request from being allowed at this time. Please contact your service provider if you feel this is incorrect.</p>'
      + '<p>Your cache administrator is <a href="mailto:webmaster">webmaster</a>.</p></div>'
      + '<div id="footer"><p>Generated by proxy (squid/5.7)</p></div></body></html>',
  },
};

export function serveBlockPage(name) {
  const p = BLOCK_PAGES[name];
  return (req, res) => { res.writeHead(p.status, p.headers); res.end(p.body); };
}

// ---- the hub ---------------------------------------------------------------------

// startHub runs bin/detour-server serve on 127.0.0.1 with a fresh data folder.
export async function startHub({ dataDir = tempDir('dt-hub') } = {}) {
  ensureBuilt({ server: true });
  const proc = spawn(DETOUR_SERVER, ['serve', '--addr', '127.0.0.1:0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`hub did not start: ${err}`)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (https?:\/\/[\d.]+:\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`hub exited ${c}: ${err}`)); });
  });
  return {
    url, dataDir, proc,
    log: () => err,
    admin(...args) {
      return execFileSync(DETOUR_SERVER, ['admin', '--data', dataDir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    },
    async json(path) { const r = await fetch(url + path); return r.json(); },
    async close() {
      proc.kill('SIGTERM');
      await Promise.race([once(proc, 'exit'), sleep(5000)]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// enrolHelper enrols DETOUR_HOME=home with the hub for org (an enrolment code
// from the hub's admin command, then `detour enrol`), which also pins the
// hub's keys, then stops the agent enrol started so the browser's relay starts
// a fresh one with the browser's environment.
export async function enrolHelper(home, hub, org) {
  const out = hub.admin('enrol-code', 'create', org);
  const code = /dtr-[A-Za-z0-9_-]+/.exec(out)?.[0];
  if (!code) throw new Error(`no enrolment code in: ${out}`);
  execFileSync(DETOUR, ['enrol', '--hub', hub.url, '--code', code, '--json'], { env: { ...process.env, DETOUR_HOME: home }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  await stopAgent(home);
  return JSON.parse(readFileSync(join(home, 'config/config.json'), 'utf8'));
}

// ---- the loopback test network (H8's detour-testnet), when present ---------------
// aliases: {catalogHost: scenario}. Returns null when the testnet is not in the tree.
export async function startTestnet(aliases = {}) {
  const src = join(ROOT, 'test/testnet/cmd/detour-testnet');
  if (!existsSync(src)) return null;
  const bin = join(BIN, 'detour-testnet');
  if (!existsSync(bin)) execFileSync(GO, ['build', '-o', bin, './test/testnet/cmd/detour-testnet'], { cwd: ROOT, env: { ...process.env, CGO_ENABLED: '0' }, stdio: 'inherit' });
  const args = Object.entries(aliases).flatMap(([h, sc]) => ['--alias', `${h}=${sc}`]);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const info = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('testnet did not print its addresses')), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) { clearTimeout(t); try { resolve(JSON.parse(out.slice(0, nl))); } catch (e) { reject(e); } }
    });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`testnet exited ${c}`)); });
  });
  return { info, proc, close: async () => { proc.kill('SIGTERM'); await Promise.race([once(proc, 'exit'), sleep(3000)]); } };
}

// ---- results -----------------------------------------------------------------------
export async function screenshot(page, name) {
  mkdirSync(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

// axe runs axe-core in the page (through the DevTools protocol, so the
// extension pages' CSP does not stop it) and returns the violations.
const AXE = readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
export async function axe(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
}

// ---- Firefox -----------------------------------------------------------------------

// A forward proxy on 127.0.0.1 that refuses every CONNECT with 403, as a
// filtering proxy does for a blocked site (Firefox: NS_ERROR_PROXY_FORBIDDEN).
export async function startRefusingProxy() {
  const seen = [];
  const srv = createHTTP((req, res) => { res.writeHead(403, { 'Content-Type': 'text/plain' }); res.end('Forbidden by the test proxy'); });
  srv.on('connect', (req, sock) => { seen.push(req.url); sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'); });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return { port: srv.address().port, seen, close: () => new Promise((r) => srv.close(() => r())) };
}

export const FIREFOX_UUID = '6b1f3c0e-6d0a-4f57-9c7e-3d5e2f1a9b10';

// launchFirefox starts Debian firefox-esr over WebDriver BiDi (puppeteer-core)
// with a temporary HOME whose ~/.mozilla/native-messaging-hosts registers
// bin/detour, installs the built extension temporarily, and pins its
// moz-extension UUID so tests can recognise its pages.
export async function launchFirefox({ proxyPort, env = {} } = {}) {
  ensureBuilt();
  const puppeteer = (await import('puppeteer-core')).default;
  const home = tempDir('dt-ffh');
  const detourHome = tempDir('dt-home');
  const nmh = join(home, '.mozilla/native-messaging-hosts');
  mkdirSync(nmh, { recursive: true });
  writeFileSync(join(nmh, `${NATIVE_HOST}.json`), JSON.stringify({
    name: NATIVE_HOST, description: 'Detour helper (test)', path: DETOUR, type: 'stdio', allowed_extensions: [FIREFOX_ID],
  }, null, 2));
  const prefs = {
    'extensions.webextensions.uuids': JSON.stringify({ [FIREFOX_ID]: FIREFOX_UUID }),
    'app.update.enabled': false, 'browser.shell.checkDefaultBrowser': false, 'datareporting.policy.dataSubmissionEnabled': false,
  };
  if (proxyPort) {
    Object.assign(prefs, { 'network.proxy.type': 1, 'network.proxy.ssl': '127.0.0.1', 'network.proxy.ssl_port': proxyPort,
      'network.proxy.http': '127.0.0.1', 'network.proxy.http_port': proxyPort, 'network.proxy.no_proxies_on': '', 'network.proxy.allow_hijacking_localhost': true });
  }
  const browser = await puppeteer.launch({
    browser: 'firefox', executablePath: FIREFOX, headless: true,
    env: { ...process.env, HOME: home, DETOUR_HOME: detourHome, ...env },
    extraPrefsFirefox: prefs,
  });
  const addonId = await browser.installExtension(EXT_FIREFOX);
  return {
    browser, addonId, home, detourHome,
    url: (path) => `moz-extension://${FIREFOX_UUID}/${path}`,
    async close() {
      await browser.close().catch(() => {});
      await stopAgent(detourHome);
      rmSync(home, { recursive: true, force: true });
      rmSync(detourHome, { recursive: true, force: true });
    },
  };
}
