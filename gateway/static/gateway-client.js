/**
 * gateway-client.js: the browser client of the Odoo submission gateway (wire protocol v1).
 *
 * One ES module, no build step, no dependencies. It is the reference implementation of the
 * protocol for browsers: every submission is written to an IndexedDB outbox before anything
 * is sent, is resent with the same idempotency key until the gateway acknowledges it (across
 * reconnects and page reloads), and the tasks it created are followed to their final status.
 *
 * Usage
 * -----
 *     import { GatewayClient } from '/static/gateway-client.js';
 *     const client = new GatewayClient({ url: 'wss://gw.example/v1/ws', token: 'dev-token' });
 *     client.on('task', (record) => render(record));          // a task record changed
 *     client.on('status', (state, info) => badge(state));     // 'connecting' | 'online' | 'offline'
 *     client.on('error', (error) => console.warn(error));     // {code, message, details, key?, taskId?}
 *     await client.start();                                   // open IndexedDB, load tasks, connect
 *     const record = await client.submit('inventory.adjust',
 *         { location: 'WH/Stock', lines: [{ product: 'DEMO-001', quantity: 12 }] });
 *
 * Constructor options (`new GatewayClient(options)`)
 * ------------------------------------------------
 *   url             WebSocket URL of `/v1/ws`. Default: `/v1/ws` on the page's own host
 *                   (`ws:` or `wss:` following the page's scheme).
 *   token           Bearer token; sent in the first frame (`{"type":"auth"}`), since a browser
 *                   cannot set headers on a WebSocket handshake.
 *   dbName          IndexedDB database name (default `'gateway-client'`). Use one per token or
 *                   user if several share a browser profile.
 *   pingIntervalMs  app-level `ping` period while online (default 20000).
 *   pongTimeoutMs   a `pong` missing for this long means the socket is dead (default 10000).
 *   backoffBaseMs / backoffCapMs   reconnect delay: full jitter, `random(0, min(cap, base * 2^n))`
 *                   after the n-th failed attempt in a row (defaults 500 / 20000).
 *   authTimeoutMs   give up on a connection that is not authenticated in time (default 10000).
 *   maxFrameBytes   a submission whose frame is larger is refused locally with
 *                   `payload_too_large` instead of being sent (the gateway would close the
 *                   socket with 1009). Default 65536, the gateway's default limit.
 *   compact         offer the compact form of protocol v1 (subprotocol `gateway.v1c`, fewer
 *                   bytes per task; README "Compact form"); default true. Frames are built
 *                   and read in their v1 shape and translated at the socket.
 *
 * Methods
 * -------
 *   start() -> Promise<void>         open the database, load the records, listen to the window's
 *                                    `online`/`offline` events, connect. Call once.
 *   submit(kind, payload) -> Promise<TaskRecord>
 *                                    write `{key: crypto.randomUUID(), kind, payload, createdAt}`
 *                                    to the outbox, then resolve at once with the new record
 *                                    (status `queued`); it is sent whenever connected.
 *   tasks() -> TaskRecord[]          every record, newest first (copies).
 *   task(key) -> TaskRecord|undefined
 *   setToken(token)                  use another token and reconnect now (also after a
 *                                    terminal close such as 4001).
 *   reconnect()                      drop the current socket (if any) and connect now.
 *   forget(key) -> Promise<boolean>  remove a record that is final (not queued, not in flight).
 *   clearFinished() -> Promise<number>  forget every final record.
 *   close()                          stop: close the socket, stop timers and listeners.
 *   on(event, fn) -> unsubscribe fn; off(event, fn).
 *   state                            current connection state.
 *
 * Events
 * ------
 *   'task'   (record)       a record was created or changed (a copy).
 *   'status' (state, info)  state is 'connecting', 'online' or 'offline'; info is
 *                           `{principal?, code?, reason?, retryInMs?, terminal?}` (`terminal`:
 *                           the gateway said not to reconnect: bad token, or message too big).
 *   'error'  (error)        `{code, message, details, key?, taskId?}`: a refused submission,
 *                           a refused token, or an error frame about no submission.
 *
 * TaskRecord
 * ----------
 *   { key, kind, payload, createdAt, updatedAt, taskId|null, status, seq, attempt,
 *     result|null, error|null, duplicate }
 *   status: 'queued'     in the outbox, not yet acknowledged (sent whenever connected)
 *           'accepted' | 'waiting' | 'running' | 'retrying' | 'succeeded' | 'failed'   the gateway's status
 *           ('waiting': queued behind an older task on the same Odoo record; error.blocked_by names it)
 *           'rejected'   the gateway refused the submission itself (validation_failed,
 *                        idempotency_key_reused, ...): removed from the outbox, `error` says why
 *           'unknown'    the gateway does not know the task (another token, or expired)
 *   Settled (nothing more will come): the wire's final statuses (succeeded, failed) and the
 *   client's own endings (rejected, unknown). `seq` is the last event seen; an event whose
 *   seq is not greater is a duplicate and is ignored.
 *
 * Protocol behaviour
 * ------------------
 *   On every (re)connect, after `authenticated`: resend every unacknowledged submission (same
 *   `idempotency_key`), then `resume` every unsettled task with its last seq. Whether a close code
 *   means "reconnect" is decided by range (RECONNECT_RULES, the wire module's table): 1009
 *   (message too big) and 4000-4007 (4001, 4002: authentication) stop reconnecting; any other
 *   close, known or not, reconnects with capped exponential backoff and full jitter, promptly on
 *   the window's `online` event. Error frames for a submission: `broker_unavailable`, `store_unavailable`,
 *   `unavailable`, `internal_error`, `quota_exceeded`, `rate_limited` (or any with `retry_after`)
 *   keep it in the outbox and resend it later; any other code marks it `rejected`.
 */

/** The gateway's final task statuses (odoo_gateway_wire/statuses.py). */
export const FINAL_STATUSES = Object.freeze(['succeeded', 'failed']);
/** A record with one of these needs no more network work: final, or ended on this side. */
export const SETTLED_STATUSES = Object.freeze([...FINAL_STATUSES, 'rejected', 'unknown']);

/**
 * Whether to reconnect after a close code, by range: [lowest, highest, reconnect], first match
 * wins, anything unmatched reconnects (odoo_gateway_wire/close_codes.py RECONNECT_RULES).
 */
export const RECONNECT_RULES = Object.freeze([[1009, 1009, false], [1000, 3999, true], [4000, 4007, false], [4008, 4999, true]]);

/** @param {number} code */
export function shouldReconnect(code) {
  const rule = RECONNECT_RULES.find(([lowest, highest]) => lowest <= code && code <= highest);
  return rule ? rule[2] : true;
}

/**
 * Error codes of a submit that mean "the gateway could not take it now: send it again later"
 * (odoo_gateway_wire/error_codes.py; so does any code ending in `_unavailable`, or any error
 * with `retry_after`).
 */
export const RETRYABLE_ERROR_CODES = Object.freeze([
  'unavailable', 'broker_unavailable', 'store_unavailable', 'internal_error',
  'quota_exceeded', 'rate_limited',
]);

/**
 * The compact form's vocabulary: a copy of odoo_gateway_wire/compact.py's tables, checked against them
 * by tests/unit/test_browser_module_agrees.py (so it stays plain JSON inside the freeze).
 */
export const COMPACT_WIRE = Object.freeze({
  "subprotocol": "gateway.v1c",
  "statusCodes": {"accepted": "a", "waiting": "w", "running": "r", "retrying": "y", "succeeded": "s", "failed": "f"},
  "clientTypes": {"auth": "a", "submit": "s", "resume": "r", "ping": "p"},
  "clientKeys": {"type": "t", "ref": "r", "token": "tk", "idempotency_key": "k", "kind": "n", "payload": "p", "tasks": "ts"},
  "serverTypes": {"authenticated": "a", "accepted": "k", "event": "e", "resumed": "r", "error": "x", "pong": "p"},
  "serverKeys": {
    "type": "t", "ref": "r", "principal": "pr", "task_id": "i", "seq": "q", "status": "s", "duplicate": "d",
    "result": "v", "error": "e", "tasks": "ts", "unknown": "u", "recovered": "rc", "code": "c", "message": "m",
    "details": "dt", "retry_after": "w"
  }
});

const invert = (table) => Object.fromEntries(Object.entries(table).map(([name, code]) => [code, name]));
const STATUS_NAMES = invert(COMPACT_WIRE.statusCodes);
const SERVER_TYPE_NAMES = invert(COMPACT_WIRE.serverTypes);
const SERVER_KEY_NAMES = invert(COMPACT_WIRE.serverKeys);

/** A v1 client frame in compact form (no null fields). */
export function toCompact(frame) {
  const out = {};
  for (const [key, value] of Object.entries(frame)) {
    if (value === null || value === undefined) continue;
    out[COMPACT_WIRE.clientKeys[key] ?? key] = key === 'type' ? (COMPACT_WIRE.clientTypes[value] ?? value) : value;
  }
  return out;
}

/** The canonical UUID of a compact task id (16 bytes, unpadded base64url); others unchanged. */
export function longTaskId(id) {
  if (typeof id !== 'string' || id.length !== 22) return id;
  let bytes;
  try {
    bytes = atob(id.replace(/-/g, '+').replace(/_/g, '/') + '==');
  } catch {
    return id;
  }
  if (bytes.length !== 16) return id;
  const hex = [...bytes].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function expandKeys(raw) {
  const out = {};
  for (const [key, value] of Object.entries(raw || {})) out[SERVER_KEY_NAMES[key] ?? key] = value;
  return out;
}

/** A compact server frame in its v1 shape, with what the compact form leaves out filled in. */
export function fromCompact(raw) {
  const frame = expandKeys(raw);
  frame.type = SERVER_TYPE_NAMES[frame.type] ?? frame.type;
  if ('status' in frame) frame.status = STATUS_NAMES[frame.status] ?? frame.status;
  if ('task_id' in frame) frame.task_id = longTaskId(frame.task_id);
  if (frame.type === 'accepted' || frame.type === 'event') {
    frame.seq ??= 0;
    frame.status ??= 'accepted';
    frame.duplicate ??= false;
    if (frame.type === 'event') {
      delete frame.duplicate;
      frame.attempt = Math.floor((frame.seq + 3) / 4); // attempt n owns seqs 4n-3 .. 4n
    }
  } else if (frame.type === 'resumed') {
    const tasks = {};
    for (const [id, info] of Object.entries(frame.tasks || {})) {
      const task = expandKeys(info);
      task.status = STATUS_NAMES[task.status ?? 'a'] ?? task.status;
      task.seq ??= 0;
      task.recovered ??= true;
      tasks[longTaskId(id)] = task;
    }
    frame.tasks = tasks;
    frame.unknown ??= [];
  }
  return frame;
}

const SUBMIT_REF = 's:';
const OUTBOX = 'outbox';
const TASKS = 'tasks';
/** Tasks per resume frame: the gateway's limit (odoo_gateway_wire/limits.py MAX_RESUME_TASKS, checked by a test). */
export const RESUME_CHUNK = 1000;

/**
 * Whether a submission refused with `code` is to be sent again later, unchanged: the rule of
 * odoo_gateway_wire/error_codes.py `is_retryable` (the gateway adds `retry_after` only to
 * "try again" errors, and a newer gateway's `..._unavailable` code is one of those too).
 */
export function isRetryable(code, retryAfter) {
  return RETRYABLE_ERROR_CODES.includes(code) || String(code).endsWith('_unavailable') || retryAfter != null;
}

/** @param {string} status a status from the gateway */
export function isFinal(status) {
  return FINAL_STATUSES.includes(status);
}

/** @param {string} status a record's status */
export function isSettled(status) {
  return SETTLED_STATUSES.includes(status);
}

function defaultUrl() {
  const { protocol, host } = globalThis.location;
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}/v1/ws`;
}

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new Error('IndexedDB transaction aborted'));
    tx.onerror = () => reject(tx.error);
  });
}

function copy(record) {
  return structuredClone(record);
}

export class GatewayClient {
  /** @param {object} [options] see the module comment */
  constructor(options = {}) {
    this.url = options.url || defaultUrl();
    this.token = options.token || '';
    this.dbName = options.dbName || 'gateway-client';
    this.pingIntervalMs = options.pingIntervalMs ?? 20000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 10000;
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffCapMs = options.backoffCapMs ?? 20000;
    this.authTimeoutMs = options.authTimeoutMs ?? 10000;
    this.maxFrameBytes = options.maxFrameBytes ?? 65536;
    this.compact = options.compact ?? true;
    this._compact = false; // what the current socket negotiated

    this._listeners = { task: new Set(), status: new Set(), error: new Set() };
    this._records = new Map(); // key -> TaskRecord
    this._byTaskId = new Map(); // task id -> key
    this._db = null;
    this._ws = null;
    this._state = 'offline';
    this._authed = false;
    this._started = false;
    this._closed = false;
    this._terminal = false; // a close code said: do not reconnect unchanged
    this._attempt = 0; // failed connection attempts in a row (backoff exponent)
    this._refs = 0;
    this._timers = { reconnect: null, ping: null, pong: null, auth: null };
    this._retryTimers = new Map(); // key -> timer of a submission to resend later
    this._onlineEvent = () => this._browserOnline();
    this._offlineEvent = () => this._browserOffline();
  }

  // ------------------------------------------------------------------ public API

  get state() {
    return this._state;
  }

  on(event, fn) {
    const set = this._listeners[event];
    if (!set) throw new Error(`unknown event '${event}' (task, status, error)`);
    set.add(fn);
    return () => set.delete(fn);
  }

  off(event, fn) {
    this._listeners[event]?.delete(fn);
  }

  async start() {
    if (this._started) return;
    this._started = true;
    try {
      this._db = await this._openDb();
      await this._load();
    } catch (err) {
      this._db = null; // keep working in memory only (e.g. storage disabled)
      this._emit('error', {
        code: 'storage_unavailable',
        message: `IndexedDB is not available (${err && err.message}); submissions will not survive a reload.`,
        details: null,
      });
    }
    if (globalThis.addEventListener) {
      globalThis.addEventListener('online', this._onlineEvent);
      globalThis.addEventListener('offline', this._offlineEvent);
    }
    this._connect();
  }

  async submit(kind, payload) {
    const now = Date.now();
    const entry = { key: crypto.randomUUID(), kind, payload, createdAt: now };
    const record = {
      ...entry, updatedAt: now, taskId: null, status: 'queued', seq: 0, attempt: 0,
      result: null, error: null, duplicate: false,
    };
    const size = new TextEncoder().encode(JSON.stringify(this._submitFrame(entry))).length;
    if (size > this.maxFrameBytes) {
      record.status = 'rejected';
      record.error = {
        code: 'payload_too_large',
        message: `The submission is ${size} bytes; the gateway accepts frames up to ${this.maxFrameBytes}.`,
        details: null,
      };
      await this._write([[TASKS, 'put', copy(record)]]);
      this._records.set(record.key, record);
      this._emit('task', copy(record));
      this._emit('error', { ...record.error, key: record.key });
      return copy(record);
    }
    // The outbox entry is durable before anything is sent: a reload resends it.
    await this._write([[OUTBOX, 'put', entry], [TASKS, 'put', copy(record)]]);
    this._records.set(record.key, record);
    this._emit('task', copy(record));
    if (this._authed) this._sendSubmit(entry);
    return copy(record);
  }

  tasks() {
    return [...this._records.values()].sort((a, b) => b.createdAt - a.createdAt).map(copy);
  }

  task(key) {
    const record = this._records.get(key);
    return record ? copy(record) : undefined;
  }

  setToken(token) {
    this.token = token || '';
    this.reconnect();
  }

  reconnect() {
    if (!this._started || this._closed) return;
    this._terminal = false;
    this._attempt = 0;
    this._dropSocket(1000, 'reconnecting');
    this._clearTimer('reconnect');
    this._connect();
  }

  async forget(key) {
    const record = this._records.get(key);
    if (!record || !isSettled(record.status)) return false;
    this._records.delete(key);
    if (record.taskId) this._byTaskId.delete(record.taskId);
    await this._write([[TASKS, 'delete', key], [OUTBOX, 'delete', key]]);
    return true;
  }

  async clearFinished() {
    const keys = [...this._records.values()].filter((r) => isSettled(r.status)).map((r) => r.key);
    for (const key of keys) await this.forget(key);
    return keys.length;
  }

  close() {
    this._closed = true;
    if (globalThis.removeEventListener) {
      globalThis.removeEventListener('online', this._onlineEvent);
      globalThis.removeEventListener('offline', this._offlineEvent);
    }
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
    for (const timer of this._retryTimers.values()) clearTimeout(timer);
    this._retryTimers.clear();
    this._dropSocket(1000, 'client closed');
    this._setState('offline', { reason: 'closed' });
  }

  // ------------------------------------------------------------------ events

  _emit(event, ...args) {
    for (const fn of [...this._listeners[event]]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`gateway-client: a '${event}' listener threw`, err);
      }
    }
  }

  _setState(state, info = {}) {
    if (this._state === state && state !== 'offline') return;
    this._state = state;
    this._emit('status', state, info);
  }

  // ------------------------------------------------------------------ storage

  _openDb() {
    return new Promise((resolve, reject) => {
      if (!globalThis.indexedDB) {
        reject(new Error('no indexedDB'));
        return;
      }
      const request = indexedDB.open(this.dbName, 1);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: 'key' });
        if (!db.objectStoreNames.contains(TASKS)) {
          db.createObjectStore(TASKS, { keyPath: 'key' }).createIndex('taskId', 'taskId');
        }
      };
      request.onsuccess = () => {
        const db = request.result;
        db.onversionchange = () => db.close();
        resolve(db);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error('IndexedDB upgrade blocked by another tab'));
    });
  }

  async _load() {
    const tx = this._db.transaction([OUTBOX, TASKS], 'readonly');
    const [outbox, tasks] = await Promise.all([
      promised(tx.objectStore(OUTBOX).getAll()),
      promised(tx.objectStore(TASKS).getAll()),
    ]);
    for (const record of tasks) {
      this._records.set(record.key, record);
      if (record.taskId) this._byTaskId.set(record.taskId, record.key);
    }
    // An outbox entry is the durable truth of "not acknowledged yet".
    for (const entry of outbox) {
      if (!this._records.has(entry.key)) {
        this._records.set(entry.key, {
          ...entry, updatedAt: entry.createdAt, taskId: null, status: 'queued', seq: 0, attempt: 0,
          result: null, error: null, duplicate: false,
        });
      }
    }
  }

  /** Apply operations ([store, 'put'|'delete', value]) in one transaction, in call order. */
  async _write(ops) {
    if (!this._db) return;
    try {
      const stores = [...new Set(ops.map(([store]) => store))];
      const tx = this._db.transaction(stores, 'readwrite');
      for (const [store, op, value] of ops) tx.objectStore(store)[op](value);
      await committed(tx);
    } catch (err) {
      this._emit('error', {
        code: 'storage_error', message: `Could not save to IndexedDB: ${err && err.message}`, details: null,
      });
    }
  }

  _outbox() {
    return [...this._records.values()]
      .filter((r) => r.status === 'queued')
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  // ------------------------------------------------------------------ connection

  _connect() {
    if (this._closed || this._terminal || this._ws) return;
    this._clearTimer('reconnect');
    this._authed = false;
    this._setState('connecting', { attempt: this._attempt });
    let ws;
    try {
      ws = this.compact ? new WebSocket(this.url, [COMPACT_WIRE.subprotocol]) : new WebSocket(this.url);
    } catch (err) {
      this._emit('error', { code: 'bad_url', message: String(err && err.message), details: null });
      this._scheduleReconnect({ reason: 'cannot open socket' });
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      this._compact = ws.protocol === COMPACT_WIRE.subprotocol;
      this._send({ type: 'auth', ref: this._ref('a'), token: this.token });
    };
    ws.onmessage = (message) => this._onMessage(message);
    ws.onclose = (event) => this._onClose(ws, event.code, event.reason);
    ws.onerror = () => {}; // a close event always follows
    this._timer('auth', this.authTimeoutMs, () => {
      if (this._ws === ws && !this._authed) this._lost(ws, 'not authenticated in time');
    });
  }

  _ref(prefix) {
    this._refs += 1;
    return `${prefix}${this._refs}`;
  }

  _send(frame) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    try {
      this._ws.send(JSON.stringify(this._compact ? toCompact(frame) : frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Forget a socket: no more events from it; close it if still open. */
  _dropSocket(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._authed = false;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    for (const name of ['ping', 'pong', 'auth']) this._clearTimer(name);
    try {
      ws.close(code, reason);
    } catch {
      /* already closed */
    }
  }

  /** The socket is dead or useless: drop it and reconnect with backoff. */
  _lost(ws, reason) {
    if (this._ws !== ws) return;
    if (this._authed) this._attempt = 0; // it had worked: retry from the base delay
    this._dropSocket(4000, reason);
    this._scheduleReconnect({ reason });
  }

  _onClose(ws, code, reason) {
    if (this._ws !== ws) return;
    const wasAuthed = this._authed;
    this._dropSocket(1000, '');
    if (!shouldReconnect(code)) {
      this._terminal = true;
      const error = {
        code: code === 1009 ? 'payload_too_large' : 'unauthenticated',
        message: code === 1009
          ? `The gateway closed the connection: a frame was too large (${reason || code}).`
          : `The gateway refused the token (${reason || code}). Set a valid token to reconnect.`,
        details: { closeCode: code, reason },
      };
      this._emit('error', error);
      this._setState('offline', { code, reason, terminal: true });
      return;
    }
    if (wasAuthed) this._attempt = 0; // it worked: the next try starts from the base delay
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect(info) {
    if (this._closed || this._terminal) return;
    this._clearTimer('reconnect');
    const ceiling = Math.min(this.backoffCapMs, this.backoffBaseMs * 2 ** this._attempt);
    const delay = Math.floor(Math.random() * ceiling); // full jitter
    this._attempt = Math.min(this._attempt + 1, 30);
    this._setState('offline', { ...info, retryInMs: delay });
    this._timer('reconnect', delay, () => this._connect());
  }

  _browserOnline() {
    if (this._closed || this._terminal) return;
    if (this._ws && this._authed) {
      this._ping(); // the network came back: check this socket now rather than in 20 s
      return;
    }
    // Not connected, or an attempt started while offline (doomed): start afresh, now.
    this._dropSocket(1000, 'network back');
    this._attempt = 0;
    this._connect();
  }

  _browserOffline() {
    // The socket may look open for minutes on a dead network: drop it; the `online`
    // event (or the backoff timer) brings the next one.
    if (this._ws) this._lost(this._ws, 'browser offline');
  }

  _timer(name, ms, fn) {
    this._clearTimer(name);
    this._timers[name] = setTimeout(() => {
      this._timers[name] = null;
      fn();
    }, ms);
  }

  _clearTimer(name) {
    if (this._timers[name]) {
      clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _schedulePing() {
    this._timer('ping', this.pingIntervalMs, () => this._ping());
  }

  _ping() {
    const ws = this._ws;
    if (!ws || !this._authed) return;
    this._send({ type: 'ping', ref: this._ref('p') });
    if (!this._timers.pong) {
      this._timer('pong', this.pongTimeoutMs, () => this._lost(ws, 'no pong in time'));
    }
    this._schedulePing();
  }

  // ------------------------------------------------------------------ frames in

  _onMessage(message) {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (this._compact) frame = fromCompact(frame);
    switch (frame.type) {
      case 'authenticated':
        this._onAuthenticated(frame);
        break;
      case 'accepted':
        this._onAccepted(frame);
        break;
      case 'event':
        this._onEvent(frame);
        break;
      case 'resumed':
        this._onResumed(frame);
        break;
      case 'error':
        this._onError(frame);
        break;
      case 'pong':
        this._clearTimer('pong');
        break;
      default:
        break; // unknown frame types are ignored (forward compatibility)
    }
  }

  _onAuthenticated(frame) {
    this._authed = true;
    this._clearTimer('auth');
    this._setState('online', { principal: frame.principal });
    this._schedulePing();
    for (const record of this._outbox()) this._sendSubmit(record);
    this._resumeAll();
  }

  _submitFrame(entry) {
    return {
      type: 'submit', ref: SUBMIT_REF + entry.key, idempotency_key: entry.key,
      kind: entry.kind, payload: entry.payload,
    };
  }

  _sendSubmit(entry) {
    const timer = this._retryTimers.get(entry.key);
    if (timer) {
      clearTimeout(timer);
      this._retryTimers.delete(entry.key);
    }
    this._send(this._submitFrame(entry));
  }

  _resumeAll() {
    const open = [...this._records.values()].filter((r) => r.taskId && !isSettled(r.status));
    for (let i = 0; i < open.length; i += RESUME_CHUNK) {
      const tasks = {};
      for (const record of open.slice(i, i + RESUME_CHUNK)) tasks[record.taskId] = record.seq;
      this._send({ type: 'resume', ref: this._ref('r'), tasks });
    }
  }

  _update(record, changes, extraOps = []) {
    Object.assign(record, changes, { updatedAt: Date.now() });
    this._write([[TASKS, 'put', copy(record)], ...extraOps]);
    this._emit('task', copy(record));
  }

  _onAccepted(frame) {
    const key = typeof frame.ref === 'string' && frame.ref.startsWith(SUBMIT_REF)
      ? frame.ref.slice(SUBMIT_REF.length) : null;
    const record = key && this._records.get(key);
    if (!record || !frame.task_id) return;
    if (record.taskId && record.status !== 'queued') return; // a late duplicate acknowledgement
    this._byTaskId.set(frame.task_id, key);
    // A duplicate may already be running; a final status waits for its event (with the result).
    const status = frame.status && !isFinal(frame.status) ? frame.status : 'accepted';
    this._update(record, {
      taskId: frame.task_id, status, duplicate: Boolean(frame.duplicate), error: null,
    }, [[OUTBOX, 'delete', key]]);
    if (isFinal(frame.status) && ('result' in frame || 'error' in frame)) {
      // Compact form: a task already final has its outcome folded into `accepted`.
      this._onEvent({ ...frame, type: 'event', attempt: Math.floor((frame.seq + 3) / 4) });
    }
  }

  _onEvent(frame) {
    const key = this._byTaskId.get(frame.task_id);
    const record = key && this._records.get(key);
    if (!record || typeof frame.seq !== 'number') return;
    if (frame.seq <= record.seq) return; // duplicate or old: already seen
    this._update(record, {
      status: frame.status,
      seq: frame.seq,
      attempt: frame.attempt ?? record.attempt,
      result: frame.result ?? null,
      error: frame.error ?? null,
    });
  }

  _onResumed(frame) {
    for (const [taskId, info] of Object.entries(frame.tasks || {})) {
      const key = this._byTaskId.get(taskId);
      const record = key && this._records.get(key);
      // recovered=false: the missed events were pruned; take the current state as told.
      if (record && info && info.recovered === false && info.seq > record.seq) {
        this._update(record, { status: info.status, seq: info.seq });
        if (isFinal(info.status)) this._fetchTask(record);
      }
    }
    for (const taskId of frame.unknown || []) {
      const key = this._byTaskId.get(taskId);
      const record = key && this._records.get(key);
      if (record && !isSettled(record.status)) {
        this._update(record, {
          status: 'unknown',
          error: {
            code: 'unknown_task',
            message: 'The gateway does not know this task for this token (another token, or it expired).',
            details: null,
          },
        });
      }
    }
  }

  /** After pruned history: the final result over HTTP (best effort; same-origin pages). */
  async _fetchTask(record) {
    try {
      const base = this.url.replace(/^ws/, 'http').replace(/\/v1\/ws$/, '');
      const response = await fetch(`${base}/v1/tasks/${encodeURIComponent(record.taskId)}`, {
        headers: { Authorization: `Bearer ${this.token}` },
      });
      if (!response.ok) return;
      const task = await response.json();
      if (task.seq >= record.seq) {
        this._update(record, {
          status: task.status, seq: task.seq, result: task.result ?? null, error: task.error ?? null,
        });
      }
    } catch {
      /* the status is right; only the result is missing */
    }
  }

  _onError(frame) {
    const error = { code: frame.code, message: frame.message, details: frame.details ?? null };
    const key = typeof frame.ref === 'string' && frame.ref.startsWith(SUBMIT_REF)
      ? frame.ref.slice(SUBMIT_REF.length) : null;
    const record = key && this._records.get(key);
    if (!record || record.status !== 'queued') {
      this._emit('error', error);
      return;
    }
    if (isRetryable(frame.code, frame.retry_after)) {
      // Keep it in the outbox; send it again later (or on the next connection).
      const seconds = Number(frame.retry_after) || 2;
      const delay = seconds * 1000 * (0.5 + Math.random());
      this._update(record, { error: { ...error, retrying: true } });
      clearTimeout(this._retryTimers.get(key));
      this._retryTimers.set(key, setTimeout(() => {
        this._retryTimers.delete(key);
        const current = this._records.get(key);
        if (current && current.status === 'queued' && this._authed) this._sendSubmit(current);
      }, delay));
      return;
    }
    this._update(record, { status: 'rejected', error }, [[OUTBOX, 'delete', key]]);
    this._emit('error', { ...error, key });
  }
}
