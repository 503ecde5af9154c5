#!/usr/bin/env node
// Compiles govuk-frontend's Sass to one stylesheet with a system font stack
// (GDS Transport is licensed for GOV.UK only) for the extension builds and the
// hub's dashboard. Usage: node scripts/build-css.mjs [out.css ...]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as sass from 'sass';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function compileGovukCSS() {
  const src = `
$govuk-font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
$govuk-include-default-font-face: false;
$govuk-assets-path: "./assets/";
@import "govuk/index";
`;
  const out = sass.compileString(src, {
    loadPaths: [join(root, 'node_modules/govuk-frontend/dist')],
    style: 'compressed',
    quietDeps: true,
    silenceDeprecations: ['import', 'global-builtin', 'mixed-decls', 'slash-div', 'color-functions'],
    logger: sass.Logger.silent,
  });
  return out.css;
}

export const DEFAULT_OUTPUTS = [
  'extension/dist/chrome/vendor/govuk.css',
  'extension/dist/firefox/vendor/govuk.css',
  'server/dashboard/assets/govuk/govuk.css',
];

export function buildCSS(outputs = DEFAULT_OUTPUTS) {
  const css = compileGovukCSS();
  for (const o of outputs) {
    const p = join(root, o);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, css);
  }
  return css.length;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outs = process.argv.slice(2);
  const n = buildCSS(outs.length ? outs : DEFAULT_OUTPUTS);
  console.log(`govuk.css: ${n} bytes`);
}
