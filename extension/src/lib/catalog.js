// Catalog lookups and the URL filters generated from it. Pure functions:
// the extension only ever watches hosts that a catalog service names, and
// their subdomains (a service's hosts identify it).

export function normHost(h) {
  return String(h ?? '').trim().toLowerCase().replace(/\.$/, '');
}

// Every distinct host the catalog names, sorted.
export function catalogHosts(services) {
  const s = new Set();
  for (const svc of services ?? []) for (const h of svc.hosts ?? []) {
    const n = normHost(h);
    if (/^[a-z0-9.-]+$/.test(n) && n.includes('.')) s.add(n);
  }
  return [...s].sort();
}

// The service a host belongs to: the one naming it, or naming its nearest parent.
export function serviceForHost(services, host) {
  let h = normHost(host);
  const byHost = new Map();
  for (const svc of services ?? []) for (const x of svc.hosts ?? []) byHost.set(normHost(x), svc);
  while (h.includes('.')) {
    const svc = byHost.get(h);
    if (svc) return svc;
    h = h.slice(h.indexOf('.') + 1);
  }
  return null;
}

// Match patterns for host_permissions and webRequest filters.
export function matchPatterns(hosts) {
  // "*.host" matches the host itself and every subdomain.
  return hosts.map((h) => `*://*.${h}/*`);
}

// webNavigation url filters.
export function urlFilters(hosts) {
  return hosts.flatMap((h) => [{ hostEquals: h }, { hostSuffix: '.' + h }]);
}

// Origin only: scheme and host, never path, query or port-less surprises.
export function originOf(url) {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    const host = normHost(u.hostname);
    return { scheme: u.protocol.slice(0, -1), host, origin: `${u.protocol}//${host}/` };
  } catch {
    return null;
  }
}

// Alternatives from the bundled snapshot: other services in the same category.
export function snapshotAlternatives(services, svc, limit = 3) {
  if (!svc) return [];
  return (services ?? []).filter((s) => s.category === svc.category && s.id !== svc.id)
    .slice(0, limit).map((s, i) => ({ service: s.id, name: s.name, url: s.url, rank: i + 1, reasons: [] }));
}
