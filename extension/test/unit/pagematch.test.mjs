// The browser-side fingerprint matching, checked against every sample
// response in shared/fingerprints: a block page is recognised as its vendor's
// (when it has page or redirect rules the browser can check), and a look-alike
// (a CDN challenge, a proxy's upstream failure, a captive portal) never as a block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRules, matchPage, matchRedirect } from '../../src/lib/pagematch.js';
import { loadFingerprints } from '../../build.mjs';
import { browserCandidate, combine } from '../../src/lib/verdict.js';

const fps = loadFingerprints();
const rules = compileRules(fps);
const title = (html) => (/<title>([^<]*)<\/title>/i.exec(html) ?? [])[1] ?? '';

test('fingerprints are present', () => {
  assert.ok(fps.length >= 20);
  assert.ok(rules.page.length > 20 && rules.redirect.length > 5);
});

for (const fp of fps) {
  const s = fp.sample;
  if (!s) continue;
  test(`sample of ${fp.id} (${fp.kind})`, () => {
    const m = s.location ? matchRedirect(rules, s.location) ?? matchPage(rules, { title: title(s.body), html: s.body }) : matchPage(rules, { title: title(s.body), html: s.body });
    if (fp.kind === 'block') {
      // Some vendors are recognised only by status and headers: the helper's job.
      if (m) {
        assert.equal(m.kind, 'block', JSON.stringify(m));
        assert.equal(m.vendor, fp.vendor, JSON.stringify(m));
      }
    } else {
      assert.ok(!m || m.kind !== 'block', `${fp.id} was taken for a block: ${JSON.stringify(m)}`);
      // And such a page never prompts on the browser's evidence alone.
      const v = combine(browserCandidate({ status: s.status, pageMatch: m ?? undefined }), null);
      assert.equal(v.prompt, false);
    }
  });
}

test('most block samples are recognised in the browser', () => {
  const blocks = fps.filter((f) => f.kind === 'block' && f.sample);
  const seen = blocks.filter((f) => {
    const s = f.sample;
    const m = (s.location && matchRedirect(rules, s.location)) || matchPage(rules, { title: title(s.body), html: s.body });
    return m?.vendor === f.vendor;
  });
  assert.ok(seen.length >= blocks.length * 0.6, `${seen.length} of ${blocks.length}`);
});

test('ordinary pages and sign-in redirects match nothing', () => {
  assert.equal(matchPage(rules, { title: 'Untitled document - Google Docs', html: '<html><body><div>Meeting notes: agenda, actions</div></body></html>' }), null);
  assert.equal(matchRedirect(rules, 'https://accounts.google.com/ServiceLogin?continue=https://docs.google.com/'), null);
  assert.equal(matchRedirect(rules, 'https://login.microsoftonline.com/common/oauth2/authorize?client_id=x'), null);
  assert.equal(matchRedirect(rules, 'not a url'), null);
});

test('redirect host rules need the host itself or a subdomain', () => {
  const r = compileRules([{ id: 'x', vendor: 'X', kind: 'block', confidence: 0.9, rules: [{ redirect: { hosts: ['block.example'] } }] }]);
  assert.equal(matchRedirect(r, 'https://block.example/a').vendor, 'X');
  assert.equal(matchRedirect(r, 'https://eu.block.example/a').vendor, 'X');
  assert.equal(matchRedirect(r, 'https://notblock.example/a'), null);
});

test('a page match makes a candidate; a look-alike is ignored', () => {
  const c = browserCandidate({ pageMatch: { id: 'fortinet', vendor: 'Fortinet FortiGate', kind: 'block', confidence: 0.95 } });
  assert.equal(c.method, 'http-blockpage');
  assert.equal(c.vendor, 'fortinet');
  assert.equal(browserCandidate({ pageMatch: { id: 'cloudflare-challenge', vendor: 'Cloudflare', kind: 'not-a-block', confidence: 0.9 } }).ignore, 'look-alike');
});
