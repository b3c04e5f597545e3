// The network picture (SVG): machines in five columns, the links between
// them, and an envelope (a "?" for DNS) that travels along the link of the
// current hop. `render` draws the state after events 0..N; only the
// envelope's journey to its resting place is animated.

import { hopOf, nodeStates } from './model.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 1000;
const H = 520;
const COLUMNS = ['senders', 'outgoing', 'dns', 'mx', 'recipients'];
const COLUMN_X = { senders: 116, outgoing: 318, dns: 500, mx: 682, recipients: 884 };
const COLUMN_TITLES = {
  senders: "Senders' devices", outgoing: 'Outgoing servers', dns: 'DNS', mx: 'MX servers', recipients: "Recipients' devices",
};
const SERVICE_SHORT = { smtp: 'SMTP', submission: 'SUBM', imap: 'IMAP', pop3: 'POP3', dns: 'DNS' };
const BOX_W = 188;

/** The vertical band of a column, given how many machines it holds. */
function band(column, count) {
  if (column === 'dns') return [46, 200];
  if (column === 'senders' || column === 'recipients') return count <= 2 ? [290, 520] : [36, 520];
  return count <= 1 ? [120, 380] : [36, 500];
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function text(x, y, content, cls) {
  const t = el('text', { x, y, class: cls });
  t.textContent = content;
  return t;
}

/** Lines of a node's box: name, address, then ports or the device's user. */
function nodeLines(node) {
  const lines = [];
  if (node.role === 'client') {
    lines.push(node.user || '');
  } else {
    const ports = Object.entries(node.ports).map(([service, port]) => `${SERVICE_SHORT[service] || service} ${port}`);
    // Two ports a line when they fit in the box, else one.
    for (let i = 0; i < ports.length;) {
      const pair = ports.slice(i, i + 2).join(' · ');
      if (i + 1 < ports.length && pair.length <= 19) { lines.push(pair); i += 2; } else { lines.push(ports[i]); i += 1; }
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

export class Topology {
  constructor(svg) {
    this.svg = svg;
    this.topology = null;
    this.boxes = new Map();
    this.edges = [];
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  }

  /** Lays out the nodes and edges of a new world. */
  setTopology(topology) {
    this.topology = topology;
    this.svg.replaceChildren();
    this.boxes.clear();
    const defs = el('defs');
    for (const p of ['smtp', 'dns', 'pop3', 'imap', 'sim']) {
      defs.append(el('marker', { id: `arrow-${p}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: `marker ${p}` }, [el('path', { d: 'M0 0 L10 5 L0 10 z' })]));
    }
    this.svg.append(defs);

    // Columns left to right follow a message; inside its column each
    // machine gets an equal share of a vertical band. DNS sits high, the
    // servers in the middle, the devices low, so the links between
    // neighbouring columns run diagonally and stay long enough to watch an
    // envelope travel along them.
    const headers = el('g', { class: 'column-titles' });
    this.svg.append(headers);
    for (const column of COLUMNS) {
      const nodes = topology.nodes.filter((n) => n.column === column);
      const [top, bottom] = band(column, nodes.length);
      const slot = (bottom - top) / Math.max(nodes.length, 1);
      let firstTop = null;
      nodes.forEach((node, j) => {
        const lines = nodeLines(node);
        const w = column === 'dns' ? 150 : BOX_W;
        const h = 62 + lines.length * 21;
        const y = top + slot * (j + 0.5);
        if (firstTop === null) firstTop = y - h / 2;
        this.boxes.set(node.name, { node, x: COLUMN_X[column], y, w, h, lines });
      });
      if (nodes.length && column !== 'dns') {
        // Titles of the outer columns align with the box edge so they stay on screen.
        const anchor = column === 'senders' ? 'start' : column === 'recipients' ? 'end' : 'middle';
        const x = anchor === 'start' ? COLUMN_X[column] - BOX_W / 2 : anchor === 'end' ? COLUMN_X[column] + BOX_W / 2 : COLUMN_X[column];
        const title = text(x, firstTop - 22, COLUMN_TITLES[column], `column-title ${anchor}`);
        headers.append(title);
      }
    }

    this.edgeLayer = el('g', { class: 'edges' });
    this.activeEdgeLayer = el('g', { class: 'edges-active' });
    this.nodeLayer = el('g', { class: 'nodes' });
    this.tokenLayer = el('g', { class: 'tokens' });
    this.svg.append(this.edgeLayer, this.nodeLayer, this.activeEdgeLayer, this.tokenLayer);

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
      g.append(el('circle', { class: 'icon-disc', cx: -2, cy: -2, r: 17 }));
      g.append(icon(node.role, -15, -13));
      g.append(text(w / 2, 27, node.name, node.name.length > 15 ? 'node-name long' : 'node-name'));
      g.append(text(w / 2, 51, node.address, 'node-address'));
      lines.forEach((line, k) => g.append(text(w / 2, 74 + k * 21, line, 'node-ports')));
      const badges = el('g', { class: 'badges', transform: `translate(${w / 2},${h + 4})` });
      g.append(badges);
      const down = el('g', { class: 'down-label', transform: `translate(${w - 8},-10)` }, [el('rect', { x: -58, y: 0, width: 62, height: 24, rx: 5 }), text(-27, 18, 'DOWN', '')]);
      g.append(down);
      box.g = g;
      box.badges = badges;
      const title = el('title');
      title.textContent = `${node.name} (${node.address})${node.domains ? `\nmailboxes of ${node.domains.join(', ')}` : ''}${node.backup_for ? `\nbackup MX for ${node.backup_for.join(', ')}` : ''}`;
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
    const states = nodeStates(this.topology, events);
    const current = events.length ? events[events.length - 1] : null;
    const hop = hopOf(current, this.topology);

    for (const box of this.boxes.values()) {
      const name = box.node.name;
      const state = states[name];
      // The class is rebuilt whole, so a view looks the same however it was reached.
      const classes = ['node', box.node.role];
      if (!state.up) classes.push('down');
      if (hop && hop.from === name && hop.to !== name) classes.push('active-from');
      if (hop && hop.to === name) classes.push('active-to');
      if (hop && hop.to === name && current && (current.kind === 'failure' || current.kind === 'connect_failed')) classes.push('failed');
      if (hop && (hop.from === name || hop.to === name)) classes.push(`proto-${hop.protocol}`);
      box.g.setAttribute('class', classes.join(' '));
      box.badges.replaceChildren();
      const badges = [];
      if (state.mailbox) badges.push([`mailbox ${state.mailbox}`, 'mailbox']);
      if (state.queued) badges.push([`queue ${state.queued}${state.deferred ? ' · deferred' : ''}`, state.deferred ? 'deferred' : 'queue']);
      let x = -(badges.length - 1) * 66;
      for (const [label, cls] of badges) {
        const wBadge = 8 + label.length * 9.2;
        box.badges.append(el('g', { class: `badge ${cls}`, transform: `translate(${x},0)` }, [el('rect', { x: -wBadge / 2, y: 0, width: wBadge, height: 26, rx: 13 }), text(0, 19, label, '')]));
        x += 132;
      }
    }

    // The link of the current hop, drawn on top; an ad-hoc one if the
    // topology has no such link (a bounce back, a lookup by a device).
    this.activeEdgeLayer.replaceChildren();
    for (const edge of this.edges) edge.line.setAttribute('class', edge.baseClass);
    this.tokenLayer.replaceChildren();
    this.svg.dataset.activeFrom = hop ? hop.from : '';
    this.svg.dataset.activeTo = hop ? hop.to : '';
    this.svg.dataset.seq = current ? current.seq : '';
    if (!hop || hop.from === hop.to) return;
    const edge = this.edges.find((e) => (e.from === hop.from && e.to === hop.to) || (e.from === hop.to && e.to === hop.from));
    if (edge) edge.line.setAttribute('class', `${edge.baseClass} active`);
    const p = this.point(hop.from, hop.to, 0), q = this.point(hop.from, hop.to, 1);
    this.activeEdgeLayer.append(el('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: `edge-highlight ${hop.protocol}`, 'marker-end': `url(#arrow-${hop.protocol})` }));
    const length = Math.hypot(q.x - p.x, q.y - p.y) || 1;
    if (edge) {
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
      const label = `${hop.protocol.toUpperCase()} ${edge.port}`;
      const wl = label.length * 10 + 14;
      const off = 22 + Math.abs(nx) * (wl / 2);
      this.activeEdgeLayer.append(el('g', { class: `edge-label ${hop.protocol}`, transform: `translate(${mid.x + nx * off},${mid.y + ny * off})` }, [el('rect', { x: -wl / 2, y: -15, width: wl, height: 26, rx: 6 }), text(0, 4, label, '')]));
    }
    if (!hop.travels) return;

    // The envelope rests a little before the receiver, clear of its box.
    const end = this.point(hop.from, hop.to, Math.max(0.5, Math.min(0.8, 1 - 60 / length)));
    const token = this.token(current, hop);
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

  /** The envelope (or DNS question/answer bubble) of an event. */
  token(event, hop) {
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
      g.append(el('g', { class: 'token-label', transform: 'translate(0,38)' }, [el('rect', { x: -wl / 2, y: -17, width: wl, height: 24, rx: 5 }), text(0, 1, label, '')]));
    }
    return g;
  }
}
