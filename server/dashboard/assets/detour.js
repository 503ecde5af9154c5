// Progressive enhancement only: every page works without this file.
// On the overview, refresh "blocks this week" every 30 seconds from
// GET /api/v1/aggregates (the same k-anonymous figure the page shows).
(function () {
  'use strict';
  var live = document.querySelector('[data-live="blocks-this-week"]');
  if (!live || !window.fetch) return;
  var fewer = live.getAttribute('data-fewer') || '';
  function refresh() {
    fetch('/api/v1/aggregates', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (rep) {
        if (!rep || !rep.overview) return;
        var c = rep.overview.blocks_this_week;
        live.textContent = c.suppressed ? fewer : String(c.value);
      })
      .catch(function () {});
  }
  setInterval(refresh, 30000);
})();
