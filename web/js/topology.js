// The network picture (SVG): machines in five lanes that follow a message
// (senders' devices, outgoing servers, DNS, MX servers, recipients'
// devices), the links between them, and an envelope (a "?" for DNS) that
// travels along the link of the current hop. `render` draws the state after
// events 0..N; only the envelope's journey to its resting place is animated.
//
// Wide screens (a projector, a laptop) get the lanes as columns, left to
// right; narrow ones (a phone) get them as rows, top to bottom, so the
// picture keeps a readable size when it is scaled to the screen's width.
//
// Nothing may overlap, at any size: every box, its icon, its badges, its
// state tag and its lane's title stay inside the lane's strip, and inside a
// lane they are stacked with room between them. Text that could be too long
// for its box (a long host name) is squeezed with `textLength` rather than
// allowed to spill out.
//
// The picture is for the eyes; for screen readers the same facts (each
// machine, its role, its address and what just happened to it) are written
// as a list (`describe`), since an SVG drawing has no words of its own.

import { hopOf, nodeStates } from './model.js';

const NS = 'http://www.w3.org/2000/svg';
const LANES = ['senders', 'outgoing', 'dns', 'mx', 'recipients'];
const LANE_TITLES = {
  senders: "Senders' devices", outgoing: 'Outgoing servers', dns: 'DNS', mx: 'MX servers', recipients: "Recipients' devices",
};
/** The word inside each box that says what the machine is (not only its icon or colour). */
const ROLE_WORDS = { client: 'device', host: 'mail server', dns: 'DNS server' };
const SERVICE_SHORT = { smtp: 'SMTP', submission: 'SUBM', imap: 'IMAP', pop3: 'POP3', dns: 'DNS' };
const PROTOCOL_NAMES = { smtp: 'SMTP', dns: 'DNS', pop3: 'POP3', imap: 'IMAP', sim: 'story' };
/** The width of a lane's strip and of a box in it (viewBox units). */
const LANE = 200;
const BOX_W = 184;
const TITLE_ROOM = 30; // a lane title above the first box
const BADGE_ROOM = 36; // the badges under a box
const TAG_ROOM = 14; // a DOWN / FAILED tag sitting on a box's top edge
/** Rough text widths (px per character) of the fonts used, to squeeze text that would not fit. */
const CHAR_W = { name: 11.4, mono: 10.3, title: 9.4, badge: 9.0 };
/** Phones and narrow windows: the same width at which style.css turns the page into one column. */
const NARROW = '(max-width: 820px)';

function el(tag, attrs = {}, children = []) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

/** A text element, squeezed to `max` units wide if its estimated width is more. */
/** A small padlock (12×14) at (x, y), for encrypted hops. */
function lockIcon(x, y) {
  return el('g', { class: 'lock', transform: `translate(${x},${y})` }, [
    el('path', { d: 'M3 6 V4 a3 3 0 0 1 6 0 V6', fill: 'none', 'stroke-width': 2 }),
    el('rect', { x: 1, y: 6, width: 10, height: 8, rx: 1.5 }),
  ]);
}

function text(x, y, content, cls, { max = Infinity, charWidth = CHAR_W.mono } = {}) {
  const t = el('text', { x, y, class: cls });
  t.textContent = content;
  if (String(content).length * charWidth > max) {
    t.setAttribute('textLength', String(max));
    t.setAttribute('lengthAdjust', 'spacingAndGlyphs');
  }
  return t;
}

/** Lines of a node's box under its name and address: ports, or the device's user. */
function nodeLines(node) {
  const lines = [];
  if (node.role === 'client') {
    lines.push(node.user || '');
  } else {
    const ports = Object.entries(node.ports).map(([service, port]) => `${SERVICE_SHORT[service] || service} ${port}`);
    // Two ports a line when they fit in the box, else one.
    for (let i = 0; i < ports.length;) {
      const pair = ports.slice(i, i + 2).join(' · ');
      if (i + 1 < ports.length && pair.length <= 17) { lines.push(pair); i += 2; } else { lines.push(ports[i]); i += 1; }
    }
  }
  return lines;
}

function icon(role, x, y) {
  // Simple drawn icons: emoji fonts are not on every classroom machine.
  if (role === 'client') {
    return el('g', { class: 'icon', transform: `translate(${x},${y})` }, [
      el('rect', { x: 3, y: 2, width: 20, height: 13, rx: 2 }),
      el('path', { d: 'M0 18 h26 l-2 3 h-22 z' }),
    ]);
  }
  if (role === 'dns') {
    return el('g', { class: 'icon', transform: `translate(${x},${y})` }, [
      el('circle', { cx: 12, cy: 11, r: 10 }),
      el('path', { d: 'M2 11 h20 M12 1 c-6 6 -6 14 0 20 M12 1 c6 6 6 14 0 20', fill: 'none' }),
    ]);
  }
  return el('g', { class: 'icon', transform: `translate(${x},${y})` }, [
    el('rect', { x: 2, y: 1, width: 22, height: 8, rx: 1.5 }),
    el('rect', { x: 2, y: 12, width: 22, height: 8, rx: 1.5 }),
  ]);
}

/** Where the segment from the centre of box `a` towards `b` leaves `a`. */
function border(a, b) {
  const dx = b.x - a.x, dy = b.y - a.y;
  if (dx === 0 && dy === 0) return { x: a.x, y: a.y };
  const sx = dx === 0 ? Infinity : (a.w / 2) / Math.abs(dx);
  const sy = dy === 0 ? Infinity : (a.h / 2) / Math.abs(dy);
  const s = Math.min(sx, sy);
  return { x: a.x + dx * s, y: a.y + dy * s };
}

/** How tall a box is: the role row, the name, the address, then its lines. */
function boxHeight(lines) {
  return 80 + lines.length * 20;
}

/**
 * Wide layout: lanes are columns. Inside a column each machine gets an equal
 * share of a vertical band: DNS high, the servers in the middle, the devices
 * low, so the links between neighbouring columns run diagonally and stay long
 * enough to watch an envelope travel along them. Then a sweep pushes boxes
 * down until each clears the one above (its badges and the next one's tag).
 */
function layoutColumns(topology) {
  const boxes = [];
  const titles = [];
  let height = 540;
  LANES.forEach((lane, i) => {
    const nodes = topology.nodes.filter((n) => n.column === lane);
    if (!nodes.length) return;
    const x = LANE * i + LANE / 2;
    const items = nodes.map((node) => {
      const lines = nodeLines(node);
      return { node, lane, x, w: BOX_W, h: boxHeight(lines), lines };
    });
    const devices = lane === 'senders' || lane === 'recipients';
    const [top, bottom] = lane === 'dns' ? [40, 200]
      : devices ? (nodes.length <= 2 ? [300, 540] : [40, 540])
        : nodes.length <= 1 ? [130, 390] : [40, 520];
    const slot = (bottom - top) / items.length;
    let floor = lane === 'dns' ? TAG_ROOM : TITLE_ROOM + TAG_ROOM;
    items.forEach((item, j) => {
      const wanted = top + slot * (j + 0.5);
      const itemTop = Math.max(wanted - item.h / 2, floor);
      item.y = itemTop + item.h / 2;
      floor = itemTop + item.h + BADGE_ROOM + TAG_ROOM;
      height = Math.max(height, itemTop + item.h + BADGE_ROOM);
    });
    boxes.push(...items);
    if (lane !== 'dns') titles.push({ x, y: items[0].y - items[0].h / 2 - TAG_ROOM - 6, text: LANE_TITLES[lane] });
  });
  return { width: LANE * LANES.length, height, boxes, titles };
}

/**
 * Narrow layout: lanes are rows, top to bottom, the machines of a row side
 * by side; DNS joins the outgoing servers' row, on its right, so the links
 * from the outgoing servers down to the MX servers do not cross its box.
 * Boxes drop their port lines (the list for screen readers and the tooltip
 * keep them) so the picture stays short enough for a phone.
 */
function layoutRows(topology) {
  const boxes = [];
  const titles = [];
  const of = (lane) => topology.nodes.filter((n) => n.column === lane);
  const rows = [['senders'], ['outgoing', 'dns'], ['mx'], ['recipients']];
  const lanesOfRows = rows.map((lanes) => lanes.filter((lane) => of(lane).length));
  const width = Math.max(2, ...lanesOfRows.map((lanes) => lanes.reduce((n, lane) => n + of(lane).length, 0))) * LANE;
  let y = 0;
  for (const lanes of lanesOfRows) {
    if (!lanes.length) continue;
    const nodes = lanes.flatMap(of);
    const titled = lanes.filter((lane) => lane !== 'dns');
    if (titled.length) y += TITLE_ROOM - 6;
    y += TAG_ROOM;
    const h = boxHeight(nodes.some((n) => n.role === 'client') ? [''] : []);
    let x = (width - nodes.length * LANE) / 2;
    for (const lane of lanes) {
      const members = of(lane);
      if (lane !== 'dns') titles.push({ x: x + (members.length * LANE) / 2, y: y - TAG_ROOM - 6, text: LANE_TITLES[lane], max: members.length * LANE - 8 });
      for (const node of members) {
        const lines = node.role === 'client' ? nodeLines(node) : [];
        boxes.push({ node, lane, x: x + LANE / 2, y: y + h / 2, w: BOX_W, h, lines });
        x += LANE;
      }
    }
    // Extra room between rows: a hop between them is short, and its
    // envelope, its label and the badges must not pile up on each other.
    y += h + BADGE_ROOM + 22;
  }
  return { width, height: y - 22, boxes, titles };
}

export class Topology {
  /** `svg` is the picture; `list` (optional) receives its description for screen readers. */
  constructor(svg, list = null) {
    this.svg = svg;
    this.list = list;
    this.topology = null;
    this.boxes = new Map();
    this.edges = [];
    this.last = null; // the last render's arguments, to redraw after a change of layout
    this.narrow = window.matchMedia ? window.matchMedia(NARROW) : null;
    if (this.narrow) {
      this.narrow.addEventListener('change', () => {
        if (!this.topology) return;
        this.setTopology(this.topology);
        if (this.last) this.render(this.last.events, { animate: false });
      });
    }
  }

  /** Lays out the nodes and edges of a new world. */
  setTopology(topology) {
    this.topology = topology;
    this.svg.replaceChildren();
    this.boxes.clear();
    const narrow = !!(this.narrow && this.narrow.matches);
    const layout = narrow ? layoutRows(topology) : layoutColumns(topology);
    this.svg.setAttribute('viewBox', `0 0 ${layout.width} ${layout.height}`);
    this.size = [layout.width, layout.height];
    this.svg.dataset.layout = narrow ? 'rows' : 'columns';
    const defs = el('defs');
    for (const p of ['smtp', 'dns', 'pop3', 'imap', 'sim']) {
      defs.append(el('marker', { id: `arrow-${p}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: `marker ${p}` }, [el('path', { d: 'M0 0 L10 5 L0 10 z' })]));
    }
    this.svg.append(defs);

    const headers = el('g', { class: 'column-titles' });
    for (const title of layout.titles) headers.append(text(title.x, title.y, title.text, 'column-title', { max: title.max || LANE - 8, charWidth: CHAR_W.title }));
    for (const box of layout.boxes) this.boxes.set(box.node.name, box);

    this.edgeLayer = el('g', { class: 'edges' });
    this.activeEdgeLayer = el('g', { class: 'edges-active' });
    this.nodeLayer = el('g', { class: 'nodes' });
    this.tokenLayer = el('g', { class: 'tokens' });
    // Lane titles above the links (a link may pass behind a title, never over it).
    this.svg.append(this.edgeLayer, headers, this.nodeLayer, this.activeEdgeLayer, this.tokenLayer);

    this.edges = topology.edges.filter((e) => this.boxes.has(e.from) && this.boxes.has(e.to));
    for (const edge of this.edges) {
      const [a, b] = [this.boxes.get(edge.from), this.boxes.get(edge.to)];
      const p = border(a, b), q = border(b, a);
      edge.baseClass = `edge ${edge.protocol} ${edge.purpose}`;
      edge.line = el('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: edge.baseClass, 'data-from': edge.from, 'data-to': edge.to });
      const title = el('title');
      title.textContent = `${edge.protocol.toUpperCase()} ${edge.purpose}, port ${edge.port}`;
      edge.line.append(title);
      this.edgeLayer.append(edge.line);
    }

    for (const box of this.boxes.values()) {
      const { node, x, y, w, h, lines } = box;
      const g = el('g', { class: `node ${node.role}`, 'data-name': node.name, transform: `translate(${x - w / 2},${y - h / 2})` });
      g.append(el('rect', { class: 'box', width: w, height: h, rx: 12 }));
      g.append(icon(node.role, 10, 6));
      g.append(text(44, 22, ROLE_WORDS[node.role] || node.role, 'node-role', { max: w - 52, charWidth: 8.2 }));
      g.append(text(w / 2, 49, node.name, 'node-name', { max: w - 14, charWidth: CHAR_W.name }));
      g.append(text(w / 2, 71, node.address, 'node-address', { max: w - 14 }));
      lines.forEach((line, k) => g.append(text(w / 2, 93 + k * 20, line, 'node-ports', { max: w - 14, charWidth: 9.4 })));
      const badges = el('g', { class: 'badges', transform: `translate(${w / 2},${h + 5})` });
      g.append(badges);
      // The state of a machine in words, on its top edge: DOWN or FAILED (not only a colour).
      const tagText = text(-34, 17, '', 'state-text');
      const tag = el('g', { class: 'state-tag', transform: `translate(${w - 8},-12)` }, [el('rect', { x: -72, y: 0, width: 76, height: 24, rx: 5 }), tagText]);
      g.append(tag);
      box.g = g;
      box.badges = badges;
      box.tagText = tagText;
      const title = el('title');
      const services = Object.entries(node.ports || {}).map(([service, port]) => `${SERVICE_SHORT[service] || service} ${port}`).join(', ');
      title.textContent = `${node.name} (${node.address})${services ? `\n${services}` : ''}${node.domains ? `\nmailboxes of ${node.domains.join(', ')}` : ''}${node.backup_for ? `\nbackup MX for ${node.backup_for.join(', ')}` : ''}`;
      g.append(title);
      this.nodeLayer.append(g);
    }
  }

  point(edgeFrom, edgeTo, t) {
    const a = this.boxes.get(edgeFrom), b = this.boxes.get(edgeTo);
    const p = border(a, b), q = border(b, a);
    return { x: p.x + (q.x - p.x) * t, y: p.y + (q.y - p.y) * t };
  }

  /**
   * Draws the picture after `events` (events 0..N). With `animate`, the
   * envelope of the last event travels to its place in `duration` ms.
   */
  render(events, { animate = false, duration = 500 } = {}) {
    if (!this.topology) return;
    this.last = { events };
    const states = nodeStates(this.topology, events);
    const current = events.length ? events[events.length - 1] : null;
    const hop = hopOf(current, this.topology);
    const failedTo = hop && current && (current.kind === 'failure' || current.kind === 'connect_failed') ? hop.to : null;

    for (const box of this.boxes.values()) {
      const name = box.node.name;
      const state = states[name];
      // The class is rebuilt whole, so a view looks the same however it was reached.
      const classes = ['node', box.node.role];
      if (!state.up) classes.push('down');
      if (hop && hop.from === name && hop.to !== name) classes.push('active-from');
      if (hop && hop.to === name) classes.push('active-to');
      if (failedTo === name) classes.push('failed');
      if (hop && (hop.from === name || hop.to === name)) classes.push(`proto-${hop.protocol}`);
      box.g.setAttribute('class', classes.join(' '));
      box.tagText.textContent = !state.up ? 'DOWN' : failedTo === name ? '✖ FAILED' : '';
      box.badges.replaceChildren();
      const badges = [];
      if (state.mailbox) badges.push([`mailbox ${state.mailbox}`, 'mailbox']);
      if (state.queued) badges.push([`queue ${state.queued}${state.deferred ? ' · ⚠ deferred' : ''}`, state.deferred ? 'deferred' : 'queue']);
      // Side by side under the box; squeezed to the box's width if both would be wider.
      const widths = badges.map(([label]) => 14 + label.length * CHAR_W.badge);
      const total = widths.reduce((a, b) => a + b, 0) + 6 * Math.max(badges.length - 1, 0);
      const scale = Math.min(1, box.w / Math.max(total, 1));
      const row = el('g', { transform: `scale(${scale})` });
      let x = -total / 2;
      badges.forEach(([label, cls], k) => {
        const wBadge = widths[k];
        row.append(el('g', { class: `badge ${cls}`, transform: `translate(${x + wBadge / 2},0)` }, [el('rect', { x: -wBadge / 2, y: 0, width: wBadge, height: 26, rx: 13 }), text(0, 19, label, '')]));
        x += wBadge + 6;
      });
      if (badges.length) box.badges.append(row);
    }
    this.describe(states, hop, current, failedTo);

    // The link of the current hop, drawn on top; an ad-hoc one if the
    // topology has no such link (a bounce back, a lookup by a device).
    this.activeEdgeLayer.replaceChildren();
    for (const edge of this.edges) edge.line.setAttribute('class', edge.baseClass);
    this.tokenLayer.replaceChildren();
    this.svg.dataset.activeFrom = hop ? hop.from : '';
    this.svg.dataset.activeTo = hop ? hop.to : '';
    this.svg.dataset.encrypted = String(Boolean(hop && current && current.tls));
    this.svg.dataset.seq = current ? current.seq : '';
    if (!hop || hop.from === hop.to) return;
    const edge = this.edges.find((e) => (e.from === hop.from && e.to === hop.to) || (e.from === hop.to && e.to === hop.from));
    if (edge) edge.line.setAttribute('class', `${edge.baseClass} active`);
    const p = this.point(hop.from, hop.to, 0), q = this.point(hop.from, hop.to, 1);
    this.activeEdgeLayer.append(el('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: `edge-highlight ${hop.protocol}`, 'marker-end': `url(#arrow-${hop.protocol})` }));
    const length = Math.hypot(q.x - p.x, q.y - p.y) || 1;
    // The link's label (protocol and port). Not on a phone: there the rows
    // are close, the label would cover the badges, and the caption right
    // under the picture names the protocol anyway.
    if (edge && this.svg.dataset.layout !== 'rows') {
      // The label sits beside the middle of the link, on its upper side.
      // Nearer the sender than the envelope's resting place.
      const mid = this.point(hop.from, hop.to, 0.3);
      let nx = (q.y - p.y) / length, ny = -(q.x - p.x) / length;
      // Put it on the side away from DNS (high in the middle), or above
      // for DNS's own links.
      const dns = this.topology.nodes.find((n) => n.role === 'dns');
      const dnsBox = dns && hop.from !== dns.name && hop.to !== dns.name ? this.boxes.get(dns.name) : null;
      const away = dnsBox ? nx * (mid.x - dnsBox.x) + ny * (mid.y - dnsBox.y) < 0 : ny > 0 || (ny === 0 && nx < 0);
      if (away) { nx = -nx; ny = -ny; }
      // An encrypted hop (TLS) says so in words and with a lock.
      const encrypted = Boolean(current && current.tls);
      const label = `${hop.protocol.toUpperCase()} ${edge.port}${encrypted ? ' TLS' : ''}`;
      const wl = label.length * 10 + 14 + (encrypted ? 16 : 0);
      const off = 22 + Math.abs(nx) * (wl / 2);
      // Kept inside the picture, whatever side the link is on.
      const [vw, vh] = this.size;
      const lx = Math.max(wl / 2 + 2, Math.min(vw - wl / 2 - 2, mid.x + nx * off));
      const ly = Math.max(17, Math.min(vh - 13, mid.y + ny * off));
      const parts = [el('rect', { x: -wl / 2, y: -15, width: wl, height: 26, rx: 6 }), text(encrypted ? 8 : 0, 4, label, '')];
      if (encrypted) parts.push(lockIcon(-wl / 2 + 7, -9));
      this.activeEdgeLayer.append(el('g', { class: `edge-label ${hop.protocol}${encrypted ? ' encrypted' : ''}`, transform: `translate(${lx},${ly})` }, parts));
    }
    if (!hop.travels) return;

    // The envelope rests a little before the receiver, clear of its box.
    // On a phone the rows are close: the envelope rests nearer the receiver,
    // off the sender's badges, with its label beside it rather than below.
    const rows = this.svg.dataset.layout === 'rows';
    const end = this.point(hop.from, hop.to, rows ? 0.72 : Math.max(0.5, Math.min(0.8, 1 - 60 / length)));
    const token = this.token(current, hop, rows);
    token.setAttribute('transform', `translate(${end.x},${end.y})`);
    this.tokenLayer.append(token);
    if (animate && duration > 0 && token.animate) {
      const start = this.point(hop.from, hop.to, 0.12);
      token.animate(
        [{ transform: `translate(${start.x}px,${start.y}px)` }, { transform: `translate(${end.x}px,${end.y}px)` }],
        { duration, easing: 'ease-in-out' },
      );
    }
  }

  /**
   * The picture in words, for screen readers: one item per machine with its
   * role, address and services, and what the current hop does to it.
   */
  describe(states, hop, current, failedTo) {
    if (!this.list) return;
    const protocol = hop ? PROTOCOL_NAMES[hop.protocol] || hop.protocol : '';
    const items = [];
    for (const box of this.boxes.values()) {
      const { node } = box;
      const state = states[node.name];
      const services = Object.entries(node.ports || {}).map(([service, port]) => `${SERVICE_SHORT[service] || service} on port ${port}`);
      const what = [`${node.name}: ${ROLE_WORDS[node.role] || node.role} among the ${LANE_TITLES[box.lane] || box.lane}`, `address ${node.address}`];
      if (node.user) what.push(`used by ${node.user}`);
      if (services.length) what.push(services.join(', '));
      const now = [];
      if (!state.up) now.push('DOWN');
      if (failedTo === node.name) now.push('failed');
      if (hop && hop.from === node.name && hop.to !== node.name) now.push(`now sends ${protocol} to ${hop.to}`);
      if (hop && hop.to === node.name && hop.from !== node.name) now.push(`now receives ${protocol} from ${hop.from}`);
      if (hop && hop.to === node.name && hop.from === node.name && current) now.push(`now: ${current.summary}`);
      if (state.mailbox) now.push(`${state.mailbox} message${state.mailbox === 1 ? '' : 's'} in its mailboxes`);
      if (state.queued) now.push(`${state.queued} in its queue${state.deferred ? ', deferred' : ''}`);
      items.push(`${what.join('; ')}.${now.length ? ` ${now.join('; ')}.` : ''}`);
    }
    const key = items.join('\n');
    if (this.listKey === key) return;
    this.listKey = key;
    this.list.replaceChildren(...items.map((line) => {
      const li = document.createElement('li');
      li.textContent = line;
      return li;
    }));
  }

  /** The envelope (or DNS question/answer bubble) of an event. */
  token(event, hop, labelBeside = false) {
    const cls = `token ${hop.protocol} ${event.kind}`;
    let label = '';
    if (event.kind === 'line') {
      // A reply shows its code (250), a command its verb (EHLO).
      const line = event.line || '';
      const code = line.match(/^(\d{3})[ -]/);
      label = code ? code[1] : line.split(/\s/)[0].slice(0, 10);
    }
    else if (event.kind === 'data') label = 'message';
    else if (event.kind === 'connect') label = 'connect';
    else if (event.kind === 'dns_query') label = `${event.rtype}?`;
    else if (event.kind === 'dns_answer') label = 'answer';
    let shape;
    if (hop.dns) {
      const mark = event.kind === 'dns_query' ? '?' : '!';
      shape = el('g', {}, [el('circle', { r: 19, class: 'bubble' }), text(0, 9, mark, 'mark')]);
    } else {
      const big = event.kind === 'data';
      const w = big ? 56 : 44, h = big ? 38 : 30;
      shape = el('g', {}, [
        el('rect', { x: -w / 2, y: -h / 2, width: w, height: h, rx: 4, class: 'envelope' }),
        el('path', { d: `M${-w / 2} ${-h / 2} L0 ${h / 6} L${w / 2} ${-h / 2}`, class: 'flap' }),
      ]);
    }
    const g = el('g', { class: cls }, [shape]);
    if (label) {
      const wl = label.length * 10.5 + 12;
      g.append(el('g', { class: 'token-label', transform: labelBeside ? `translate(${wl / 2 + 34},5)` : 'translate(0,38)' }, [el('rect', { x: -wl / 2, y: -17, width: wl, height: 24, rx: 5 }), text(0, 1, label, '')]));
    }
    return g;
  }
}
