#!/usr/bin/env node
// `make bench`: time from navigation to the Detour prompt in Chromium (the real
// extension, relay and agent), beside a plain page load from the same
// loopback server as the baseline. Prints median and p95 of N navigations.
//   node test/browser/bench-prompt.mjs [N]
import { launchChromium, makeTLS, startSite, BLOCK_PAGES, CHROME_ID } from './lib/harness.mjs';
import { rmSync } from 'node:fs';

const N = Number(process.argv[2] ?? 10);
const PROMPT = `chrome-extension://${CHROME_ID}/src/prompt/prompt.html`;
const tls = makeTLS(['docs.google.com', 'zoom.us']);
const block = BLOCK_PAGES.squid;
const site = await startSite((req, res) => {
  if ((req.headers.host ?? '').startsWith('docs.google.com')) { res.writeHead(block.status, block.headers); res.end(block.body); return; }
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end('<!doctype html><title>Plain page</title><h1>Hello</h1>');
}, { tls });
const b = await launchChromium({
  hostRules: [`MAP docs.google.com 127.0.0.1:${site.port}`, `MAP zoom.us 127.0.0.1:${site.port}`],
  extraArgs: [`--ignore-certificate-errors-spki-list=${tls.spki}`],
  env: { DETOUR_PROBE_CONNECT_TO: `docs.google.com:443:127.0.0.1:${site.port},zoom.us:443:127.0.0.1:${site.port}`, DETOUR_PROBE_CA_FILE: tls.caFile },
});

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]; };
try {
  const page = await b.context.newPage();
  await page.goto(b.url('src/popup/popup.html'));
  await page.waitForSelector('#helper-state[data-connected="true"]', { timeout: 20000 }).catch(() => {});
  const helper = (await b.helperState())?.connected ? 'helper connected' : 'no helper';
  // Warm up both paths once.
  await page.goto('https://zoom.us/', { waitUntil: 'load' });
  const prompt = [];
  const plain = [];
  const commit = [];
  for (let i = 0; i <= N; i++) {
    await page.goto('about:blank');
    let t0 = performance.now();
    await page.goto(`https://docs.google.com/document/d/${i}/edit`, { waitUntil: 'commit' }).catch(() => {});
    await page.waitForURL((u) => u.href.startsWith(PROMPT), { timeout: 20000, waitUntil: "commit" }).catch(async (e) => { console.error("no prompt:", page.url(), JSON.stringify((await b.decisions()).slice(-4)), JSON.stringify(await b.helperState())); throw e; });
    const tCommit = performance.now() - t0;
    await page.waitForSelector('body[data-ready="true"]', { timeout: 20000 });
    const tPrompt = performance.now() - t0;
    await page.goto('about:blank');
    t0 = performance.now();
    await page.goto(`https://zoom.us/j/${i}`, { waitUntil: 'load' });
    const tPlain = performance.now() - t0;
    if (i > 0) { prompt.push(tPrompt); plain.push(tPlain); commit.push(tCommit); } // the first round warms the prompt page
  }
  const f = (x) => `${x.toFixed(0)} ms`;
  const pm = q(prompt, 0.5);
  const bm = q(plain, 0.5);
  console.log(`navigation to prompt (${N} runs, ${helper}): median ${f(pm)}, p95 ${f(q(prompt, 0.95))}`);
  console.log(`  of which until the tab is sent to the prompt:  median ${f(q(commit, 0.5))}, p95 ${f(q(commit, 0.95))}`);
  console.log(`plain page load, same loopback server:      median ${f(bm)}, p95 ${f(q(plain, 0.95))}`);
  console.log(`ratio (median prompt / median plain load): ${(pm / bm).toFixed(1)}x`);
  const last = (await b.decisions()).filter((d) => d.host === 'docs.google.com' && d.source).at(-1);
  if (last) console.log(`decided by: ${last.source} (method ${last.method}${last.helperMethod ? `, helper said ${last.helperMethod}` : ''}${last.helperError !== null && last.helperError !== undefined ? `, helper error ${last.helperError}` : ''})`);
} finally {
  await b.close();
  await site.close();
  rmSync(tls.dir, { recursive: true, force: true });
}
