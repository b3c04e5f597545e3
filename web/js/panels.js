// The panes beside the picture: the caption of the current hop, the
// timeline, the transcript, the DNS panel and the message inspector. Each
// render function draws from events 0..N (plus, for the inspector, what
// the servers' mailboxes hold) and nothing else.

import {
  simTime, transcript, sessionTitle, transcriptRow, PHASE_NAMES, dnsExchanges, zonesAt, isFailure, isWarning, deliveredAt,
} from './model.js';
import { renderAuthentication, refusedMessages } from './authentication.js';
import { diagramLinks } from './diagram.js';
import { handshakeLine, tlsBadge } from './wire.js';

/** Replaces the children of `root`, skipping empty ones. */
export function fill(root, ...children) {
  root.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** A tiny element builder: h('div', {class: 'x'}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const PROTOCOL_LABEL = { smtp: 'SMTP', dns: 'DNS', pop3: 'POP3', imap: 'IMAP', sim: 'STORY' };

/**
 * Scrolls `item` into view inside its pane only. (`scrollIntoView` would
 * also scroll the page, and on a phone, where the page is one long column,
 * every step would pull the reader away from the picture.)
 */
function scrollWithin(pane, item) {
  if (!item || pane.scrollHeight <= pane.clientHeight) return;
  const top = item.getBoundingClientRect().top - pane.getBoundingClientRect().top + pane.scrollTop;
  if (top < pane.scrollTop) pane.scrollTop = top;
  else if (top + item.offsetHeight > pane.scrollTop + pane.clientHeight) pane.scrollTop = top + item.offsetHeight - pane.clientHeight;
}

/** A failure or a delay said with a mark and a word, not only in red or amber (WCAG 1.4.1). */
function statusMark(kind) {
  if (kind === 'failure') return h('span', { class: 'status-mark' }, h('span', { 'aria-hidden': 'true' }, '✖ '), h('span', { class: 'visually-hidden' }, 'Failed: '));
  if (kind === 'warning') return h('span', { class: 'status-mark' }, h('span', { 'aria-hidden': 'true' }, '⚠ '), h('span', { class: 'visually-hidden' }, 'Delayed: '));
  return null;
}

function protocolChip(protocol) {
  return h('span', { class: `proto ${protocol}` }, PROTOCOL_LABEL[protocol] || protocol);
}

/** The big line under the picture: what is happening now, and why. */
export function renderCaption(root, events) {
  const e = events[events.length - 1];
  if (!e) {
    fill(root, h('div', { class: 'caption-summary muted' }, 'Waiting for the story to begin…'));
    return;
  }
  const row = transcriptRow(e);
  const route = e.from === e.to ? e.from : `${e.from} → ${e.to}`;
  const classes = ['caption-summary'];
  if (e.summary.length > 110) classes.push('long');
  const status = isFailure(e) ? 'failure' : isWarning(e) ? 'warning' : null;
  if (status) classes.push(status);
  fill(root, 
    h('div', { class: 'caption-meta' },
      h('span', { class: 'seq' }, `#${e.seq}`), protocolChip(e.protocol), h('span', { class: 'route' }, route)),
    h('div', { class: classes.join(' ') }, statusMark(status), e.summary),
    row.lines.length ? h('pre', { class: `caption-line ${e.protocol}` }, row.lines.slice(0, 2).map((l) => `${row.prefix} ${l}`).join('\n') + (row.lines.length > 2 ? ` …(+${row.lines.length - 2} lines)` : '')) : null,
    e.explain ? h('div', { class: 'explain' }, h('span', { class: 'explain-mark' }, 'Why? '), e.explain) : null,
  );
}

/** The conversation of one session, line by line, up to event N. */
export function renderTranscript(root, events, session) {
  if (session == null) {
    fill(root, h('p', { class: 'muted' }, 'No conversation yet. Step forward to see the first one.'));
    return;
  }
  const rows = transcript(events, session);
  const last = events.length ? events[events.length - 1].seq : -1;
  const list = h('ol', { class: 'transcript', 'data-session': session });
  for (const row of rows) {
    const cls = ['row', row.protocol];
    if (row.seq === last) cls.push('current');
    if (row.failure) cls.push('failure');
    if (row.warning) cls.push('warning');
    list.append(h('li', { class: cls.join(' '), dataset: { seq: row.seq } },
      row.lines.length
        ? h('pre', { class: 'wire' }, row.lines.map((l, i) => h('span', { class: 'wire-line' }, h('b', { class: `prefix ${row.prefix === 'C:' || row.prefix === 'Q:' ? 'client' : 'server'}` }, i === 0 ? row.prefix : '  '), ` ${l}`)))
        : null,
      h('div', { class: 'summary' }, h('span', { class: 'seq' }, `#${row.seq}`), ' ', statusMark(row.failure ? 'failure' : row.warning ? 'warning' : null), row.summary),
      row.explain ? h('div', { class: 'explain' }, row.explain) : null));
  }
  fill(root, h('h3', { class: 'pane-title' }, sessionTitle(events, session), h('span', { class: 'muted' }, `  session ${session}`)), list);
  scrollWithin(root, list.querySelector('.current') || list.lastElementChild);
}

/** The timeline: per message, its phases in order; deferrals amber, bounces red. */
export function renderTimeline(root, groups, currentSeq, onPick) {
  if (!groups.length) {
    fill(root, h('p', { class: 'muted' }, 'Nothing has happened yet.'));
    return;
  }
  const out = [];
  for (const group of groups) {
    const chips = group.chips.map((chip) => {
      const current = currentSeq >= chip.first && currentSeq <= chip.last;
      // A real button in each list item: lists may only hold items (WCAG
      // 1.3.1), and a button comes with Enter, Space and focus for free.
      const status = chip.status === 'error' ? 'failure' : chip.status === 'warn' ? 'warning' : null;
      return h('li', {},
        h('button', {
          class: `chip ${chip.phase} ${chip.status}${current ? ' current' : ''}`,
          dataset: { first: chip.first, last: chip.last, phase: chip.phase },
          'aria-current': current ? 'step' : null,
          onclick: () => onPick(chip),
        },
        h('span', { class: 'phase' }, PHASE_NAMES[chip.phase] || (chip.phase === 'host' ? 'Host' : 'Story')),
        h('span', { class: 'chip-title' }, statusMark(status), tlsBadge(chip), chip.title || ''),
        chip.detail ? h('span', { class: 'chip-detail' }, chip.detail) : null,
        handshakeLine(chip)));
    });
    out.push(h('section', { class: 'message-group', dataset: { message: group.id || '' } },
      h('h3', { class: 'group-title' }, group.id ? '✉ ' : '', group.label),
      h('ol', { class: 'chips' }, chips)));
  }
  fill(root, ...out);
  scrollWithin(root, root.querySelector('.chip.current'));
}

/** The DNS panel: the zones as they are at event N, and every question with its answer. */
export function renderDns(root, initialZones, events) {
  const zones = zonesAt(initialZones, events);
  const exchanges = dnsExchanges(events);
  const last = events.length ? events[events.length - 1].seq : -1;
  const zoneList = zones.map((z) => h('details', { class: 'zone', open: true },
    h('summary', {}, z.domain, z.changedAt != null ? h('span', { class: 'changed' }, ` changed at #${z.changedAt}`) : null),
    h('pre', { class: 'records' }, z.records.filter((r) => !/\sSOA\s/.test(r)).join('\n'))));
  const queries = exchanges.map((x) => {
    const current = events.some((e) => e.session === x.session && e.seq === last);
    const failed = x.answer && x.answer.failed;
    return h('li', { class: `exchange${current ? ' current' : ''}${failed ? ' failure' : ''}`, dataset: { seq: x.seq } },
      h('div', { class: 'question' }, h('b', {}, 'Q: '), `${x.from} asks `, h('code', {}, `${x.rtype} ${x.name}`)),
      x.answer
        ? h('div', { class: 'answer' }, h('b', {}, 'A: '), statusMark(failed ? 'failure' : null), x.answer.summary.replace(/^DNS answers: /, ''),
          x.answer.records.length ? h('pre', { class: 'records' }, x.answer.records.join('\n')) : h('div', { class: 'muted' }, x.answer.rcode))
        : h('div', { class: 'answer muted' }, 'waiting for the answer…'));
  });
  fill(root, 
    h('h3', { class: 'pane-title' }, 'Questions and answers'),
    queries.length ? h('ol', { class: 'exchanges' }, queries) : h('p', { class: 'muted' }, 'No DNS question yet.'),
    h('h3', { class: 'pane-title' }, 'Zones'),
    ...zoneList,
  );
  scrollWithin(root, root.querySelector('.exchange.current'));
}

/** The message inspector: a list of stored messages, and one in detail. */
export function renderInspector(root, { list, detail, selected }, events, { onSelect, onJump }) {
  const refused = refusedMessages(events).filter((r) => !(list || []).some((m) => m.id === r.id));
  const refusals = refused.length
    ? [h('h3', { class: 'pane-title' }, 'Refused by the sender checks (never stored)'),
      refused.map((r) => h('div', { class: 'message-detail refused', dataset: { id: r.id } }, h('h4', {}, r.label), renderAuthentication(events, r.id, { onJump })))]
    : [];
  if (!list || !list.length) {
    fill(root, h('p', { class: 'muted' }, 'No message has reached a mailbox yet. When one does, its headers and route appear here.'), ...refusals);
    return;
  }
  const picker = h('ul', { class: 'message-list' }, list.map((m) => h('li', {},
    h('button', { class: `message-pick${m.id === selected ? ' selected' : ''}`, onclick: () => onSelect(m.id), dataset: { id: m.id } },
      h('b', {}, m.subject || '(no subject)'), ` ${m.from} → ${m.to.join(', ')}`,
      h('span', { class: 'muted' }, ` · ${m.copies.map((c) => `${c.user} on ${c.host}`).join(', ')}`)))));
  const parts = [h('h3', { class: 'pane-title' }, 'Messages in the mailboxes'), picker];
  if (detail && detail.id === selected) parts.push(renderDetail(detail, events, onJump));
  fill(root, ...parts, ...refusals);
}

function renderDetail(detail, events, onJump) {
  const shownUpTo = events.length ? events[events.length - 1].seq : -1;
  const delivered = deliveredAt(events, detail.id);
  const note = delivered == null
    ? h('div', { class: 'notice' }, `At this point of the story (#${shownUpTo}) the message is not in a mailbox yet. Step forward to see it arrive.`)
    : null;
  const copy = detail.copies[0];
  const out = [h('h3', { class: 'pane-title' }, detail.label || detail.id), diagramLinks(detail.id), note];
  if (copy) {
    out.push(renderAuthentication(events, detail.id, { onJump }));
    out.push(h('h4', {}, `The route, from the Received headers (read bottom-up)`));
    out.push(receivedChain(copy));
    out.push(h('details', { class: 'headers', open: true }, h('summary', {}, `Headers of the copy in ${copy.user}'s ${copy.mailbox} on ${copy.host}`),
      h('table', { class: 'header-table' }, copy.headers.map((hd) => h('tr', { class: /^Authentication-Results$/i.test(hd.name) ? 'auth-header' : null }, h('th', {}, hd.name), h('td', {}, hd.value))))));
    out.push(h('details', { class: 'raw' }, h('summary', {}, `Raw source (${copy.size} bytes)`), h('pre', { class: 'raw-source' }, copy.raw)));
  }
  const hops = detail.hops.filter((e) => e.seq <= shownUpTo);
  out.push(h('details', { class: 'hops', open: false }, h('summary', {}, `Its hops so far: ${hops.length} events`),
    h('ol', { class: 'hop-list' }, hops.map((e) => h('li', { class: `proto-text ${e.protocol}` },
      h('button', { class: 'link', onclick: () => onJump(e.seq + 1) }, `#${e.seq}`), ` ${simTime(e.sim_ms)} `, e.summary)))));
  return h('div', { class: 'message-detail', dataset: { id: detail.id } }, out);
}

/** The Received chain drawn as hops: machine → machine → mailbox. */
function receivedChain(copy) {
  const chain = copy.received;
  const items = [];
  if (!chain.length) return h('p', { class: 'muted' }, 'No Received headers.');
  const first = chain[0];
  const ip = (first.from_detail.match(/\[([^\]]+)\]/) || [])[1];
  items.push(h('li', { class: 'hop-node' }, h('b', {}, first.from), ip ? h('span', { class: 'muted' }, ` [${ip}]`) : null));
  for (const r of chain) {
    const time = (r.date.match(/\d\d:\d\d:\d\d/) || [''])[0];
    items.push(h('li', { class: 'hop-arrow' }, h('span', {}, `${r.with || 'SMTP'}`), r.id ? h('span', { class: 'muted' }, ` id ${r.id}`) : null, time ? h('span', { class: 'muted' }, ` ${time}`) : null));
    items.push(h('li', { class: 'hop-node' }, h('b', {}, r.by)));
  }
  items.push(h('li', { class: 'hop-arrow' }, h('span', {}, 'stored')));
  items.push(h('li', { class: 'hop-node mailbox' }, h('b', {}, `${copy.user}`), h('span', { class: 'muted' }, ` ${copy.mailbox}`)));
  return h('ol', { class: 'received-chain' }, items);
}

export { simTime };
