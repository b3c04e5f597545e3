// Live DNS editing (teacher only): a dialog that changes, adds or removes
// one record of a zone while the world runs (POST /api/dns, see
// src/web/dns_edit.rs). The next DNS question sees the change, and the
// change is an event of the story, so the DNS panel shows it by itself.
//
// The dialog lives outside the panes: the DNS pane is redrawn at every
// event, and a form inside it would lose what the teacher is typing.

import { getJson, postJson } from './api.js';
import { fill, h } from './panels.js';

const TYPES = ['MX', 'A', 'AAAA', 'TXT', 'CNAME'];
const VALUE = { MX: 'exchange', A: 'address', AAAA: 'address', TXT: 'text', CNAME: 'target' };
const VALUE_LABEL = { MX: 'Mail server (exchange)', A: 'Address (127.x.x.x)', AAAA: 'Address (::1)', TXT: 'Text', CNAME: 'Alias of (target)' };

let dialog = null;
const state = { zones: [], editing: null }; // editing: {domain, line, record} while changing a record

/** The "Edit records" button at the top of the DNS pane (teacher's page only). */
export function dnsEditButton() {
  return h('p', { class: 'dns-edit-open' },
    h('button', { id: 'dns-edit', type: 'button', onclick: open, title: 'Change, add or remove a DNS record while the world runs' }, '✎ Edit records'));
}

async function open() {
  if (!dialog) dialog = build();
  state.editing = null;
  result('');
  dialog.showModal();
  await reload();
}

function build() {
  const d = h('dialog', { id: 'dns-edit-dialog', 'aria-labelledby': 'dns-edit-title' },
    h('h2', { id: 'dns-edit-title' }, 'Edit the DNS zones'),
    h('p', {}, 'A change takes effect at the next DNS question, and the class sees it in the story.'),
    h('div', { class: 'dns-edit-zones' }),
    h('form', { class: 'dns-edit-form', onsubmit: submit },
      h('h3', { class: 'dns-edit-mode' }, 'Add a record'),
      h('label', {}, 'Zone ', h('select', { name: 'domain' })),
      h('label', {}, 'Type ', h('select', { name: 'type', onchange: typeChanged }, TYPES.map((t) => h('option', { value: t }, t)))),
      h('label', {}, 'Name (empty for the zone itself, or e.g. mx3) ', h('input', { name: 'name', type: 'text', autocomplete: 'off' })),
      h('label', { class: 'dns-edit-preference' }, 'Preference (MX: lower is tried first) ', h('input', { name: 'preference', type: 'number', min: '0', max: '65535', value: '10' })),
      h('label', {}, h('span', { class: 'dns-edit-value-label' }, VALUE_LABEL.MX), ' ', h('input', { name: 'value', type: 'text', autocomplete: 'off', required: true })),
      h('div', { class: 'result', role: 'status' }),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'dns-edit-cancel', hidden: true, onclick: () => startAdd() }, 'Cancel change'),
        h('button', { type: 'button', onclick: () => dialog.close() }, 'Close'),
        h('button', { type: 'submit', class: 'primary dns-edit-submit' }, 'Add'))));
  document.body.append(d);
  return d;
}

const field = (name) => dialog.querySelector(`[name=${name}]`);

function result(text, failed = false) {
  if (!dialog) return;
  const el = dialog.querySelector('.result');
  el.textContent = text;
  el.classList.toggle('failure', failed);
}

function typeChanged() {
  const type = field('type').value;
  dialog.querySelector('.dns-edit-preference').hidden = type !== 'MX';
  dialog.querySelector('.dns-edit-value-label').textContent = VALUE_LABEL[type];
}

async function reload() {
  try {
    state.zones = (await getJson('/api/dns')).zones;
  } catch (err) {
    result(`The zones cannot be read: ${err.message}`, true);
    return;
  }
  const select = field('domain');
  const chosen = select.value;
  fill(select, state.zones.map((z) => h('option', { value: z.domain }, z.domain)));
  if (chosen) select.value = chosen;
  fill(dialog.querySelector('.dns-edit-zones'), state.zones.map((zone) => h('section', { class: 'dns-edit-zone' },
    h('h3', {}, zone.domain),
    h('ul', { class: 'dns-edit-records' }, zone.records.map((r) => h('li', { dataset: { line: r.line } },
      h('code', {}, r.line), ' ',
      h('button', { type: 'button', class: 'dns-edit-change', 'aria-label': `Change ${r.line}`, onclick: () => startChange(zone.domain, r) }, 'Change'), ' ',
      h('button', { type: 'button', class: 'dns-edit-remove', 'aria-label': `Remove ${r.line}`, onclick: () => remove(zone.domain, r) }, 'Remove')))))));
}

function startAdd() {
  state.editing = null;
  dialog.querySelector('.dns-edit-mode').textContent = 'Add a record';
  dialog.querySelector('.dns-edit-submit').textContent = 'Add';
  dialog.querySelector('.dns-edit-cancel').hidden = true;
  field('domain').disabled = false;
  field('type').disabled = false;
  field('name').value = '';
  field('value').value = '';
  typeChanged();
}

function startChange(domain, { line, record }) {
  state.editing = { domain, line, record };
  dialog.querySelector('.dns-edit-mode').textContent = `Change ${line}`;
  dialog.querySelector('.dns-edit-submit').textContent = 'Save change';
  dialog.querySelector('.dns-edit-cancel').hidden = false;
  field('domain').value = domain;
  field('type').value = record.type;
  field('name').value = record.name || '';
  field('preference').value = record.preference ?? 10;
  field('value').value = record[VALUE[record.type]] ?? '';
  typeChanged();
  field('value').focus();
}

function recordFromForm() {
  const type = field('type').value;
  const record = { type };
  const name = field('name').value.trim();
  if (name && name !== '@') record.name = name;
  if (type === 'MX') record.preference = Number(field('preference').value || 0);
  record[VALUE[type]] = field('value').value.trim();
  if (state.editing && state.editing.record.ttl) record.ttl = state.editing.record.ttl;
  return record;
}

async function send(body, done) {
  const reply = await postJson('/api/dns', body);
  if (!reply.ok) {
    result((reply.body && reply.body.error) || `refused (${reply.status})`, true);
    return false;
  }
  result(done);
  await reload();
  return true;
}

async function submit(event) {
  event.preventDefault();
  const record = recordFromForm();
  if (state.editing) {
    const { domain, line } = state.editing;
    if (await send({ domain, action: 'change', line, record }, `Changed ${line}.`)) startAdd();
  } else if (await send({ domain: field('domain').value, action: 'add', record }, `Added to ${field('domain').value}.`)) {
    field('name').value = '';
    field('value').value = '';
  }
}

async function remove(domain, { line }) {
  if (state.editing && state.editing.line === line) startAdd();
  await send({ domain, action: 'remove', line }, `Removed ${line}.`);
}
