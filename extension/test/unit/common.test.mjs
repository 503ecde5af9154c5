// The popup's "Working with another organisation?": the request it sends is
// valid against the shared schema, the degraded answer from the bundled
// catalog has the helper's shape, and names come from the catalog.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { commonRequest, snapshotCommon, withNames, notApprovedAt, COMMON_ORDER } from '../../src/lib/common.js';

const here = dirname(fileURLToPath(import.meta.url));
const schemaDir = join(here, '../../../shared/protocol/schema');
const ajv = new Ajv2020({ allErrors: true, strict: false });
for (const f of readdirSync(schemaDir).filter((x) => x.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, f), 'utf8')));
const message = ajv.getSchema('https://detour-project.org/schemas/protocol/message.schema.json');
const result = ajv.getSchema('https://detour-project.org/schemas/protocol/common.schema.json#/$defs/result');
const catalog = JSON.parse(readFileSync(join(here, '../../../shared/catalog/services.json'), 'utf8'));

test('commonRequest: slugs, each once, at most 50, a known category or none', () => {
  for (const [orgs, cat, want] of [
    [['example-borough', 'example-health'], undefined, { orgs: ['example-borough', 'example-health'] }],
    [[' Example-Borough ', 'example-borough', 'x\' OR 1=1', null], 'video', { orgs: ['example-borough'], category: 'video' }],
    [[], 'email', { orgs: [] }],
    [Array.from({ length: 80 }, (_, i) => `org-${i}`), undefined, { orgs: Array.from({ length: 50 }, (_, i) => `org-${i}`) }],
  ]) {
    const r = commonRequest(orgs, cat);
    assert.deepEqual(r, want);
    assert.ok(message({ id: 1, type: 'common', ...r }), JSON.stringify(message.errors));
  }
});

test('snapshotCommon: every bundled service, by category, unconfirmed, in the helper\'s shape', () => {
  const r = snapshotCommon(catalog.services);
  assert.ok(result(r), JSON.stringify(result.errors));
  assert.deepEqual(r.categories.map((c) => c.category), COMMON_ORDER);
  assert.equal(r.categories.flatMap((c) => c.services).length, catalog.services.length);
  assert.ok(r.categories.every((c) => c.services.every((s) => s.status === 'unconfirmed')));
  assert.deepEqual(snapshotCommon(catalog.services, 'wiki').categories.map((c) => c.category), ['wiki']);
});

test('withNames and notApprovedAt', () => {
  const r = withNames({ orgs: [{ id: 'a', name: 'A' }, { id: 'b', name: 'B' }], categories: [{ category: 'video', services: [
    { service: 'microsoft-teams', status: 'confirmed', policies: [] },
    { service: 'not-in-this-build', status: 'confirmed', policies: [] },
    { service: 'whereby', status: 'unconfirmed', policies: [{ org: 'a', status: 'unknown' }, { org: 'b', status: 'approved' }] },
  ] }] }, catalog.services);
  const s = r.categories[0].services;
  assert.deepEqual(s.map((x) => x.service), ['microsoft-teams', 'whereby']);
  assert.equal(s[0].name, 'Microsoft Teams');
  assert.match(s[0].url, /^https:\/\//);
  assert.deepEqual(notApprovedAt(s[1], r.orgs), [{ org: 'a', name: 'A', status: 'unknown' }]);
});
