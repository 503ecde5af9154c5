// "Working with another organisation?": the popup's question, answered by the
// helper's `common` request from the signed whitelist it holds, or, without
// a helper, from the catalog bundled at build time (which knows no
// organisation's decisions, so everything there is unconfirmed). Pure
// functions, tested in extension/test/unit/common.test.mjs.

// The order the helper answers categories in: the five needs staff meet most,
// then the catalog's others (helper/whitelist.CommonOrder).
export const COMMON_ORDER = Object.freeze(['video', 'documents', 'wiki', 'files', 'projects', 'chat', 'whiteboard', 'forms']);

const SLUG = /^[a-z0-9][a-z0-9-]{0,63}$/;

// commonRequest builds the request's fields: organisation ids as slugs, each
// once, at most 50 (the schema's limits), and a known category or none.
export function commonRequest(orgs, category) {
  const seen = new Set();
  for (const o of orgs ?? []) {
    const id = String(o ?? '').trim().toLowerCase();
    if (SLUG.test(id)) seen.add(id);
  }
  const r = { orgs: [...seen].slice(0, 50) };
  if (COMMON_ORDER.includes(category)) r.category = category;
  return r;
}

// snapshotCommon is the degraded answer: every bundled service, by category,
// unconfirmed, with no policies and no approvals.
export function snapshotCommon(services, category) {
  const cats = COMMON_ORDER.includes(category) ? [category] : COMMON_ORDER;
  return {
    orgs: [], organisations: [], version: null, stale: true,
    categories: cats.map((c) => ({
      category: c,
      services: (services ?? []).filter((s) => s.category === c)
        .map((s) => ({ service: s.id, status: 'unconfirmed', approvals: 0, agreed_by: 0, policies: [] })),
    })),
  };
}

// withNames adds each service's name and URL from the catalog, dropping ids
// the catalog does not know (a helper's newer whitelist may name services
// this build has no URL for; they cannot be opened from here).
export function withNames(result, services) {
  const byId = new Map((services ?? []).map((s) => [s.id, s]));
  return {
    ...result,
    categories: (result?.categories ?? []).map((c) => ({
      ...c,
      services: (c.services ?? []).flatMap((s) => {
        const svc = byId.get(s.service);
        return svc ? [{ ...s, name: svc.name, url: svc.url }] : [];
      }),
    })),
  };
}

// notApprovedAt lists, for an unconfirmed service, the organisations that have
// not approved it with their status, for "unknown at X, restricted at Y".
export function notApprovedAt(service, orgs) {
  const names = new Map((orgs ?? []).map((o) => [o.id, o.name]));
  return (service.policies ?? []).filter((p) => p.status !== 'approved')
    .map((p) => ({ org: p.org, name: names.get(p.org) ?? p.org, status: p.status }));
}
