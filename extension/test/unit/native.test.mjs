import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Helper, HelperError, LOCAL_ABSENT, CODE_TIMEOUT } from '../../src/lib/native.js';

// A fake native port: records posted messages, lets the test answer them.
function fakePort() {
  const l = { msg: [], dis: [] };
  const port = {
    sent: [],
    onMessage: { addListener: (f) => l.msg.push(f) },
    onDisconnect: { addListener: (f) => l.dis.push(f) },
    postMessage(m) { if (this.closed) throw new Error('closed'); this.sent.push(m); },
    disconnect() { this.closed = true; },
    reply(m) { for (const f of l.msg) f(m); },
    drop(message = 'Native host has exited.') { this.closed = true; for (const f of l.dis) f({ error: { message } }); },
  };
  return port;
}
const tick = () => new Promise((r) => setImmediate(r));

function setup(opts = {}) {
  const ports = [];
  const timers = [];
  const h = new Helper({
    connect: (name) => { assert.equal(name, 'org.detour.helper'); const p = fakePort(); ports.push(p); return p; },
    browser: 'test',
    setTimer: (f, ms) => { const t = { f, ms }; timers.push(t); return t; },
    clearTimer: (t) => { if (t) t.cleared = true; },
    ...opts,
  });
  return { h, ports, timers };
}

async function connect(s, hello = { version: '1.2.3', protocol: 1, capabilities: ['hello', 'diagnose'], enrolled: false, whitelist_version: 7 }) {
  const p = s.h.start();
  await tick();
  const port = s.ports.at(-1);
  const m = port.sent.at(-1);
  assert.deepEqual({ type: m.type, version: m.version, browser: m.browser }, { type: 'hello', version: 1, browser: 'test' });
  port.reply({ id: m.id, type: 'hello', ok: true, result: hello });
  assert.equal(await p, true);
  return port;
}

test('hello first, then requests matched by id (out of order)', async () => {
  const s = setup();
  const port = await connect(s);
  assert.equal(s.h.connected, true);
  assert.equal(s.h.state().hello.version, '1.2.3');
  const a = s.h.request('diagnose', { url: 'https://docs.google.com/' });
  const b = s.h.request('status');
  await tick();
  const [ma, mb] = port.sent.slice(-2);
  assert.notEqual(ma.id, mb.id);
  port.reply({ id: mb.id, type: 'status', ok: true, result: { which: 'b' } });
  port.reply({ id: ma.id, type: 'diagnose', ok: false, error: { code: 9, message: 'not in catalog' } });
  assert.deepEqual(await b, { which: 'b' });
  await assert.rejects(a, (e) => e instanceof HelperError && e.code === 9);
  port.reply({ id: 9999, ok: true, result: {} }); // unknown id: ignored
});

test('events have no id', async () => {
  const s = setup();
  const port = await connect(s);
  const seen = [];
  s.h.on('event', (t, d) => seen.push([t, d]));
  port.reply({ type: 'whitelist-updated', data: { version: 8 } });
  assert.deepEqual(seen, [['whitelist-updated', { version: 8 }]]);
});

test('a request times out', async () => {
  const s = setup();
  await connect(s);
  const r = s.h.request('diagnose', {}, 1234);
  await tick();
  const t = s.timers.find((x) => x.ms === 1234);
  t.f();
  await assert.rejects(r, (e) => e.code === CODE_TIMEOUT);
});

test('a disconnect rejects pending requests and retries with backoff', async () => {
  const s = setup();
  const port = await connect(s);
  const r = s.h.request('status');
  await tick();
  port.drop();
  await assert.rejects(r, (e) => e.code === LOCAL_ABSENT);
  assert.equal(s.h.connected, false);
  assert.match(s.h.state().lastError, /exited/);
  const retries = s.timers.filter((t) => !t.cleared && t.ms >= 1000);
  assert.equal(retries.at(-1).ms, 1000);
  // The helper is missing: each failed attempt doubles the delay.
  retries.at(-1).f();
  await tick();
  s.ports.at(-1).drop('Specified native messaging host not found.');
  await tick();
  assert.equal(s.timers.at(-1).ms, 2000);
  s.timers.at(-1).f();
  await tick();
  s.ports.at(-1).drop('Specified native messaging host not found.');
  await tick();
  assert.equal(s.timers.at(-1).ms, 4000);
  // A successful hello resets the backoff.
  s.timers.at(-1).f();
  await tick();
  const p = s.ports.at(-1);
  p.reply({ id: p.sent.at(-1).id, ok: true, result: { version: 'x' } });
  await tick();
  assert.equal(s.h.connected, true);
  assert.equal(s.h.state().attempt, 0);
});

test('requests without a helper fail fast with LOCAL_ABSENT', async () => {
  const s = setup({ connect: () => { throw new Error('no native messaging'); } });
  await assert.rejects(s.h.request('diagnose', {}), (e) => e.code === LOCAL_ABSENT);
});

test('capabilities gate what the pages offer', async () => {
  const s = setup();
  await connect(s);
  assert.equal(s.h.can('diagnose'), true);
  assert.equal(s.h.can('report'), false);
});
