// Page strings: every visible string comes from _locales/<lang>/messages.json.
// Elements name their message with data-i18n="key" (text) and
// data-i18n-attr="attr:key;attr:key" (attributes). The language follows the
// browser's, or the person's choice in the popup (stored as "lang"), because
// Chromium has no Welsh interface language of its own.
import { api } from './api.js';

export const LANGS = ['en', 'cy'];
let lang = 'en';
let messages = {};
let fallback = {};

async function load(l) {
  const r = await fetch(api.runtime.getURL(`_locales/${l}/messages.json`));
  return r.json();
}

export function currentLang() { return lang; }

export async function initI18n(override) {
  let chosen = override;
  if (!chosen) {
    try { chosen = (await api.storage.local.get('lang')).lang; } catch { /* no storage */ }
  }
  if (!LANGS.includes(chosen)) {
    const ui = (api.i18n?.getUILanguage?.() ?? 'en').toLowerCase();
    chosen = ui.startsWith('cy') ? 'cy' : 'en';
  }
  lang = chosen;
  fallback = await load('en');
  messages = lang === 'en' ? fallback : await load(lang);
  document.documentElement.lang = lang;
  apply(document);
}

// t(key, args) returns the message with $1..$9 replaced.
export function t(key, args = []) {
  const m = messages[key]?.message ?? fallback[key]?.message;
  if (m === undefined) return key;
  return m.replace(/\$(\d)/g, (_, n) => String(args[Number(n) - 1] ?? '')).replace(/\$\$/g, '$');
}

export function has(key) { return key in messages || key in fallback; }

export function apply(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':');
      if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

// factKey names a helper fact's message: "fact_" + its code.
export function factKey(code) { return 'fact_' + String(code).replace(/[.-]/g, '_'); }

// factText renders a helper fact {code, values} from the catalog, its
// {name} placeholders filled with the values (text, never markup); null
// when this version's catalog does not know the code.
export function factText(f) {
  if (!f || typeof f.code !== 'string' || !has(factKey(f.code))) return null;
  const vals = f.values ?? {};
  return t(factKey(f.code)).replace(/\{([a-z]+)\}/g, (_, n) => String(vals[n] ?? ''));
}

// Renders an evidence item: {key, args} from the extension; from the helper,
// {fact} in the page's language, else the helper's English {text}.
export function evidenceText(e) {
  if (e && e.key && has(e.key)) return t(e.key, e.args ?? []);
  return factText(e?.fact) ?? String(e?.text ?? '');
}

export function methodKey(m) { return 'method_' + String(m || 'unknown').replace(/-/g, '_'); }
export function needKey(n) { return 'need_' + String(n).replace(/-/g, '_'); }
