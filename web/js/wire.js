// "On the wire": what someone on the link sees of a session, beside what
// the endpoints see (the transcript).
//
// A plaintext hop crosses the link as it is written: the eavesdropper reads
// the same lines as the transcript, and where the scenario puts one on the
// link its events (`eavesdropped`) carry the raw bytes, unmasked, with any
// login decoded to the password. A TLS hop shows only its records
// (`tls_records`): a type, a length and ciphertext. Also here: the lock
// and the handshake steps the timeline shows for TLS sessions.

import { h } from './panels.js';

const STEP_NAMES = { client_hello: 'hello', certificate: 'certificate', keys_agreed: 'keys agreed', finished: 'finished', failed: 'failed' };
const RECORD_NAMES = { handshake: 'handshake', application_data: 'encrypted data', change_cipher_spec: 'change cipher spec', alert: 'alert', not_tls: 'not TLS' };

/** Marks each timeline chip of a TLS session (`chip.tls`) and lists its handshake steps (`chip.handshake`). */
export function annotateTls(groups, events) {
  const bySession = new Map();
  for (const e of events) {
    if (e.session == null) continue;
    if (e.kind === 'tls_handshake' || e.tls) {
      const info = bySession.get(e.session) || { tls: null, steps: [] };
      if (e.tls && !info.tls) info.tls = e.tls;
      if (e.kind === 'tls_handshake' && !info.steps.includes(e.step)) info.steps.push(e.step);
      bySession.set(e.session, info);
    }
  }
  for (const group of groups) {
    for (const chip of group.chips) {
      const info = chip.session != null ? bySession.get(chip.session) : null;
      if (!info) continue;
      chip.tls = info.tls;
      chip.handshake = info.steps.map((s) => STEP_NAMES[s] || s);
    }
  }
  return groups;
}

/** The lock (or broken lock) a chip shows, with words for screen readers. */
export function tlsBadge(chip) {
  if (!chip.handshake && !chip.tls) return null;
  const failed = chip.handshake && chip.handshake.includes('failed');
  const label = failed ? 'TLS failed' : chip.tls ? `Encrypted: ${chip.tls.version}` : 'TLS';
  return h('span', { class: `tls-badge${failed ? ' failed' : ''}`, title: chip.tls ? `${chip.tls.version}, ${chip.tls.cipher_suite}` : label },
    lockIcon(failed), h('span', { class: 'visually-hidden' }, `${label}. `));
}

/** A padlock drawn in SVG (emoji fonts are not everywhere); open when TLS failed. */
export function lockIcon(open = false) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 12 14');
  svg.setAttribute('class', `lock-icon${open ? ' open' : ''}`);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const shackle = document.createElementNS(ns, 'path');
  shackle.setAttribute('d', open ? 'M3 6 V4 a3 3 0 0 1 6 0 V2' : 'M3 6 V4 a3 3 0 0 1 6 0 V6');
  const body = document.createElementNS(ns, 'rect');
  for (const [k, v] of Object.entries({ x: 1, y: 6, width: 10, height: 8, rx: 1.5 })) body.setAttribute(k, v);
  svg.append(shackle, body);
  return svg;
}

/** The handshake steps of a chip, as a short line ("TLS: hello → certificate → keys agreed → finished"). */
export function handshakeLine(chip) {
  if (!chip.handshake || !chip.handshake.length) return null;
  return h('span', { class: 'chip-handshake' }, `TLS: ${chip.handshake.join(' → ')}`);
}

/** Is the hop of this event encrypted? (for the lock on the picture). */
export function isEncrypted(event) {
  return Boolean(event && event.tls);
}

/** The "On the wire" view of `session` up to the last event shown (null for none, or DNS). */
export function wireView(events, session) {
  if (session == null) return null;
  const mine = events.filter((e) => e.session === session);
  if (!mine.length || mine[0].protocol === 'dns') return null;
  const last = events.length ? events[events.length - 1].seq : -1;
  const items = [];
  for (const e of mine) {
    if (e.kind === 'eavesdropped') items.push(overheard(e, last));
    else if (e.kind === 'tls_records') items.push(records(e, last));
    else if (e.kind === 'tampered') {
      items.push(h('li', { class: `wire-item tampered${e.seq === last ? ' current' : ''}`, dataset: { seq: e.seq } },
        h('div', { class: 'wire-note' }, h('b', {}, 'Man in the middle: '), `“${e.original}” becomes “${e.forwarded}”`)));
    }
  }
  const encrypted = mine.some((e) => e.tls);
  const heard = mine.some((e) => e.kind === 'eavesdropped');
  let note;
  if (encrypted && !heard) note = 'Encrypted: someone on the link sees only TLS records — their type, their length and ciphertext. Nothing readable.';
  else if (encrypted) note = 'Readable until the TLS handshake; after it, only TLS records.';
  else if (heard) note = 'Plaintext: the eavesdropper on this link reads every byte, the password included.';
  else note = 'Plaintext: anyone on this link reads the transcript as it is (no eavesdropper is placed on this link in the scenario).';
  return h('section', { class: 'on-the-wire', 'aria-labelledby': 'on-the-wire-title' },
    h('h3', { class: 'pane-title', id: 'on-the-wire-title' }, encrypted ? lockIcon() : null, 'On the wire', h('span', { class: 'muted' }, '  what an eavesdropper sees')),
    h('p', { class: `wire-summary${encrypted ? ' encrypted' : ' plaintext'}` }, note),
    items.length ? h('ol', { class: 'wire-capture' }, items) : null);
}

function overheard(e, last) {
  const prefix = e.direction === 'to_server' ? 'C:' : 'S:';
  const lines = (e.raw || '').split(/\r?\n/).slice(0, 12);
  return h('li', { class: `wire-item plaintext${e.seq === last ? ' current' : ''}`, dataset: { seq: e.seq } },
    h('pre', { class: 'wire-raw' }, lines.map((l, i) => h('span', { class: 'wire-line' }, h('b', { class: 'prefix' }, i === 0 ? prefix : '  '), ` ${l}`))),
    e.captured ? h('div', { class: 'captured', role: 'note' },
      h('b', {}, 'Password read: '), h('mark', {}, e.captured.password),
      ` — ${e.captured.user}, sent with ${e.captured.mechanism}`) : null);
}

function records(e, last) {
  const arrow = e.direction === 'to_server' ? `${e.from} → ${e.to}` : `${e.from} → ${e.to}`;
  return h('li', { class: `wire-item records${e.seq === last ? ' current' : ''}`, dataset: { seq: e.seq } },
    h('div', { class: 'wire-note' }, arrow),
    h('table', { class: 'record-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Record'), h('th', { scope: 'col' }, 'Length'), h('th', { scope: 'col' }, 'First bytes (hex)'))),
      h('tbody', {}, e.records.map((r) => h('tr', {},
        h('td', {}, RECORD_NAMES[r.content_type] || r.content_type), h('td', {}, String(r.length)), h('td', {}, h('code', {}, r.hex)))))),
    e.more ? h('div', { class: 'muted' }, `…and ${e.more} more records`) : null);
}
