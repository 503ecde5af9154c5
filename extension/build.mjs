#!/usr/bin/env node
// Builds the extension for Chrome-family browsers (dist/chrome, MV3 service
// worker, pinned "key") and Firefox (dist/firefox, MV3 background scripts,
// gecko id) from one source. Host permissions come from the catalog; the
// catalog is bundled as a snapshot for use without the helper.
//
//   node extension/build.mjs [--catalog FILE] [--out DIR]
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogHosts, matchPatterns } from './src/lib/catalog.js';
import { compileRules } from './src/lib/pagematch.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

export const FIREFOX_ID = 'detour@detour-project.org';
// 140: the first ESR that knows data_collection_permissions (Debian ships ESR 153).
export const FIREFOX_MIN_VERSION = '140.0';
export const FIREFOX_ANDROID_MIN_VERSION = '142.0';
export const TARGETS = ['chrome', 'firefox'];

export function defaultCatalogPath() {
  const real = join(root, 'shared/catalog/services.json');
  return existsSync(real) ? real : join(here, 'test/fixtures/catalog.json');
}

export function loadCatalog(path = defaultCatalogPath()) {
  const c = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(c.services) || c.services.length === 0) throw new Error(`${path}: no services`);
  for (const s of c.services) {
    for (const f of ['id', 'name', 'category', 'hosts', 'url']) {
      if (!(f in s)) throw new Error(`${path}: service ${s.id ?? '?'} has no ${f}`);
    }
  }
  return c;
}

// makeManifest returns the manifest for one target from the base manifest
// (name, description, version, default_locale, key) and the catalog.
export function makeManifest(base, target, catalog) {
  const hosts = catalogHosts(catalog.services);
  const m = {
    manifest_version: 3,
    name: base.name,
    description: base.description,
    version: base.version,
    default_locale: base.default_locale ?? 'en',
    permissions: ['nativeMessaging', 'webNavigation', 'webRequest', 'storage'],
    host_permissions: matchPatterns(hosts),
    action: { default_popup: 'src/popup/popup.html', default_title: '__MSG_extName__', default_icon: { 16: 'icons/16.png', 32: 'icons/32.png', 48: 'icons/48.png', 128: 'icons/128.png' } },
    icons: { 16: 'icons/16.png', 32: 'icons/32.png', 48: 'icons/48.png', 128: 'icons/128.png' },
    // Recognises a readable block page (catalog hosts only) and shows the banner.
    content_scripts: [{ matches: matchPatterns(hosts), js: ['src/content/detect.js'], run_at: 'document_idle' }],
  };
  if (target === 'chrome') {
    m.key = base.key;
    m.minimum_chrome_version = '116';
    m.background = { service_worker: 'src/background.js', type: 'module' };
  } else if (target === 'firefox') {
    m.background = { scripts: ['src/background.js'], type: 'module' };
    m.browser_specific_settings = {
      gecko: { id: FIREFOX_ID, strict_min_version: FIREFOX_MIN_VERSION, data_collection_permissions: { required: ['none'] } },
      gecko_android: { strict_min_version: FIREFOX_ANDROID_MIN_VERSION },
    };
  } else {
    throw new Error(`unknown target ${target}`);
  }
  return m;
}

// The bundled snapshot: services only (no organisations or policies), with the
// build date so the pages can say it may be out of date.
export function makeSnapshot(catalog, builtAt = new Date().toISOString(), fingerprints = loadFingerprints()) {
  const services = catalog.services.map(({ id, name, vendor, category, hosts, url, features }) =>
    ({ id, name, vendor, category, hosts, url, features: features ?? [] }));
  const vendors = {};
  for (const fp of fingerprints) if (fp.id && fp.vendor) vendors[fp.id] = fp.vendor;
  return { built_at: builtAt, note: 'May be out of date: the helper has the current list.', categories: catalog.categories ?? [], services, vendors, rules: compileRules(fingerprints) };
}

export function loadFingerprints(path = join(root, 'shared/fingerprints/fingerprints.json')) {
  if (!existsSync(path)) return [];
  return JSON.parse(readFileSync(path, 'utf8')).fingerprints ?? [];
}

// Filter vendors' display names by fingerprint id (shared/fingerprints), so a
// vendor the browser recognised reads the same as the helper's.
export function loadVendors() {
  return makeSnapshot({ services: [] }, '', loadFingerprints()).vendors;
}

// A plain square icon (PNG, solid colour), so the build needs no image tools.
import { deflateSync } from 'node:zlib';
function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
export function iconPNG(size) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  const rows = [];
  const r = size / 2, inner = size * 0.28;
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - r, dy = y + 0.5 - r, d = Math.hypot(dx, dy);
      const inCircle = d <= r - 0.5;
      const ring = inCircle && d >= inner; // a ring: a way round
      const px = ring ? [0x1d, 0x70, 0xb8, 255] : inCircle ? [255, 255, 255, 255] : [0, 0, 0, 0];
      row.set(px, 1 + x * 4);
    }
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

export async function build({ catalogPath = defaultCatalogPath(), out = join(here, 'dist'), css = true } = {}) {
  const base = JSON.parse(readFileSync(join(here, 'manifest.base.json'), 'utf8'));
  const catalog = loadCatalog(catalogPath);
  const snapshot = makeSnapshot(catalog);
  let cssText = null;
  if (css) {
    const { compileGovukCSS, buildCSS } = await import('../scripts/build-css.mjs');
    cssText = compileGovukCSS();
    buildCSS(['server/dashboard/assets/govuk/govuk.css']);
  }
  for (const target of TARGETS) {
    const dir = join(out, target);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    cpSync(join(here, 'src'), join(dir, 'src'), { recursive: true });
    cpSync(join(here, '_locales'), join(dir, '_locales'), { recursive: true });
    mkdirSync(join(dir, 'src/generated'), { recursive: true });
    writeFileSync(join(dir, 'src/generated/snapshot.js'),
      `// Generated by extension/build.mjs from the catalog. ${snapshot.note}\nexport const SNAPSHOT = ${JSON.stringify(snapshot)};\n`);
    mkdirSync(join(dir, 'icons'), { recursive: true });
    for (const s of [16, 32, 48, 128]) writeFileSync(join(dir, `icons/${s}.png`), iconPNG(s));
    if (cssText !== null) {
      mkdirSync(join(dir, 'vendor'), { recursive: true });
      writeFileSync(join(dir, 'vendor/govuk.css'), cssText);
    }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(makeManifest(base, target, catalog), null, 2) + '\n');
  }
  return { services: catalog.services.length, hosts: catalogHosts(catalog.services).length, catalogPath };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--catalog') opt.catalogPath = args[++i];
    else if (args[i] === '--out') opt.out = args[++i];
    else if (args[i] === '--no-css') opt.css = false;
    else { console.error(`build.mjs: unknown argument ${args[i]}`); process.exit(2); }
  }
  const r = await build(opt);
  console.log(`extension: built dist/chrome and dist/firefox (${r.services} services, ${r.hosts} hosts from ${r.catalogPath})`);
}
