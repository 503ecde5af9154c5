// Every request the extension builds is valid against the shared protocol
// schemas (shared/protocol/schema), so the extension and the helper cannot drift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import { diagnoseRequest, reportRequest, suggestRequest, pauseRequest, NEEDS } from '../../src/lib/messages.js';
import { PROTOCOL_VERSION } from '../../src/lib/native.js';
import { browserCandidate } from '../../src/lib/verdict.js';

const schemaDir = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/protocol/schema');
const ajv = new Ajv2020({ allErrors: true, strict: false });
for (const f of readdirSync(schemaDir).filter((x) => x.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, f), 'utf8')));
const validate = ajv.getSchema('https://detour-project.org/schemas/protocol/message.schema.json');

let id = 1;
function ok(type, body) {
  const msg = { id: id++, type, ...body };
  assert.ok(validate(msg), `${JSON.stringify(msg)}: ${JSON.stringify(validate.errors, null, 1)}`);
}
function bad(type, body) {
  assert.equal(validate({ id: id++, type, ...body }), false, JSON.stringify(body));
}

test('hello', () => {
  for (const browser of ['chrome', 'chromium', 'edge', 'opera', 'firefox']) ok('hello', { version: PROTOCOL_VERSION, browser });
});

test('diagnose: origin only, optional signal fields left out, never null', () => {
  ok('diagnose', diagnoseRequest('https://docs.google.com/', {}));
  ok('diagnose', diagnoseRequest('https://docs.google.com/', { status: 403 }));
  ok('diagnose', diagnoseRequest('https://docs.google.com/', { error: 'net::ERR_CONNECTION_RESET' }));
  ok('diagnose', diagnoseRequest('https://zoom.us/', { error: 'NS_ERROR_PROXY_FORBIDDEN', status: 302, redirectHost: 'block.example.net' }));
  ok('diagnose', diagnoseRequest('https://zoom.us/', { error: null, status: null, redirectHost: null }));
  ok('diagnose', diagnoseRequest('https://zoom.us/', { error: 'x\u0000y'.repeat(100), status: 99999, redirectHost: 'EVIL HOST' }));
  assert.deepEqual(diagnoseRequest('https://zoom.us/', { error: null, status: null }), { url: 'https://zoom.us/' });
  // The signal the background builds from a real candidate.
  const sig = { status: 403, headers: { server: 'squid' } };
  ok('diagnose', diagnoseRequest('https://docs.google.com/', { ...sig, error: browserCandidate(sig).error }));
});

test('report', () => {
  for (const need of NEEDS) ok('report', reportRequest({ host: 'docs.google.com', method: 'http-blockpage', vendor: 'Squid' }, need));
  ok('report', reportRequest({ host: 'docs.google.com', method: 'tcp-reset', vendor: null }, 'meeting'));
  assert.equal(reportRequest({ host: 'docs.google.com' }, 'not-a-need').need, 'other');
  ok('report', reportRequest({ host: 'docs.google.com', method: 'dns-nxdomain', vendor: '\u0007'.repeat(5) }, 'other'));
});

test('suggest and settings', () => {
  ok('suggest', suggestRequest('docs.google.com'));
  ok('settings', pauseRequest('2026-11-22T10:00:00.000Z'));
  ok('settings', pauseRequest(null));
  ok('settings', {});
  ok('status', {});
});

test('the schemas are strict enough to catch the mistakes made before', () => {
  bad('diagnose', { url: 'https://docs.google.com/', signal: { error: null, status: null, redirect_host: null } });
});
