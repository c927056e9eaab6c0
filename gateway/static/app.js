// The demo page: an inventory count form on top of gateway-client.js.
// Optional query parameters (for tests and demos): ?ping=<ms>&pong=<ms> set the client's
// app-level ping period and pong timeout.

import { GatewayClient } from './gateway-client.js';

const TOKEN_KEY = 'gateway-demo.token';
// Only a gateway run by `make run` pre-fills a token (GATEWAY_DEMO_TOKEN); others ask for one.
const DEFAULT_TOKEN = document.querySelector('meta[name="gateway-demo-token"]')?.content ?? '';
const KIND = 'inventory.adjust';

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === 'class') node.className = value;
    else if (name === 'testid') node.dataset.testid = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// ------------------------------------------------------------------ form

const linesBox = $('lines');

function addLine(product = '', quantity = '') {
  const row = el('div', { class: 'line', testid: 'line' },
    el('input', {
      testid: 'line-product', list: 'products', value: product, placeholder: 'DEMO-001',
      'aria-label': 'Internal reference', autocapitalize: 'characters', spellcheck: 'false',
    }),
    el('input', {
      testid: 'line-quantity', type: 'number', inputmode: 'decimal', step: 'any', value: quantity,
      placeholder: '0', 'aria-label': 'Counted quantity',
    }),
    el('button', { type: 'button', class: 'icon', testid: 'line-remove', 'aria-label': 'Remove row', title: 'Remove row' }, '×'),
  );
  row.querySelector('[data-testid="line-remove"]').addEventListener('click', () => {
    row.remove();
    if (!linesBox.children.length) addLine();
  });
  linesBox.append(row);
  return row;
}

function readForm(form) {
  const location = form.elements.location.value.trim();
  const lines = [];
  for (const row of linesBox.querySelectorAll('[data-testid="line"]')) {
    const product = $('line-product', row).value.trim();
    const raw = $('line-quantity', row).value.trim();
    if (!product && !raw) continue; // an untouched row
    // No checks here on purpose: the gateway validates and its error is shown in the list.
    lines.push({ product, quantity: raw === '' ? null : Number(raw) });
  }
  return { location, lines };
}

const datalist = document.getElementById('products');
for (let i = 1; i <= 20; i += 1) datalist.append(el('option', { value: `DEMO-${String(i).padStart(3, '0')}` }));

// ------------------------------------------------------------------ task list

const STATUS_LABELS = {
  accepted: 'accepted',
  waiting: 'queued behind an earlier task',
  running: 'running',
  retrying: 'retrying',
  succeeded: 'succeeded',
  failed: 'failed',
  rejected: 'rejected',
  unknown: 'unknown',
};

function statusLabel(record, state) {
  if (record.status === 'queued') return state === 'online' ? 'sending' : 'queued offline';
  const label = STATUS_LABELS[record.status] || record.status;
  if ((record.status === 'running' || record.status === 'retrying') && record.attempt > 1) {
    return `${label} (attempt ${record.attempt})`;
  }
  return label;
}

function describePayload(record) {
  const payload = record.payload || {};
  const lines = Array.isArray(payload.lines) ? payload.lines : [];
  const items = lines.map((l) => `${l && l.product ? l.product : '?'} × ${l ? l.quantity : '?'}`);
  return `${payload.location || '(no location)'} · ${items.join(', ') || '(no lines)'}`;
}

function describeResult(result) {
  if (!result) return 'Done.';
  if (Array.isArray(result.move_ids)) {
    const moves = result.move_ids.length;
    return `Applied in Odoo: ${moves} stock move${moves === 1 ? '' : 's'} (${result.move_ids.join(', ')}).`;
  }
  return JSON.stringify(result);
}

function describeError(error) {
  if (!error) return '';
  let text = `${error.code}: ${error.message}`;
  if (Array.isArray(error.details) && error.details.length) {
    const fields = error.details.map((d) => {
      const loc = Array.isArray(d.loc) ? d.loc.join('.') : '';
      return loc ? `${loc}: ${d.msg}` : String(d.msg ?? JSON.stringify(d));
    });
    text += ` (${fields.join('; ')})`;
  }
  if (error.retrying) text += ' Will send again.';
  if (error.retry_in_seconds) text += ` Next attempt in ${Math.round(error.retry_in_seconds)} s.`;
  return text;
}

function renderTask(record, state) {
  const time = new Date(record.createdAt);
  const item = el('li', {
    class: `task status-${record.status}`, testid: 'task', 'data-key': record.key,
    'data-status': record.status, 'data-task-id': record.taskId || '',
  },
  el('div', { class: 'task-head' },
    el('span', { class: 'status', testid: 'task-status' }, statusLabel(record, state)),
    el('time', { datetime: time.toISOString() }, time.toLocaleTimeString())),
  el('div', { class: 'task-summary', testid: 'task-summary' }, describePayload(record)),
  el('div', { class: 'task-id' },
    record.taskId ? 'Task ' : `${record.status === 'queued' ? 'Not acknowledged yet' : 'Not submitted'} · key `,
    el('code', { testid: record.taskId ? 'task-id' : 'task-key' }, record.taskId || record.key.slice(0, 8))));
  if (record.status === 'succeeded') {
    item.append(el('div', { class: 'task-result', testid: 'task-result' }, describeResult(record.result)));
  }
  if (record.error) {
    item.append(el('div', { class: 'task-error', testid: 'task-error' }, describeError(record.error)));
  }
  return item;
}

// ------------------------------------------------------------------ wiring

const tokenInput = $('token');
tokenInput.value = localStorage.getItem(TOKEN_KEY) ?? DEFAULT_TOKEN;

const params = new URLSearchParams(window.location.search);
const client = new GatewayClient({
  token: tokenInput.value,
  dbName: 'gateway-demo',
  pingIntervalMs: Number(params.get('ping')) || undefined,
  pongTimeoutMs: Number(params.get('pong')) || undefined,
});
window.gatewayClient = client; // for the console and the end-to-end tests

const list = $('task-list');
const empty = $('task-empty');
const badge = $('connection-status');
const message = $('form-message');

function renderList() {
  const records = client.tasks();
  list.replaceChildren(...records.map((r) => renderTask(r, client.state)));
  empty.hidden = records.length > 0;
}

client.on('task', renderList);
client.on('status', (state, info = {}) => {
  badge.dataset.state = state;
  let text = state;
  if (state === 'online' && info.principal) text = `online · ${info.principal}`;
  if (state === 'offline' && info.terminal) text = info.code === 1009 ? 'offline · frame too large' : 'offline · token refused';
  badge.textContent = text;
  badge.title = info.reason || '';
  renderList(); // "queued offline" vs "sending"
});
client.on('error', (error) => {
  if (!error.key) message.textContent = describeError(error);
});

$('add-line').addEventListener('click', () => {
  addLine().querySelector('input').focus();
});

$('adjust-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const payload = readForm(event.currentTarget);
  const record = await client.submit(KIND, payload);
  message.textContent = client.state === 'online'
    ? 'Sent.'
    : 'Saved on this device; it will be sent when the gateway is reachable.';
  if (record.status !== 'rejected') {
    linesBox.replaceChildren();
    addLine();
  }
});

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  message.textContent = '';
  client.setToken(token);
});

$('clear-finished').addEventListener('click', async () => {
  await client.clearFinished();
  renderList();
});

addLine('DEMO-001', '');
await client.start();
renderList();
$('app').dataset.ready = 'true';
