// The WebExtension API object: Firefox's promise-based `browser`, or Chrome's
// `chrome` (whose MV3 APIs also return promises).
export const api = globalThis.browser ?? globalThis.chrome;

// Which browser family runs us (for the hello message and error mapping).
export function browserName() {
  const ua = globalThis.navigator?.userAgent ?? '';
  if (/Firefox\//.test(ua)) return 'firefox';
  if (/Edg\//.test(ua)) return 'edge';
  if (/OPR\//.test(ua)) return 'opera';
  if (/Chromium\//.test(ua)) return 'chromium';
  return 'chrome';
}

// ask sends a command to the background and resolves with its result; the
// extension's pages (prompt, popup) talk to the helper only through it.
export function ask(cmd, fields = {}) {
  return api.runtime.sendMessage({ cmd, ...fields }).then((r) => {
    if (!r?.ok) throw new Error(r?.error ?? 'no answer');
    return r.result;
  });
}
