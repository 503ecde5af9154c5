// Runs on catalog hosts only (the manifest's matches). If the loaded page is
// small enough to be a filter's block page, the background checks it against
// the fingerprints and, with the helper, diagnoses the host; on a block this
// script shows an unmistakable banner on the page. Nothing from the page is
// stored or sent anywhere: the title and HTML go to the extension's own
// background and are dropped after matching.
(() => {
  if (window.top !== window || document.getElementById('detour-banner')) return;
  const api = globalThis.browser ?? globalThis.chrome;
  const root = document.documentElement;
  if (!root || document.getElementsByTagName('*').length > 1500) return;
  const html = root.outerHTML;
  if (html.length > 262144) return;

  function show(b) {
    const host = document.createElement('div');
    host.id = 'detour-banner';
    host.style.cssText = 'all: initial; display: block; position: sticky; top: 0; z-index: 2147483647;';
    const shadow = host.attachShadow({ mode: 'open' });
    const bar = document.createElement('div');
    bar.setAttribute('role', 'alert');
    bar.style.cssText = 'font: 19px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; background: #ffdd00; color: #0b0c0c; border-bottom: 5px solid #0b0c0c; padding: 12px 20px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap;';
    const text = document.createElement('strong');
    text.textContent = api.i18n.getMessage(b.possible ? 'bannerTextPossible' : 'bannerText', [b.name]);
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = api.i18n.getMessage('bannerButton');
    button.style.cssText = 'font: inherit; font-weight: bold; background: #00703c; color: #fff; border: 0; box-shadow: 0 2px 0 #002d18; padding: 6px 12px; cursor: pointer;';
    button.addEventListener('click', () => { api.runtime.sendMessage({ cmd: 'open-prompt', id: b.id }).catch(() => {}); });
    bar.append(text, button);
    shadow.append(bar);
    (document.body ?? document.documentElement).prepend(host);
    document.documentElement.dataset.detourBanner = b.method;
  }

  api.runtime.sendMessage({ cmd: 'page', title: document.title.slice(0, 300), html })
    .then((r) => { if (r?.ok && r.result?.banner) show(r.result.banner); })
    .catch(() => {});
})();
