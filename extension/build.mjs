#!/usr/bin/env node
// Builds the extension for Chrome-family browsers (dist/chrome, MV3 service
// worker, pinned "key") and Firefox (dist/firefox, MV3 background scripts,
// gecko id) from one source, and the store variants: dist/chrome-store (Chrome
// Web Store) and dist/edge-store (Edge Add-ons), which carry no "key" because
// the stores assign their own IDs and refuse one, and dist/amo
// (addons.mozilla.org, the gecko id kept). Host permissions come from the
// catalog; the catalog is bundled as a snapshot for use without the helper.
// Icons are rendered from icons/detour.svg at every size the browsers and
// stores ask for (rsvg-convert, librsvg2-bin); dist/store-assets holds the
// listing icons.
//
//   node extension/build.mjs [--catalog FILE] [--out DIR]
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
// Development builds (loaded unpacked, used by the browser tests) and store builds.
export const DEV_TARGETS = ['chrome', 'firefox'];
export const STORE_TARGETS = ['chrome-store', 'edge-store', 'amo'];
export const TARGETS = [...DEV_TARGETS, ...STORE_TARGETS];
// Which browser family a target is built for.
export const FAMILY = { chrome: 'chrome', 'chrome-store': 'chrome', 'edge-store': 'chrome', firefox: 'firefox', amo: 'firefox' };
// Chrome asks for 16, 32, 48 and 128; Firefox and AMO for 48 and 96.
export const ICON_SIZES = [16, 32, 48, 96, 128];
// Listing icons: the Chrome Web Store's 128×128, Edge Add-ons' 300×300 logo.
export const LISTING_ICON_SIZES = [128, 300];
export const ICON_SVG = join(here, 'icons/detour.svg');
// The managed-storage schema, kept with the policy templates it describes.
export const MANAGED_SCHEMA = join(root, 'installer/policy/extension-managed-schema.json');
export const MANAGED_SCHEMA_FILE = 'managed_schema.json';
// What every store allows in a manifest description, in every locale.
export const MAX_DESCRIPTION = 132;

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
  const family = FAMILY[target];
  if (!family) throw new Error(`unknown target ${target}`);
  const icons = Object.fromEntries(ICON_SIZES.map((n) => [n, `icons/${n}.png`]));
  const m = {
    manifest_version: 3,
    name: base.name,
    description: base.description,
    version: base.version,
    default_locale: base.default_locale ?? 'en',
    permissions: ['nativeMessaging', 'webNavigation', 'webRequest', 'storage'],
    host_permissions: matchPatterns(hosts),
    action: { default_popup: 'src/popup/popup.html', default_title: '__MSG_extName__', default_icon: icons },
    icons,
    // Recognises a readable block page (catalog hosts only) and shows the banner.
    content_scripts: [{ matches: matchPatterns(hosts), js: ['src/content/detect.js'], run_at: 'document_idle' }],
  };
  if (family === 'chrome') {
    // Only the development build pins its ID with the key: the stores refuse
    // a key and assign their own ID (listed in shared/ids).
    if (target === 'chrome') m.key = base.key;
    m.minimum_chrome_version = '116';
    // What an organisation may set by the 3rdparty policy (lib/managed.js).
    // Firefox needs no schema: policies.json's 3rdparty values arrive as they are.
    m.storage = { managed_schema: MANAGED_SCHEMA_FILE };
    m.background = { service_worker: 'src/background.js', type: 'module' };
  } else {
    m.background = { scripts: ['src/background.js'], type: 'module' };
    m.browser_specific_settings = {
      gecko: { id: FIREFOX_ID, strict_min_version: FIREFOX_MIN_VERSION, data_collection_permissions: { required: ['none'] } },
      gecko_android: { strict_min_version: FIREFOX_ANDROID_MIN_VERSION },
    };
  }
  return m;
}

// The bundled snapshot: services only (no organisations or policies), with the
// build date so the pages can say it may be out of date.
// SOURCE_DATE_EPOCH (make dist) fixes the date, so a release build is the same each time.
const buildTime = () => (process.env.SOURCE_DATE_EPOCH ? new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000) : new Date()).toISOString();
export function makeSnapshot(catalog, builtAt = buildTime(), fingerprints = loadFingerprints()) {
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

// renderIcons draws the SVG at each size with rsvg-convert. Without it (a
// machine that has not run scripts/deps.sh) the development builds fall back
// to the plain drawn ring; the store builds refuse, since a store icon must be
// the real one.
import { execFileSync } from 'node:child_process';
export function renderIcons(sizes, { svg = ICON_SVG, require = false } = {}) {
  const out = {};
  try {
    for (const n of sizes) {
      out[n] = execFileSync('rsvg-convert', ['--width', String(n), '--height', String(n), '--format', 'png', svg], { maxBuffer: 16 << 20 });
    }
    return { icons: out, rendered: true };
  } catch (err) {
    if (require) throw new Error(`extension: cannot render ${svg} with rsvg-convert (install librsvg2-bin: scripts/deps.sh): ${err.message}`);
    for (const n of sizes) out[n] = iconPNG(n);
    return { icons: out, rendered: false };
  }
}

// checkDescriptions refuses a locale whose name or description a store would
// refuse (Chrome Web Store and Edge: 132 characters for the description).
export function checkDescriptions(localesDir = join(here, '_locales')) {
  for (const l of readdirSync(localesDir)) {
    const m = JSON.parse(readFileSync(join(localesDir, l, 'messages.json'), 'utf8'));
    const d = m.extDescription?.message ?? '';
    if ([...d].length > MAX_DESCRIPTION) throw new Error(`extension: ${l} extDescription is ${[...d].length} characters; stores allow ${MAX_DESCRIPTION}`);
    if (!d.trim()) throw new Error(`extension: ${l} has no extDescription`);
  }
}

export async function build({ catalogPath = defaultCatalogPath(), out = join(here, 'dist'), css = true, targets = TARGETS } = {}) {
  checkDescriptions();
  const base = JSON.parse(readFileSync(join(here, 'manifest.base.json'), 'utf8'));
  const catalog = loadCatalog(catalogPath);
  const snapshot = makeSnapshot(catalog);
  let cssText = null;
  if (css) {
    const { compileGovukCSS, buildCSS } = await import('../scripts/build-css.mjs');
    cssText = compileGovukCSS();
    buildCSS(['server/dashboard/assets/govuk/govuk.css']);
  }
  const store = targets.some((t) => STORE_TARGETS.includes(t));
  const { icons, rendered } = renderIcons([...new Set([...ICON_SIZES, ...LISTING_ICON_SIZES])], { require: store });
  if (store) {
    const assets = join(out, 'store-assets');
    rmSync(assets, { recursive: true, force: true });
    mkdirSync(assets, { recursive: true });
    for (const n of LISTING_ICON_SIZES) writeFileSync(join(assets, `icon-${n}.png`), icons[n]);
  }
  for (const target of targets) {
    const dir = join(out, target);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    cpSync(join(here, 'src'), join(dir, 'src'), { recursive: true });
    cpSync(join(here, '_locales'), join(dir, '_locales'), { recursive: true });
    mkdirSync(join(dir, 'src/generated'), { recursive: true });
    writeFileSync(join(dir, 'src/generated/snapshot.js'),
      `// Generated by extension/build.mjs from the catalog. ${snapshot.note}\nexport const SNAPSHOT = ${JSON.stringify(snapshot)};\n`);
    mkdirSync(join(dir, 'icons'), { recursive: true });
    for (const n of ICON_SIZES) writeFileSync(join(dir, `icons/${n}.png`), icons[n]);
    if (cssText !== null) {
      mkdirSync(join(dir, 'vendor'), { recursive: true });
      writeFileSync(join(dir, 'vendor/govuk.css'), cssText);
    }
    const manifest = makeManifest(base, target, catalog);
    if (manifest.storage?.managed_schema) cpSync(MANAGED_SCHEMA, join(dir, manifest.storage.managed_schema));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  }
  return { services: catalog.services.length, hosts: catalogHosts(catalog.services).length, catalogPath, targets, iconsRendered: rendered };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--catalog') opt.catalogPath = args[++i];
    else if (args[i] === '--out') opt.out = args[++i];
    else if (args[i] === '--no-css') opt.css = false;
    else if (args[i] === '--targets') opt.targets = args[++i].split(',');
    else { console.error(`build.mjs: unknown argument ${args[i]}`); process.exit(2); }
  }
  const r = await build(opt);
  console.log(`extension: built ${r.targets.map((t) => 'dist/' + t).join(', ')} (${r.services} services, ${r.hosts} hosts from ${r.catalogPath}${r.iconsRendered ? '' : '; icons NOT rendered from the SVG: install librsvg2-bin'})`);
}
