// The protocol's error codes have one source (shared/protocol/contract.json,
// generated into src/lib/contract.js): no other source file may spell one as a
// bare number, so that a renumbering in the contract cannot leave a copy behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function jsFiles(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return jsFiles(p);
    return n.endsWith('.js') ? [p] : [];
  });
}

// What a bare protocol code looks like in use: an error built with one, or a
// code compared with one.
const BARE = [
  /HelperError\(\s*\d/,
  /\bcode\s*(===|!==|==|!=)\s*\d/,
  /\d\s*(===|!==|==|!=)\s*[\w.]*\bcode\b/,
  /case\s+\d+\s*:.*code/i,
];

test('no source file spells a protocol error code as a number', () => {
  const bad = [];
  for (const f of jsFiles(src)) {
    if (f.endsWith(join('lib', 'contract.js'))) continue;
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (BARE.some((re) => re.test(line))) bad.push(`${f.slice(src.length + 1)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(bad, [], 'use CODES from lib/contract.js');
});

test('the check catches a bare code', () => {
  for (const line of ['throw new HelperError(5, "x")', 'if (e.code === 14) {', 'if (7 == err.code)']) {
    assert.ok(BARE.some((re) => re.test(line)), line);
  }
  assert.ok(!BARE.some((re) => re.test('throw new HelperError(CODES.INVALID_PARAMS, "x")')));
});
