// The extension and the helper on the loopback filtered network (H8's
// detour-testnet): catalog hosts are aliased to scenarios, Chromium reaches
// them through --host-resolver-rules (and a PAC file for the proxy), and the
// agent's probe through the DETOUR_PROBE_* knobs. Blocks of each kind end on
// the prompt with the right method and vendor; look-alikes (a CDN challenge, a
// proxy's upstream failure) do not.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startTestnet, screenshot, waitFor, sleep, CHROME_ID } from './lib/harness.mjs';

const PROMPT = `chrome-extension://${CHROME_ID}/src/prompt/prompt.html`;

// catalog host → [scenario, how Chromium reaches it, expected {prompt, method, vendor}]
const CASES = {
  'zoom.us': ['blockpage-zscaler', 'https', { prompt: true, method: 'http-blockpage', vendor: 'Zscaler' }],
  'miro.com': ['dns-nxdomain', 'nxdomain', { prompt: true, method: 'dns-nxdomain' }],
  'dropbox.com': ['proxy-refused', 'proxy', { prompt: true, method: 'proxy-refused' }],
  // A redirect to the filter's block page host (Meraki's port 8090 page).
  'airtable.com': ['blockpage-meraki', 'https', { prompt: true, method: 'http-blockpage', vendor: 'meraki' }],
  // A block page served with status 200: readable, so a banner on the page.
  'basecamp.com': ['blockpage-fortinet', 'https', { banner: true, method: 'http-blockpage' }],
  // A 403 challenge looks block-like to the browser: the helper must clear it.
  'slack.com': ['lookalike-cloudflare-challenge', 'https', { prompt: false, decided: true }],
  'asana.com': ['lookalike-squid-upstream', 'https', { prompt: false }],
  'trello.com': ['site-503', 'https', { prompt: false }],
  // A bare 403 through an inspection CA: the network could have sent it,
  // nothing proves it did: "possibly blocked", the alternative without the claim.
  'notion.so': ['status-403', 'inspected', { prompt: true, possible: true, method: 'http-status' }],
};

describe('on the loopback filtered network', () => {
  let net, b;
  before(async () => {
    net = await startTestnet(Object.fromEntries(Object.entries(CASES).map(([h, [s]]) => [h, s])));
    if (!net) return;
    const port = (a) => a.split(':').pop();
    const https = port(net.info.https);
    const inspected = port(net.info.inspect_https);
    const proxy = new URL(net.info.proxy);
    const rules = [];
    const connectTo = [];
    const pacHosts = [];
    for (const [h, [, how]] of Object.entries(CASES)) {
      if (how === 'https') { rules.push(`MAP ${h} 127.0.0.1:${https}`); connectTo.push(`${h}:443:127.0.0.1:${https}`); }
      if (how === 'inspected') { rules.push(`MAP ${h} 127.0.0.1:${inspected}`); connectTo.push(`${h}:443:127.0.0.1:${inspected}`); }
      if (how === 'nxdomain') rules.push(`MAP ${h} ~NOTFOUND`);
      if (how === 'proxy') pacHosts.push(h);
    }
    rules.push('MAP * ~NOTFOUND', 'EXCLUDE 127.0.0.1'); // nothing else leaves the machine
    const pac = `function FindProxyForURL(url, host) { if (${JSON.stringify(pacHosts)}.indexOf(host) >= 0) return "PROXY ${proxy.host}"; return "DIRECT"; }`;
    b = await launchChromium({
      hostRules: rules,
      extraArgs: ['--ignore-certificate-errors', `--proxy-pac-url=data:application/x-ns-proxy-autoconfig;base64,${Buffer.from(pac).toString('base64')}`],
      env: {
        DETOUR_PROBE_DNS: net.info.dns,
        DETOUR_PROBE_SECOND_DNS: net.info.public_dns,
        DETOUR_PROBE_CONNECT_TO: connectTo.join(','),
        DETOUR_PROBE_PUBLIC_CA_FILE: net.info.public_ca_file,
        DETOUR_PROBE_CA_FILE: net.info.public_ca_file,
        DETOUR_PROBE_CAPTIVE_URL: net.info.online_url,
      },
    });
    const p = await b.openPopup();
    await p.waitForSelector('#helper-state[data-connected="true"]', { timeout: 20000 });
    await p.close();
  });
  after(async () => { await b?.close(); await net?.close(); });

  for (const [host, [scenario, , want]] of Object.entries(CASES)) {
    test(`${host} as ${scenario}: ${want.banner ? `banner (${want.method})` : want.prompt ? `prompt (${want.method})` : 'no prompt'}`, async (t) => {
      if (!net) { t.skip('test/testnet is not in this tree'); return; }
      const page = await b.context.newPage();
      await page.goto(`https://${host}/some/private/path?q=1`, { waitUntil: 'commit', timeout: 20000 }).catch(() => {});
      const decision = () => waitFor(async () => (await b.decisions()).find((x) => x.host === host && x.source), { timeout: 25000, what: `a decision for ${host}` });
      let d = null;
      if (want.prompt || want.decided || want.banner) d = await decision();
      else {
        // The site's own error page: nothing block-like for the browser to act on.
        await page.waitForLoadState('load', { timeout: 15000 }).catch(() => {});
        await sleep(2000);
        d = (await b.decisions()).find((x) => x.host === host && x.source) ?? null;
      }
      if (want.banner) {
        assert.equal(d.mode, 'banner', JSON.stringify(d));
        assert.equal(d.blocked, true, JSON.stringify(d));
        assert.equal(d.method, want.method, JSON.stringify(d));
        await page.waitForSelector('#detour-banner', { state: 'attached', timeout: 10000 });
        assert.equal(await page.getAttribute('html', 'data-detour-banner'), want.method);
        assert.match(await page.locator('#detour-banner [role=alert]').textContent(), /is blocked by your organisation's web filter/);
        assert.ok(page.url().startsWith(`https://${host}/`), 'the readable page stays, with the banner');
        await screenshot(page, `banner-${scenario}`);
        await page.locator('#detour-banner button').click();
        await page.waitForURL((u) => u.href.startsWith(PROMPT), { timeout: 15000, waitUntil: 'commit' });
        await page.waitForSelector('body[data-ready="true"]');
        assert.equal(new URL(page.url()).searchParams.get('host'), host);
      } else if (want.prompt) {
        assert.equal(d.prompt, true, JSON.stringify(d));
        assert.equal(d.method, want.method, JSON.stringify(d));
        assert.equal(d.blocked, !want.possible, JSON.stringify(d));
        assert.equal(d.possible, !!want.possible, JSON.stringify(d));
        if (want.vendor) assert.equal(d.vendor?.toLowerCase().includes(want.vendor.toLowerCase()), true, JSON.stringify(d));
        await page.waitForURL((u) => u.href.startsWith(PROMPT), { timeout: 15000, waitUntil: 'commit' });
        await page.waitForSelector('body[data-ready="true"]');
        assert.equal(new URL(page.url()).searchParams.get('method'), want.method);
        assert.ok(!page.url().includes('private'));
        assert.equal(await page.getAttribute('body', 'data-verdict'), want.possible ? 'possible' : 'blocked');
        assert.match(await page.textContent('h1'), want.possible ? /may be blocked/ : /is blocked/);
        assert.match(await page.textContent('#report-heading'), want.possible ? /possible block/ : /^Report this block$/);
        // This helper is not enrolled: reporting is visibly unavailable, and says why.
        assert.equal(await page.isDisabled('#report'), true);
        assert.match(await page.textContent('#report-unavailable'), /enrolled with your organisation/);
        await screenshot(page, `prompt-${scenario}`);
      } else {
        // Either the browser saw nothing block-like, or the helper said it was not a block.
        if (d) assert.equal(d.prompt, false, JSON.stringify(d));
        if (want.decided) assert.equal(d.source, 'helper', JSON.stringify(d));
        await sleep(500);
        assert.ok(!page.url().startsWith(PROMPT), `${host}: ${page.url()} ${JSON.stringify(d)}`);
      }
      await page.close();
    });
  }
});
