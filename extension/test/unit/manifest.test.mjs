import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeManifest, loadCatalog, makeSnapshot, loadVendors, build, FIREFOX_ID } from '../../build.mjs';
import { catalogHosts, matchPatterns, urlFilters, serviceForHost, originOf } from '../../src/lib/catalog.js';

const ext = join(dirname(fileURLToPath(import.meta.url)), '../..');
const base = JSON.parse(readFileSync(join(ext, 'manifest.base.json'), 'utf8'));
const catalog = loadCatalog();
const fixture = loadCatalog(join(ext, 'test/fixtures/catalog.json'));
const idsGo = readFileSync(join(ext, '../shared/ids/ids.go'), 'utf8');

// The Chrome extension ID from the manifest key: the first 128 bits of
// SHA-256 of the DER public key, written with the letters a–p.
async function chromeID(key) {
  const { createHash } = await import('node:crypto');
  const h = createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex').slice(0, 32);
  return [...h].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}

test('Chrome manifest: key, service worker, the pinned ID', async () => {
  const m = makeManifest(base, 'chrome', catalog);
  assert.equal(m.manifest_version, 3);
  assert.equal(m.key, base.key);
  assert.equal(m.background.service_worker, 'src/background.js');
  assert.equal(m.background.scripts, undefined);
  assert.equal(m.browser_specific_settings, undefined);
  const id = await chromeID(base.key);
  assert.match(idsGo, new RegExp(`ChromeExtensionID = "${id}"`), 'shared/ids agrees with the key');
});

test('Firefox manifest: gecko id, background scripts, no key', () => {
  const m = makeManifest(base, 'firefox', catalog);
  assert.equal(m.manifest_version, 3);
  assert.equal(m.key, undefined);
  assert.deepEqual(m.background.scripts, ['src/background.js']);
  assert.equal(m.background.service_worker, undefined);
  assert.equal(m.browser_specific_settings.gecko.id, FIREFOX_ID);
  assert.match(idsGo, new RegExp(`FirefoxExtensionID = "${FIREFOX_ID}"`));
  assert.ok(Number.parseFloat(m.browser_specific_settings.gecko.strict_min_version) <= 153, 'Debian firefox-esr can install it');
});

test('minimal permissions', () => {
  for (const t of ['chrome', 'firefox']) {
    const m = makeManifest(base, t, catalog);
    assert.deepEqual([...m.permissions].sort(), ['nativeMessaging', 'storage', 'webNavigation', 'webRequest']);
    assert.equal(m.optional_permissions, undefined);
    assert.ok(!m.permissions.includes('webRequestBlocking'));
  }
});

// Every host pattern and filter names a catalog host (or its subdomains), nothing else.
function checkHosts(cat) {
  const hosts = new Set(catalogHosts(cat.services));
  for (const t of ['chrome', 'firefox']) {
    for (const p of makeManifest(base, t, cat).host_permissions) {
      const m = /^\*:\/\/\*\.([a-z0-9.-]+)\/\*$/.exec(p);
      assert.ok(m, `pattern ${p}`);
      assert.ok(hosts.has(m[1]), `${p} is not a catalog host`);
    }
  }
  for (const p of matchPatterns([...hosts])) assert.ok(hosts.has(p.slice(6, -2)), p);
  for (const f of urlFilters([...hosts])) {
    const h = f.hostEquals ?? f.hostSuffix?.slice(1);
    assert.ok(hosts.has(h), JSON.stringify(f));
    assert.equal(Object.keys(f).length, 1);
    if (f.hostSuffix) assert.ok(f.hostSuffix.startsWith('.'), 'a suffix filter never matches a look-alike (evildocs.google.com.attacker)');
  }
  assert.ok(hosts.size > 0);
}
test('no host outside the catalog (real catalog)', () => checkHosts(catalog));
test('no host outside the catalog (fixture)', () => checkHosts(fixture));

test('host lookups: the most specific listing wins, look-alikes do not match', () => {
  assert.equal(serviceForHost(catalog.services, 'docs.google.com').id, 'google-docs');
  assert.equal(serviceForHost(catalog.services, 'DOCS.Google.com.').id, 'google-docs');
  assert.equal(serviceForHost(catalog.services, 'evil-docs.google.com'), null);
  assert.equal(serviceForHost(catalog.services, 'docs.google.com.evil.example'), null);
  assert.equal(serviceForHost(catalog.services, 'google.com'), null);
  const forms = serviceForHost(catalog.services, 'forms.office.com');
  if (forms) assert.notEqual(forms.id, serviceForHost(catalog.services, 'www.office.com').id);
});

test('only the origin is kept', () => {
  assert.deepEqual(originOf('https://docs.google.com/document/d/SECRET/edit?usp=sharing#x'),
    { scheme: 'https', host: 'docs.google.com', origin: 'https://docs.google.com/' });
  assert.equal(originOf('https://user:pass@docs.google.com:8443/x').origin, 'https://docs.google.com/');
  assert.equal(originOf('file:///etc/passwd'), null);
  assert.equal(originOf('not a url'), null);
});

test('snapshot has services and a date, and no organisations or policies', () => {
  const s = makeSnapshot(catalog, '2026-01-01T00:00:00Z');
  assert.equal(s.built_at, '2026-01-01T00:00:00Z');
  assert.equal(s.services.length, catalog.services.length);
  assert.equal(s.policies, undefined);
  assert.equal(s.organisations, undefined);
});

test('build writes both targets from one source', async () => {
  const out = mkdtempSync(join(tmpdir(), 'detour-build-'));
  try {
    const r = await build({ out, css: false, catalogPath: join(ext, 'test/fixtures/catalog.json') });
    assert.equal(r.services, fixture.services.length);
    for (const t of ['chrome', 'firefox']) {
      const m = JSON.parse(readFileSync(join(out, t, 'manifest.json'), 'utf8'));
      assert.equal(m.name, '__MSG_extName__');
      for (const f of ['src/background.js', 'src/popup/popup.html', 'src/prompt/prompt.html', 'src/generated/snapshot.js',
        '_locales/en/messages.json', '_locales/cy/messages.json', 'icons/128.png']) assert.ok(existsSync(join(out, t, f)), `${t}/${f}`);
      const snap = readFileSync(join(out, t, 'src/generated/snapshot.js'), 'utf8');
      assert.match(snap, /docs\.google\.com/);
      assert.match(snap, /May be out of date/);
    }
    assert.ok(JSON.parse(readFileSync(join(out, 'chrome/manifest.json'), 'utf8')).key);
    assert.ok(!('key' in JSON.parse(readFileSync(join(out, 'firefox/manifest.json'), 'utf8'))));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the header hints name vendors by their fingerprint ids', async () => {
  const vendors = loadVendors();
  const { browserCandidate } = await import('../../src/lib/verdict.js');
  const cases = [
    [{ 'x-squid-error': 'ERR_ACCESS_DENIED 0' }, 'squid'],
    [{ server: 'Zscaler/6.2' }, 'zscaler'],
  ];
  for (const [headers, id] of cases) {
    const c = browserCandidate({ status: 403, headers });
    assert.equal(c.vendor, id);
    if (Object.keys(vendors).length) assert.ok(vendors[id], `${id} is a fingerprint id`);
  }
});
