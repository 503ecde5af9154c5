// Settings an organisation fixes for the extension by browser policy: Chrome
// and Edge's "3rdparty" extension policy, Firefox's policies.json
// "3rdparty" → "Extensions" → our id. Both reach us as storage.managed,
// which the person cannot change; Chrome checks the values against the
// schema the manifest declares (storage.managed_schema, built from
// installer/policy/extension-managed-schema.json), Firefox does not, so every
// value is checked again here and one of the wrong type is ignored, never
// half-used.
//
// A managed value wins over the person's own (and over the helper's, for the
// settings both know): the popup marks it "set by your organisation".

// The settings and their checks. The names are those of the helper's managed
// policy (helper/config.Managed) where both have the setting.
export const MANAGED_SETTINGS = {
  // false: blocks are still noticed (and reported, if report_automatically)
  // but no prompt is opened.
  prompts: (v) => typeof v === 'boolean',
  report_automatically: (v) => typeof v === 'boolean',
  // The organisation's id in the hub's whitelist; used when there is no
  // helper to say it (degraded mode).
  org: (v) => typeof v === 'string' && /^[a-z0-9][a-z0-9-]{0,62}$/.test(v),
  // Where people get help: an https link shown in the prompt and the popup.
  support_url: (v) => typeof v === 'string' && v.length <= 2000 && isHTTPS(v),
  // The organisation's words shown in the prompt, as text.
  message: (v) => typeof v === 'string' && v.trim().length > 0 && v.length <= 500,
};

function isHTTPS(s) {
  try { return new URL(s).protocol === 'https:'; } catch { return false; }
}

// parseManaged keeps the known settings whose value is well formed and says
// which were dropped, so a policy typo is visible rather than silently half
// applied.
export function parseManaged(raw) {
  const values = {};
  const rejected = [];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { values, names: [], rejected };
  for (const [k, v] of Object.entries(raw)) {
    const check = MANAGED_SETTINGS[k];
    if (!check) continue; // the helper's settings (hub, keys) may sit beside ours
    if (check(v)) values[k] = k === 'message' ? v.trim() : v;
    else rejected.push(k);
  }
  return { values, names: Object.keys(values), rejected };
}

// readManaged reads storage.managed. No policy is no managed settings:
// Firefox rejects the call when policies.json names nothing for us, Chrome
// answers {}.
export async function readManaged(api) {
  try {
    return parseManaged(await api.storage.managed.get());
  } catch {
    return parseManaged({});
  }
}

// effective merges the person's (or the helper's) settings with the managed
// ones. helperManaged is the helper's own list of settings fixed by its
// policy (the settings reply's "managed"). The result says, per setting,
// whether the organisation set it.
export function effective(settings, managed) {
  const s = { report_automatically: false, paused_until: null, ...(settings ?? {}) };
  const m = managed?.values ?? {};
  const byOrg = new Set([...(Array.isArray(s.managed) ? s.managed : []), ...(managed?.names ?? [])]);
  const out = {
    report_automatically: m.report_automatically ?? !!s.report_automatically,
    // The helper's own policy may carry prompts too (its settings reply).
    prompts: m.prompts ?? (typeof s.prompts === 'boolean' ? s.prompts : true),
    paused_until: s.paused_until ?? null,
    org: m.org ?? null,
    support_url: m.support_url ?? null,
    message: m.message ?? null,
    byOrg: [...byOrg].filter((k) => k in MANAGED_SETTINGS || k === 'paused_until').sort(),
  };
  // Prompts switched off by the organisation cannot be paused or resumed.
  if (m.prompts === false) out.paused_until = null;
  return out;
}
