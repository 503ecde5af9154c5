// The seed catalog and the examples, checked from the JavaScript side with
// the same schemas the Go tests use (shared/catalog/catalog_test.go), so
// the extension's bundled snapshot and the hub's import cannot drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const read = (name) => JSON.parse(readFileSync(new URL(`../${name}`, import.meta.url), 'utf8'));
const services = read('services.json');
const examples = read('examples.json');

function compile(name) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(read(name));
}
const validateServices = compile('services.schema.json');
const validateExamples = compile('examples.schema.json');

test('services.json matches its schema', () => {
  assert.ok(validateServices(services), JSON.stringify(validateServices.errors, null, 2));
});

test('examples.json matches its schema', () => {
  assert.ok(validateExamples(examples), JSON.stringify(validateExamples.errors, null, 2));
});

const edits = [
  ['uppercase host', (s) => { s.hosts = ['Docs.Google.com']; }],
  ['wildcard host', (s) => { s.hosts = ['*.sharepoint.com']; }],
  ['single-label host', (s) => { s.hosts = ['localhost']; }],
  ['host with a path', (s) => { s.hosts = ['docs.google.com/forms']; }],
  ['http url', (s) => { s.url = 'http://zoom.us/'; }],
  ['unknown category', (s) => { s.category = 'email'; }],
  ['unknown feature', (s) => { s.features = ['blockchain']; }],
  ['extra field', (s) => { s.note = 'x'; }],
];
for (const [name, edit] of edits) {
  test(`services schema refuses a service with ${name}`, () => {
    const copy = structuredClone(services);
    edit(copy.services[0]);
    assert.equal(validateServices(copy), false);
  });
}

test('at least 60 services in all 8 categories, ids unique', () => {
  assert.ok(services.services.length >= 60, `${services.services.length} services`);
  const cats = new Set(services.services.map((s) => s.category));
  assert.deepEqual([...cats].sort(), [...services.categories].sort());
  const ids = services.services.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length);
});

test('no host is claimed by two services', () => {
  const owner = new Map();
  for (const s of services.services) {
    for (const h of s.hosts) {
      assert.ok(!owner.has(h), `${h} is claimed by ${owner.get(h)} and ${s.id}`);
      owner.set(h, s.id);
    }
  }
});

test('examples name only catalog services and their own organisations', () => {
  const ids = new Set(services.services.map((s) => s.id));
  const orgs = new Set(examples.organisations.map((o) => o.id));
  for (const p of examples.policies) {
    assert.ok(orgs.has(p.org), `unknown organisation ${p.org}`);
    assert.ok(ids.has(p.service), `unknown service ${p.service}`);
    for (const a of p.alternatives ?? []) assert.ok(ids.has(a), `${p.org}/${p.service}: unknown alternative ${a}`);
  }
});
