// Both message catalogs have the same keys, every key the pages and scripts
// use exists, and no page or script carries hard-coded English.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ext = join(dirname(fileURLToPath(import.meta.url)), '../..');
const en = JSON.parse(readFileSync(join(ext, '_locales/en/messages.json'), 'utf8'));
const cy = JSON.parse(readFileSync(join(ext, '_locales/cy/messages.json'), 'utf8'));

function files(dir, ext2) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'generated' ? [] : files(p, ext2);
    return p.endsWith(ext2) ? [p] : [];
  });
}
const html = files(join(ext, 'src'), '.html');
const js = files(join(ext, 'src'), '.js');

test('en and cy have the same keys', () => {
  assert.deepEqual(Object.keys(cy).sort(), Object.keys(en).sort());
});

test('every message is non-empty, keys are valid, placeholders agree', () => {
  for (const [k, v] of Object.entries(en)) {
    assert.match(k, /^[A-Za-z0-9_]+$/, k);
    assert.ok(v.message.trim().length > 0, `en ${k}`);
    assert.ok(cy[k].message.trim().length > 0, `cy ${k}`);
    const ph = (s) => [...s.matchAll(/\$(\d)/g)].map((m) => m[1]).sort().join(',');
    assert.equal(ph(cy[k].message), ph(en[k].message), `placeholders of ${k}`);
  }
});

test('Welsh is translated, not copied', () => {
  const same = Object.keys(en).filter((k) => en[k].message === cy[k].message && !/^(extName|popupTitle|whitelistFresh|otherLanguage)$/.test(k));
  // Strings that are the same in both languages are proper names or numbers only.
  assert.deepEqual(same, []);
});

test('every data-i18n key in the pages exists', () => {
  for (const f of html) {
    const s = readFileSync(f, 'utf8');
    for (const m of s.matchAll(/data-i18n="([^"]+)"/g)) assert.ok(en[m[1]], `${f}: ${m[1]}`);
    for (const m of s.matchAll(/data-i18n-attr="([^"]+)"/g)) {
      for (const pair of m[1].split(';')) assert.ok(en[pair.split(':')[1]], `${f}: ${pair}`);
    }
  }
});

test('no hard-coded text in the pages', () => {
  for (const f of html) {
    const text = readFileSync(f, 'utf8')
      .replace(/<script[\s\S]*?<\/script>/g, '').replace(/<style[\s\S]*?<\/style>/g, '')
      .replace(/<!--[\s\S]*?-->/g, '').replace(/<[^>]+>/g, ' ');
    assert.equal(text.replace(/&[a-z]+;/g, '').trim().replace(/\s+/g, ' '), '', `${f} has text outside the catalogs`);
    // Attributes people read.
    const s = readFileSync(f, 'utf8');
    for (const m of s.matchAll(/\s(aria-label|title|alt|placeholder)="([^"]*)"/g)) assert.fail(`${f}: ${m[1]}="${m[2]}" should use data-i18n-attr`);
  }
});

test('every t("key") in the scripts exists, and no English sentences are hard-coded', () => {
  for (const f of js) {
    const s = readFileSync(f, 'utf8');
    for (const m of s.matchAll(/\bt\('([A-Za-z0-9_]+)'(?! \+)/g)) assert.ok(en[m[1]], `${f}: t('${m[1]}')`);
    for (const m of s.matchAll(/getMessage\('([A-Za-z0-9_]+)'/g)) assert.ok(en[m[1]], `${f}: getMessage('${m[1]}')`);
    // Keys built from a prefix: check each prefix has messages.
    for (const m of s.matchAll(/\bt\('([A-Za-z0-9_]+_)' \+/g)) assert.ok(Object.keys(en).some((k) => k.startsWith(m[1])), `${f}: ${m[1]}*`);
    // Text set into the page must come from t(): no string literal assigned to textContent.
    for (const m of s.matchAll(/textContent\s*=\s*(['"`])([^'"`]*)\1/g)) assert.equal(m[2].trim(), '', `${f}: textContent = "${m[2]}"`);
    for (const m of s.matchAll(/\.append\(\s*(['"`])([^'"`]+)\1/g)) assert.equal(m[2].trim(), '', `${f}: append("${m[2]}")`);
  }
  // Keys built at run time.
  for (const m of ['dns-nxdomain', 'dns-sinkhole', 'tcp-reset', 'tcp-timeout', 'tls-reset', 'tls-intercepted', 'http-blockpage', 'http-status',
    'proxy-refused', 'browser-policy', 'reachable', 'site-down', 'offline', 'captive-portal', 'unknown']) {
    const k = 'method_' + m.replace(/-/g, '_');
    assert.ok(en[k] && en[k + '_short'], k);
  }
  for (const n of ['meeting', 'shared-document', 'file-exchange', 'project-board', 'guidance', 'other']) assert.ok(en['need_' + n.replace(/-/g, '_')], n);
  for (const w of ['absent', 'unsupported', 'not_enrolled']) assert.ok(en['reportUnavailable_' + w] && en['reportFailed_' + w], w);
  for (const e of ['evBrowserError', 'evHeader', 'evRedirect', 'evStatus']) assert.ok(en[e], e);
});

test('the method vocabulary matches shared/method/method.go', () => {
  const go = readFileSync(join(ext, '../shared/method/method.go'), 'utf8');
  const words = [...go.matchAll(/=\s*"([a-z-]+)"/g)].map((m) => m[1]).filter((w) => !['meeting'].includes(w));
  for (const w of words) assert.ok(en['method_' + w.replace(/-/g, '_')], w);
});
