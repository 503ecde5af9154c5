// The organisation's note on its policy (the suggest result's `note`) is
// hostile-string-safe by construction: the prompt quotes it under the
// alternatives heading with textContent, and no extension script ever writes
// markup. The browser test (test/browser/extension.test.mjs) shows a note
// holding `<img src=x onerror=alert(1)>` literally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ext = join(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (p) => readFileSync(join(ext, p), 'utf8');
const js = (function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.js') ? [p] : [];
  });
})(join(ext, 'src'));

test('no extension script writes markup (innerHTML, outerHTML, insertAdjacentHTML, document.write)', () => {
  assert.ok(js.length > 0);
  for (const f of js) {
    const s = readFileSync(f, 'utf8');
    assert.doesNotMatch(s, /\.(innerHTML|outerHTML)\s*\+?=(?!=)/, f);
    assert.doesNotMatch(s, /insertAdjacentHTML|document\.write|createContextualFragment|DOMParser/, f);
  }
});

test('the prompt quotes the note under the alternatives heading, hidden until there is one', () => {
  const html = read('src/prompt/prompt.html');
  const m = /id="alt-heading"[^>]*><\/h2>\s*<div class="govuk-inset-text" id="org-note" hidden>\s*<h3 [^>]*id="org-note-heading" data-i18n="orgNoteHeading"><\/h3>\s*<blockquote [^>]*id="org-note-text"><\/blockquote>\s*<\/div>/.exec(html);
  assert.ok(m, 'heading, then an inset with its own heading and a blockquote');
});

test('the prompt sets the note as text, line by line', () => {
  const s = read('src/prompt/prompt.js');
  const block = s.slice(s.indexOf('const orgNote'), s.indexOf("$('org-note').hidden = false"));
  assert.ok(block.length > 0, 'the note block');
  assert.match(block, /typeof sug\?\.note === 'string'/);
  assert.match(block, /\.textContent = line;/);
  assert.doesNotMatch(block, /HTML|\.html\b/);
});

test('the note heading says whose words they are, in both languages', () => {
  assert.equal(JSON.parse(read('_locales/en/messages.json')).orgNoteHeading.message, 'What your IT team says:');
  assert.equal(JSON.parse(read('_locales/cy/messages.json')).orgNoteHeading.message, 'Beth mae eich tîm TG yn ei ddweud:');
});

test('the background passes the helper\'s note on, and only as a string', () => {
  assert.match(read('src/background.js'), /note: typeof r\.note === 'string' \? r\.note : ''/);
});
