import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packCRX3, verifyCRX3, extensionID, updateManifest } from '../../crx3.mjs';

const ext = join(dirname(fileURLToPath(import.meta.url)), '../..');
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });

test('a packed CRX3 verifies, names its key\'s ID and carries the zip unchanged', () => {
  const zip = Buffer.from('PK\x03\x04 not really a zip, the format does not care');
  const { crx, id } = packCRX3(zip, pem);
  assert.equal(crx.subarray(0, 4).toString(), 'Cr24');
  assert.equal(crx.readUInt32LE(4), 3);
  const v = verifyCRX3(crx);
  assert.equal(v.id, id);
  assert.match(id, /^[a-p]{32}$/);
  assert.ok(v.zip.equals(zip));
  assert.equal(id, extensionID(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })));
});

test('a changed byte or another key is refused', () => {
  const { crx } = packCRX3(Buffer.from('zip bytes'), pem);
  const bad = Buffer.from(crx); bad[bad.length - 1] ^= 1;
  assert.throws(() => verifyCRX3(bad), /bad signature/);
  assert.throws(() => verifyCRX3(Buffer.from('Cr24xxxx')), /not a CRX|version/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  assert.throws(() => packCRX3(Buffer.from('z'), ec), /must be RSA/);
});

test('the ID of the development key is the one shared/ids pins', () => {
  const base = JSON.parse(readFileSync(join(ext, 'manifest.base.json'), 'utf8'));
  const ids = readFileSync(join(ext, '../shared/ids/ids.go'), 'utf8');
  assert.match(ids, new RegExp(`ChromeExtensionID = "${extensionID(Buffer.from(base.key, 'base64'))}"`));
});

test('updates.xml names the app, version and codebase, escaped', () => {
  const x = updateManifest('abcdefghijklmnopabcdefghijklmnop', '0.1.0', 'https://it.example/detour.crx?a=1&b=2');
  assert.match(x, /<app appid='abcdefghijklmnopabcdefghijklmnop'>/);
  assert.match(x, /codebase='https:\/\/it.example\/detour.crx\?a=1&#38;b=2' version='0.1.0'/);
  assert.throws(() => updateManifest('x', '0.1.0-dev', 'https://h/'), /version/);
  assert.throws(() => updateManifest('x', '1.0', 'file:///x'), /codebase/);
});
