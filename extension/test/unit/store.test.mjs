// The store builds: what the Chrome Web Store, Edge Add-ons and AMO check on
// upload, checked here first. Built once into a temporary folder from the
// real catalog, with the icons rendered from the one SVG.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, checkDescriptions, STORE_TARGETS, ICON_SIZES, LISTING_ICON_SIZES, MAX_DESCRIPTION, FIREFOX_ID } from '../../build.mjs';

const ext = join(dirname(fileURLToPath(import.meta.url)), '../..');
let out;
before(async () => {
  out = mkdtempSync(join(tmpdir(), 'detour-store-'));
  await build({ out, css: false });
});
after(() => rmSync(out, { recursive: true, force: true }));

const manifest = (t) => JSON.parse(readFileSync(join(out, t, 'manifest.json'), 'utf8'));
function files(dir) {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
}
// Width and height from a PNG's IHDR.
function pngSize(path) {
  const b = readFileSync(path);
  assert.equal(b.subarray(1, 4).toString(), 'PNG', path);
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

test('store builds carry no key; Chrome and Edge builds are the service-worker family, AMO keeps the gecko id', () => {
  for (const t of STORE_TARGETS) assert.ok(!('key' in manifest(t)), `${t} has a key`);
  for (const t of ['chrome-store', 'edge-store']) {
    assert.equal(manifest(t).background.service_worker, 'src/background.js');
    assert.equal(manifest(t).browser_specific_settings, undefined);
  }
  assert.equal(manifest('amo').browser_specific_settings.gecko.id, FIREFOX_ID);
  assert.ok(manifest('chrome').key, 'the development build keeps its pinned ID');
  assert.deepEqual(manifest('chrome-store').permissions, manifest('chrome').permissions);
});

test('every locale: a name and a description within what the stores allow', () => {
  const locales = readdirSync(join(ext, '_locales'));
  assert.deepEqual(locales.sort(), ['cy', 'en']);
  for (const l of locales) {
    const m = JSON.parse(readFileSync(join(ext, '_locales', l, 'messages.json'), 'utf8'));
    const d = [...m.extDescription.message];
    assert.ok(d.length > 40 && d.length <= MAX_DESCRIPTION, `${l}: description is ${d.length} characters`);
    // AMO allows 50 characters of name, Edge 45.
    assert.ok([...m.extName.message].length <= 45, `${l}: name`);
  }
  assert.equal(MAX_DESCRIPTION, 132);
});

test('a description over the limit stops the build with the locale named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'detour-locales-'));
  try {
    mkdirSync(join(dir, 'cy'));
    writeFileSync(join(dir, 'cy/messages.json'), JSON.stringify({ extDescription: { message: 'y'.repeat(133) } }));
    assert.throws(() => checkDescriptions(dir), /cy extDescription is 133 characters; stores allow 132/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('icons at every size, rendered from the SVG, named by the manifest', () => {
  for (const t of STORE_TARGETS) {
    const m = manifest(t);
    assert.deepEqual(Object.keys(m.icons).map(Number), ICON_SIZES);
    for (const [n, p] of Object.entries(m.icons)) assert.deepEqual(pngSize(join(out, t, p)), [Number(n), Number(n)], `${t} ${p}`);
    assert.deepEqual(m.action.default_icon, m.icons);
  }
  for (const n of LISTING_ICON_SIZES) assert.deepEqual(pngSize(join(out, 'store-assets', `icon-${n}.png`)), [n, n]);
  // Rendered, not the fallback ring: the SVG's yellow block is in the 128 icon.
  const b = readFileSync(join(out, 'chrome-store/icons/128.png'));
  assert.ok(b.length > 1500, 'a rendered icon, not the plain fallback');
});

// Stores refuse remotely hosted code: every script is in the package and
// nothing is evaluated from a string.
test('no remote code: scripts are local, nothing is evaluated', () => {
  for (const t of STORE_TARGETS) {
    for (const f of files(join(out, t))) {
      const rel = relative(join(out, t), f);
      if (f.endsWith('.html')) {
        const s = readFileSync(f, 'utf8');
        for (const m of s.matchAll(/<(script|link)\b[^>]*\b(src|href)="([^"]+)"/g)) {
          assert.ok(!/^(https?:)?\/\//.test(m[3]), `${t}/${rel} loads ${m[3]}`);
        }
      }
      if (f.endsWith('.js')) {
        const s = readFileSync(f, 'utf8');
        assert.ok(!/\beval\s*\(|new\s+Function\s*\(|importScripts\s*\(/.test(s), `${t}/${rel} evaluates code`);
        for (const m of s.matchAll(/\bimport\s*(?:[^'"()]*?from\s*)?\(?\s*['"]([^'"]+)['"]/g)) {
          assert.ok(m[1].startsWith('.') || m[1].startsWith('/'), `${t}/${rel} imports ${m[1]}`);
        }
      }
    }
    const csp = manifest(t).content_security_policy;
    if (csp) assert.ok(!/https?:/.test(JSON.stringify(csp)), `${t} CSP admits a remote origin`);
  }
});
