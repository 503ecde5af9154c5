// Recognises a filter's block page or block redirect in the browser, from the
// same public fingerprints the helper uses (shared/fingerprints), compiled at
// build time. Only page rules (title/body substrings) and redirect rules are
// usable here; status and header rules are left to the helper.

// compileRules keeps what the browser can check, per fingerprint.
export function compileRules(fingerprints) {
  const page = [];
  const redirect = [];
  for (const fp of fingerprints ?? []) {
    const base = { id: fp.id, vendor: fp.vendor, kind: fp.kind, confidence: fp.confidence ?? 0.5 };
    for (const r of fp.rules ?? []) {
      const w = r.weight ?? 1;
      const keys = Object.keys(r).filter((k) => k !== 'weight');
      if (keys.every((k) => k === 'title' || k === 'body')) {
        page.push({ ...base, confidence: base.confidence * w, title: (r.title ?? []).map((s) => s.toLowerCase()), body: (r.body ?? []).map((s) => s.toLowerCase()) });
      } else if (keys.length === 1 && keys[0] === 'redirect') {
        redirect.push({ ...base, confidence: base.confidence * w, ...r.redirect });
      }
    }
  }
  return { page, redirect };
}

function best(matches) {
  if (matches.length === 0) return null;
  // The strongest match wins; on a tie a look-alike (not a block) wins, so a
  // doubt never turns into a block.
  matches.sort((a, b) => b.confidence - a.confidence || (a.kind === 'block') - (b.kind === 'block'));
  const m = matches[0];
  return { id: m.id, vendor: m.vendor, kind: m.kind, confidence: m.confidence };
}

// matchPage checks a page's title and its first 256 KiB of HTML.
export function matchPage(rules, { title = '', html = '' }) {
  const t = String(title).toLowerCase();
  const b = String(html).slice(0, 262144).toLowerCase();
  return best((rules?.page ?? []).filter((r) =>
    r.title.every((s) => t.includes(s)) && r.body.every((s) => b.includes(s))));
}

// matchRedirect checks a redirect target URL.
export function matchRedirect(rules, url) {
  let u;
  try { u = new URL(url); } catch { return null; }
  const host = u.hostname.toLowerCase();
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const path = u.pathname.toLowerCase();
  return best((rules?.redirect ?? []).filter((r) =>
    (!r.hosts || r.hosts.some((h) => host === h || host.endsWith('.' + h)))
    && (!r.port || r.port === port)
    && (!r.path || path.includes(String(r.path).toLowerCase()))
    && (!r.query || r.query.every((q) => u.searchParams.has(q)))));
}
