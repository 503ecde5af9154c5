// One native-messaging port to the helper (relay → agent): hello first,
// request/reply matching by id with timeouts, pushed events, and reconnection
// with exponential backoff. `connect` is injectable for unit tests.

import { CODES, PROTOCOL_VERSION } from './contract.js';

export { PROTOCOL_VERSION };
export const HOST = 'org.detour.helper';

export class HelperError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
// Codes used locally when there is no reply at all (not sent by the helper).
export const LOCAL_ABSENT = -1; // no helper connected
export const CODE_UNKNOWN_TYPE = CODES.UNKNOWN_TYPE;
export const CODE_NOT_ENROLLED = CODES.NOT_ENROLLED;
export const CODE_TIMEOUT = CODES.TIMEOUT;

export class Helper {
  constructor({ connect, browser = 'chrome', timeoutMs = 10000, helloTimeoutMs = 5000,
    backoffMs = 1000, maxBackoffMs = 60000, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t) } = {}) {
    this.connectFn = connect;
    this.browser = browser;
    this.timeoutMs = timeoutMs;
    this.helloTimeoutMs = helloTimeoutMs;
    this.backoffMs = backoffMs;
    this.maxBackoffMs = maxBackoffMs;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.port = null;
    this.nextId = 1;
    this.pending = new Map();
    this.hello = null; // the hello result once connected
    this.lastError = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.listeners = { state: [], event: [] };
    this.connecting = null;
  }

  get connected() { return this.port !== null && this.hello !== null; }

  on(kind, f) { this.listeners[kind].push(f); }
  emit(kind, ...a) { for (const f of this.listeners[kind]) { try { f(...a); } catch (e) { console.error(e); } } }

  state() {
    return { connected: this.connected, hello: this.hello, lastError: this.lastError, attempt: this.attempt };
  }

  // start connects now (cancelling any pending retry) and resolves when hello
  // has been answered or the attempt failed.
  start() {
    if (this.connected) return Promise.resolve(true);
    if (this.connecting) return this.connecting;
    if (this.retryTimer) { this.clearTimer(this.retryTimer); this.retryTimer = null; }
    this.connecting = this._open().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  async _open() {
    let port;
    try {
      port = this.connectFn(HOST);
    } catch (e) {
      this._failed(String(e?.message ?? e));
      return false;
    }
    this.port = port;
    port.onMessage.addListener((msg) => this._onMessage(port, msg));
    port.onDisconnect.addListener((p) => {
      const err = (p && p.error && p.error.message) || globalThis.chrome?.runtime?.lastError?.message || 'the helper disconnected';
      if (this.port === port) this._disconnected(err);
    });
    try {
      const r = await this._send({ type: 'hello', version: PROTOCOL_VERSION, browser: this.browser }, this.helloTimeoutMs, true);
      if (this.port !== port) return false;
      this.hello = r;
      this.attempt = 0;
      this.lastError = null;
      this.emit('state', this.state());
      return true;
    } catch (e) {
      if (this.port === port) {
        try { port.disconnect(); } catch { /* already gone */ }
        this._disconnected(e.message);
      }
      return false;
    }
  }

  _failed(err) {
    this.lastError = err;
    this.emit('state', this.state());
    this._scheduleRetry();
  }

  _disconnected(err) {
    this.port = null;
    this.hello = null;
    for (const [, p] of this.pending) { this.clearTimer(p.timer); p.reject(new HelperError(LOCAL_ABSENT, err)); }
    this.pending.clear();
    this._failed(err);
  }

  _scheduleRetry() {
    if (this.retryTimer) return;
    const delay = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** this.attempt);
    this.attempt++;
    this.retryTimer = this.setTimer(() => { this.retryTimer = null; this.start(); }, delay);
  }

  _onMessage(port, msg) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.id === undefined || msg.id === null) {
      if (typeof msg.type === 'string') this.emit('event', msg.type, msg.data ?? {});
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    this.clearTimer(p.timer);
    if (msg.ok === true) p.resolve(msg.result ?? {});
    else p.reject(new HelperError(Number(msg.error?.code) || CODES.INTERNAL, String(msg.error?.message ?? 'the helper refused')));
  }

  _send(body, timeoutMs, beforeHello = false) {
    if (!this.port || (!beforeHello && !this.hello)) {
      return Promise.reject(new HelperError(LOCAL_ABSENT, this.lastError ?? 'the helper is not connected'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = this.setTimer(() => {
        this.pending.delete(id);
        reject(new HelperError(CODE_TIMEOUT, `no reply to ${body.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.port.postMessage({ id, ...body });
      } catch (e) {
        this.pending.delete(id);
        this.clearTimer(timer);
        reject(new HelperError(LOCAL_ABSENT, String(e?.message ?? e)));
      }
    });
  }

  // request sends a request once connected (trying to connect first).
  async request(type, fields = {}, timeoutMs = this.timeoutMs) {
    if (!this.connected) await this.start();
    return this._send({ ...fields, type }, timeoutMs);
  }

  // can says whether the connected helper announced a request type.
  can(type) {
    const caps = this.hello?.capabilities;
    return this.connected && (!Array.isArray(caps) || caps.includes(type));
  }
}
