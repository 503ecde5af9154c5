// The documents the stores and IT ask for: every permission a build requests
// is justified in PERMISSIONS.md (and none that no build requests is), every
// test PRIVACY.md cites exists, and the licence is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeManifest, loadCatalog, TARGETS } from '../../build.mjs';

const ext = join(dirname(fileURLToPath(import.meta.url)), '../..');
const root = join(ext, '..');
const base = JSON.parse(readFileSync(join(ext, 'manifest.base.json'), 'utf8'));
const catalog = loadCatalog();

test('PERMISSIONS.md justifies exactly the permissions the builds request', () => {
  const doc = readFileSync(join(ext, 'PERMISSIONS.md'), 'utf8');
  const sections = [...doc.matchAll(/^## (.+)$/gm)].map((m) => m[1].trim());
  const requested = new Set();
  let hosts = false, scripts = false;
  for (const t of TARGETS) {
    const m = makeManifest(base, t, catalog);
    for (const p of [...(m.permissions ?? []), ...(m.optional_permissions ?? [])]) requested.add(p);
    hosts ||= (m.host_permissions ?? []).length > 0;
    scripts ||= (m.content_scripts ?? []).length > 0;
  }
  for (const p of requested) {
    const i = sections.indexOf('`' + p + '`');
    assert.ok(i >= 0, `PERMISSIONS.md has no section for ${p}`);
  }
  for (const s of sections.filter((x) => x.startsWith('`'))) {
    assert.ok(requested.has(s.slice(1, -1)), `PERMISSIONS.md justifies ${s}, which no build requests`);
  }
  if (hosts) assert.ok(sections.includes('Host permissions'));
  if (scripts) assert.ok(sections.includes('Content script'));
  for (const s of sections) {
    const body = doc.split(`## ${s}`)[1].split(/^## /m)[0].trim();
    assert.ok(body.length > 80, `the section for ${s} says why`);
  }
});

test('every test PRIVACY.md cites exists', () => {
  const doc = readFileSync(join(root, 'PRIVACY.md'), 'utf8');
  const cited = [...doc.matchAll(/`([\w./-]+(?:_test\.go|\.test\.mjs))`/g)].map((m) => m[1]);
  assert.ok(cited.length >= 10, `PRIVACY.md cites ${cited.length} tests`);
  for (const f of cited) assert.ok(existsSync(join(root, f)), `PRIVACY.md cites ${f}, which does not exist`);
});

test('LICENSE is the MIT licence', () => {
  const l = readFileSync(join(root, 'LICENSE'), 'utf8');
  assert.match(l, /^MIT License/);
  assert.match(l, /Permission is hereby granted, free of charge/);
});
