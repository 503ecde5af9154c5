import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManaged, readManaged, effective, MANAGED_SETTINGS } from '../../src/lib/managed.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const schema = JSON.parse(readFileSync(join(root, 'installer/policy/extension-managed-schema.json'), 'utf8'));

test('parseManaged keeps well-formed settings and names the bad ones', () => {
  const cases = [
    [{}, {}, []],
    [null, {}, []],
    [[1], {}, []],
    [{ prompts: false, report_automatically: true }, { prompts: false, report_automatically: true }, []],
    [{ prompts: 'no', report_automatically: 1 }, {}, ['prompts', 'report_automatically']],
    [{ org: 'example-council', support_url: 'https://it.example/help', message: '  Ask the service desk.  ' },
      { org: 'example-council', support_url: 'https://it.example/help', message: 'Ask the service desk.' }, []],
    [{ support_url: 'javascript:alert(1)' }, {}, ['support_url']],
    [{ support_url: 'http://it.example/' }, {}, ['support_url']],
    [{ org: 'Bad Org' }, {}, ['org']],
    [{ message: ' ' }, {}, ['message']],
    [{ message: 'x'.repeat(501) }, {}, ['message']],
    [{ hub: 'https://hub.example', whitelist_keys: [] }, {}, []], // the helper's, ignored here
  ];
  for (const [raw, values, rejected] of cases) {
    const r = parseManaged(raw);
    assert.deepEqual(r.values, values, JSON.stringify(raw));
    assert.deepEqual(r.rejected, rejected, JSON.stringify(raw));
    assert.deepEqual(r.names, Object.keys(values));
  }
});

test('managed values win and are marked as the organisation\'s', () => {
  const person = { report_automatically: false, paused_until: '2030-01-01T00:00:00Z', managed: [] };
  const e = effective(person, parseManaged({ prompts: false, report_automatically: true }));
  assert.equal(e.prompts, false);
  assert.equal(e.report_automatically, true);
  assert.equal(e.paused_until, null, 'a managed "prompts off" cannot be paused');
  assert.deepEqual(e.byOrg, ['prompts', 'report_automatically']);
  const none = effective(person, parseManaged({}));
  assert.equal(none.prompts, true);
  assert.equal(none.paused_until, person.paused_until);
  assert.deepEqual(none.byOrg, []);
  // The helper's own policy counts too.
  assert.deepEqual(effective({ report_automatically: true, paused_until: null, managed: ['report_automatically'] }, null).byOrg, ['report_automatically']);
  assert.equal(effective(null, null).report_automatically, false);
  // A helper whose policy switches prompts off says so in its settings.
  const h = effective({ report_automatically: false, paused_until: null, prompts: false, managed: ['prompts'] }, parseManaged({}));
  assert.equal(h.prompts, false);
  assert.deepEqual(h.byOrg, ['prompts']);
  assert.equal(effective({ prompts: false }, parseManaged({ prompts: true })).prompts, true, 'the browser policy wins');
});

test('readManaged: no policy is no settings (Firefox rejects, Chrome answers {})', async () => {
  const rejects = { storage: { managed: { get: () => Promise.reject(new Error('Managed storage manifest not found')) } } };
  assert.deepEqual((await readManaged(rejects)).values, {});
  const gives = { storage: { managed: { get: () => Promise.resolve({ prompts: false }) } } };
  assert.deepEqual((await readManaged(gives)).values, { prompts: false });
});

test('the managed schema the manifest declares knows exactly these settings, with matching types', () => {
  assert.deepEqual(Object.keys(schema.properties).sort(), Object.keys(MANAGED_SETTINGS).sort());
  const sample = { boolean: true, string: 'https://it.example/' };
  for (const [k, p] of Object.entries(schema.properties)) {
    assert.ok(p.title && p.description, `${k} has a title and description`);
    if (k !== 'org' && k !== 'message') assert.ok(MANAGED_SETTINGS[k](sample[p.type]), `${k}: a ${p.type} passes`);
  }
});
