// The JavaScript side of the protocol contract: the same schemas and examples
// that shared/protocol's Go tests check, validated with Ajv (draft 2020-12),
// so the extension and the helper cannot drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const readJSON = (p) => JSON.parse(readFileSync(p, 'utf8'));
const dir = (p) => readdirSync(join(root, p)).filter((f) => f.endsWith('.json')).sort();

function compile() {
  // strict mode flags schema mistakes (unknown keywords, ambiguous types).
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
  for (const f of dir('schema')) ajv.addSchema(readJSON(join(root, 'schema', f)));
  return ajv.getSchema('https://detour-project.org/schemas/protocol/message.schema.json');
}

const validate = compile();

test('schemas compile', () => {
  assert.equal(typeof validate, 'function');
});

for (const f of dir('examples/valid')) {
  test(`valid example ${f}`, () => {
    const msg = readJSON(join(root, 'examples/valid', f));
    const ok = validate(msg);
    assert.ok(ok, `${f}: ${JSON.stringify(validate.errors, null, 1)}`);
  });
}

for (const f of dir('examples/invalid')) {
  test(`invalid example ${f}`, () => {
    const ex = readJSON(join(root, 'examples/invalid', f));
    assert.deepEqual(Object.keys(ex).sort(), ['message', 'reason'], 'an invalid example is {reason, message}');
    assert.ok(typeof ex.reason === 'string' && ex.reason.length > 0);
    assert.equal(validate(ex.message), false, `${f} was accepted, but: ${ex.reason}`);
  });
}

test('every request type has a valid request and result example', () => {
  const seen = new Set();
  for (const f of dir('examples/valid')) {
    const m = readJSON(join(root, 'examples/valid', f));
    if ('ok' in m) { if (m.ok) seen.add(`result:${m.type}`); } else if ('id' in m) seen.add(`request:${m.type}`); else seen.add(`event:${m.type}`);
  }
  const types = readJSON(join(root, 'schema/message.schema.json')).$defs.request.properties.type.enum;
  for (const t of types) {
    assert.ok(seen.has(`request:${t}`), `no request example for ${t}`);
    assert.ok(seen.has(`result:${t}`), `no result example for ${t}`);
  }
});

// contract.js is generated from contract.json (go generate ./shared/protocol);
// the Go test checks the file, this one what the extension actually imports.
test('extension contract.js carries contract.json', async () => {
  const c = readJSON(join(root, 'contract.json'));
  const js = await import('../../../extension/src/lib/contract.js');
  assert.equal(js.PROTOCOL_VERSION, c.protocol_version);
  assert.deepEqual([...js.BLOCKS], c.methods.blocks.map((w) => w.name));
  assert.deepEqual([...js.NON_BLOCKS], c.methods.non_blocks.map((w) => w.name));
  assert.deepEqual([...js.NEEDS], c.needs.map((w) => w.name));
  assert.deepEqual(Object.values(js.CODES), c.errors.map((e) => e.code));
  assert.deepEqual([...js.BROWSER_REQUESTS], c.requests.filter((r) => r.callers.includes('browser')).map((r) => r.type));
  // The schema's need and method enums are the same words.
  const common = readJSON(join(root, 'schema/common.schema.json'));
  assert.deepEqual(common.$defs.need.enum, [...js.NEEDS]);
  assert.deepEqual(common.$defs.method.enum, [...js.BLOCKS, ...js.NON_BLOCKS]);
});
