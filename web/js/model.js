// The story as data: pure functions from (topology, events 0..N) to what
// the page shows. Nothing here touches the DOM or the network, so the page
// can rewind by calling them with a smaller N, and node's test runner can
// check them directly.

/** Simulated milliseconds as hh:mm:ss (and .mmm if `ms` is asked). */
export function simTime(ms, withMillis = false) {
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  const base = `${pad(h)}:${pad(m)}:${pad(s)}`;
  return withMillis ? `${base}.${pad(ms % 1000, 3)}` : base;
}

/** Is this protocol line a refusal (SMTP 4xx/5xx, POP3 -ERR, IMAP NO/BAD)? */
export function isNegative(event) {
  if (event.kind !== 'line' || event.direction !== 'to_client') return false;
  const line = event.line || '';
  if (event.protocol === 'smtp') return /^[45]\d\d/.test(line);
  if (event.protocol === 'pop3') return line.startsWith('-ERR');
  if (event.protocol === 'imap') return /^\S+ (NO|BAD)\b/.test(line);
  return false;
}

/** Is this event a problem a student should see in red? */
export function isFailure(event) {
  return ['failure', 'connect_failed', 'dns_failed'].includes(event.kind)
    || (event.kind === 'queue' && (event.state === 'bounced' || event.state === 'dropped'))
    || (event.kind === 'dns_answer' && event.rcode !== 'No Error')
    || (event.kind === 'attack' && event.outcome === 'cracked')
    || isNegative(event);
}

/** Is this a delay (amber): deferred, greylisted, host down? */
export function isWarning(event) {
  return (event.kind === 'queue' && event.state === 'deferred') || (event.kind === 'host_state' && !event.up);
}

function nodeRole(topology, name) {
  const node = topology && topology.nodes.find((n) => n.name === name);
  return node ? node.role : null;
}

/**
 * The phase of a message's journey an event belongs to:
 * submit, lookup, queue, relay, deliver, retrieve, bounce, or null (the
 * story around it: steps, notes).
 */
export function phaseOf(event, topology) {
  if (event.protocol === 'sim' || event.kind === 'note') return null;
  if (event.protocol === 'dns') return 'lookup';
  if (event.protocol === 'pop3' || event.protocol === 'imap') return 'retrieve';
  if (event.kind === 'queue') {
    if (event.state === 'relayed') return 'relay';
    if (event.state === 'delivered') return 'deliver';
    if (event.state === 'bounced' || event.state === 'dropped') return 'bounce';
    return 'queue';
  }
  if (event.kind === 'delivered') return 'deliver';
  if (event.kind === 'host_state') return null;
  const clientSide = nodeRole(topology, event.from) === 'client' || nodeRole(topology, event.to) === 'client';
  return clientSide ? 'submit' : 'relay';
}

export const PHASE_NAMES = {
  submit: 'Submit', lookup: 'Look up', queue: 'Queue', relay: 'Relay', deliver: 'Deliver', retrieve: 'Retrieve', bounce: 'Bounce',
};

/** Is `name` a node of the picture? */
export function isNode(topology, name) {
  return !!topology && topology.nodes.some((n) => n.name === name);
}

/**
 * The hop an event shows: an envelope from one node to another, or one
 * node acting alone. `null` for events not on the picture.
 */
export function hopOf(event, topology) {
  if (!event) return null;
  const from = isNode(topology, event.from) ? event.from : null;
  const to = isNode(topology, event.to) ? event.to : null;
  if (from && to && from !== to) {
    // Connections "hang up" between both ends: no envelope travels.
    const travels = !['disconnect', 'connect_failed'].includes(event.kind);
    return { from, to, travels, protocol: event.protocol, dns: event.protocol === 'dns', kind: event.kind };
  }
  const alone = from || to;
  return alone ? { from: alone, to: alone, travels: false, protocol: event.protocol, dns: false, kind: event.kind } : null;
}

/**
 * The state of every node after `events`: up or down, messages in its
 * mailboxes, messages in its queue (and whether one is deferred).
 */
export function nodeStates(topology, events) {
  const states = {};
  for (const node of topology.nodes) {
    states[node.name] = { up: node.starts_up !== false, mailbox: 0, queue: new Map(), fetched: 0 };
  }
  for (const e of events) {
    if (e.kind === 'host_state' && states[e.host]) states[e.host].up = e.up;
    if (e.kind === 'delivered' && states[e.from]) states[e.from].mailbox += 1;
    // Fetched by POP3 (deleted at QUIT) or expunged over IMAP: gone from INBOX.
    if (e.kind === 'removed' && e.folder === 'INBOX' && states[e.from]) states[e.from].mailbox -= e.count;
    if (e.kind === 'queue' && states[e.from]) {
      const queue = states[e.from].queue;
      if (['relayed', 'delivered', 'bounced', 'dropped'].includes(e.state)) queue.delete(e.queue_id);
      else queue.set(e.queue_id, e.state);
    }
  }
  const out = {};
  for (const [name, s] of Object.entries(states)) {
    const states = [...s.queue.values()];
    out[name] = { up: s.up, mailbox: s.mailbox, queued: states.length, deferred: states.includes('deferred') };
  }
  return out;
}

/** The session to show in the transcript: the newest one at or before N. */
export function currentSession(events) {
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i].session != null) return events[i].session;
  }
  return null;
}

/** One transcript row per event of `session` among `events`. */
export function transcript(events, session) {
  const rows = [];
  for (const e of events) {
    if (e.session !== session) continue;
    // What an eavesdropper read is shown "On the wire" (wire.js), not as
    // what the endpoints said: the transcript keeps logins masked.
    if (e.kind === 'eavesdropped') continue;
    rows.push(transcriptRow(e));
  }
  return rows;
}

/** How one event reads in a transcript: a prefix (C:, S:, Q:, A:, ·) and text lines. */
export function transcriptRow(e) {
  let prefix = '·';
  let lines = [];
  switch (e.kind) {
    case 'line':
      prefix = e.direction === 'to_server' ? 'C:' : 'S:';
      lines = (e.line || '').split('\n');
      break;
    case 'data':
      prefix = e.direction === 'to_server' ? 'C:' : 'S:';
      lines = (e.preview || '').replace(/\n$/, '').split('\n').slice(0, 16);
      if (e.lines > lines.length) lines.push(`… (${e.lines} lines, ${e.bytes} bytes in all)`);
      lines.push('.');
      break;
    case 'dns_query':
      prefix = 'Q:';
      lines = [`${e.name} ${e.rtype}  (${e.transport})`];
      break;
    case 'dns_answer':
      prefix = 'A:';
      lines = e.records.length ? e.records : [`${e.rcode}: no records`];
      break;
    case 'dns_failed':
      prefix = 'A:';
      lines = [`no answer: ${e.reason}`];
      break;
    default:
      lines = [];
  }
  return {
    seq: e.seq, prefix, lines, summary: e.summary, explain: e.explain || null,
    protocol: e.protocol, failure: isFailure(e), warning: isWarning(e),
  };
}

/** A short title for a session: "SMTP alice-laptop → smtp.school.test". */
export function sessionTitle(events, session) {
  const first = events.find((e) => e.session === session);
  if (!first) return '';
  const proto = first.protocol.toUpperCase();
  if (first.protocol === 'dns') return `${proto} ${first.from} asks ${first.to}`;
  return `${proto} ${first.from} → ${first.to}`;
}

/**
 * The timeline: events grouped by message (in order of first appearance)
 * and, inside each, by phase. Each phase entry ("chip") is one SMTP/POP3/
 * IMAP session, one DNS question, or one queue change.
 */
export function timeline(topology, events) {
  const groups = new Map();
  const other = { id: null, label: 'Around the messages', chips: [] };
  // A connection may learn which message it carries only after its first
  // lines (a relay connects, then says MAIL FROM): the whole session
  // belongs to the message any of its events names.
  const sessionMessage = new Map();
  for (const e of events) {
    if (e.message && e.session != null && !sessionMessage.has(e.session)) sessionMessage.set(e.session, e.message);
  }
  for (const e of events) {
    const phase = phaseOf(e, topology);
    const message = e.message || (e.session != null ? sessionMessage.get(e.session) : null);
    const group = message ? groups.get(message.id) || newGroup(groups, message) : other;
    if (!phase) {
      if (group === other && ['step', 'note', 'host_state', 'dns_change', 'failure'].includes(e.kind)) {
        other.chips.push({ key: `e${e.seq}`, phase: e.kind === 'host_state' ? 'host' : 'story', first: e.seq, last: e.seq, session: null, title: e.summary, detail: '', status: isFailure(e) ? 'error' : isWarning(e) ? 'warn' : 'info' });
      }
      continue;
    }
    const key = e.kind === 'queue' || e.kind === 'delivered' ? `e${e.seq}` : e.session != null ? `s${e.session}` : `e${e.seq}`;
    let chip = group.chips.find((c) => c.key === key);
    if (!chip) {
      chip = { key, phase, first: e.seq, last: e.seq, session: e.session ?? null, title: '', detail: '', status: 'pending', from: e.from, to: e.to };
      group.chips.push(chip);
    }
    chip.last = e.seq;
    updateChip(chip, e);
  }
  const list = [...groups.values()];
  if (other.chips.length) list.push(other);
  return list;
}

function newGroup(groups, message) {
  const group = { id: message.id, label: message.label, chips: [] };
  groups.set(message.id, group);
  return group;
}

function updateChip(chip, e) {
  const failed = isFailure(e);
  if (failed) chip.status = 'error';
  switch (chip.phase) {
    case 'submit':
    case 'relay':
    case 'retrieve':
      if (e.kind === 'queue' && e.state === 'relayed') {
        chip.title = `${e.from} hands ${e.queue_id} on`;
        chip.status = 'ok';
        break;
      }
      // The client is who connects and sends commands.
      if (e.kind === 'connect' || ((e.kind === 'line' || e.kind === 'data') && e.direction === 'to_server')) { chip.from = e.from; chip.to = e.to; }
      else if ((e.kind === 'line' || e.kind === 'data') && e.direction === 'to_client') { chip.from = e.to; chip.to = e.from; }
      chip.title = `${chip.from} → ${chip.to}`;
      if (e.kind === 'connect_failed') chip.detail = e.reason;
      if (isNegative(e)) chip.detail = e.line;
      if (e.kind === 'disconnect' && chip.status === 'pending') chip.status = 'ok';
      break;
    case 'lookup':
      if (e.kind === 'dns_query') { chip.title = `${e.rtype} ${e.name.replace(/\.$/, '')}`; chip.detail = `asked by ${e.from}`; }
      if (e.kind === 'dns_answer') { chip.detail = e.summary.replace(/^DNS answers: /, ''); if (!failed) chip.status = 'ok'; }
      if (e.kind === 'dns_failed') chip.detail = e.reason;
      break;
    case 'queue':
      chip.title = `${e.state} at ${e.from}`;
      chip.detail = e.state === 'deferred' && e.retry_at_ms != null ? `retry at ${simTime(e.retry_at_ms)}` : e.queue_id;
      chip.status = e.state === 'deferred' ? 'warn' : 'info';
      break;
    case 'deliver':
      chip.title = e.kind === 'delivered' ? `into ${e.mailbox}'s mailbox` : `delivered at ${e.from}`;
      chip.detail = `on ${e.from}`;
      chip.status = 'ok';
      break;
    case 'bounce':
      chip.title = `${e.state} at ${e.from}`;
      chip.detail = e.summary;
      chip.status = 'error';
      break;
    default:
  }
}

/** DNS questions with their answers, in order: [{session, seq, from, name, rtype, answer}]. */
export function dnsExchanges(events) {
  const list = [];
  const bySession = new Map();
  for (const e of events) {
    if (e.kind === 'dns_query') {
      const item = { session: e.session, seq: e.seq, from: e.from, name: e.name.replace(/\.$/, ''), rtype: e.rtype, answer: null, message: e.message || null };
      list.push(item);
      if (e.session != null) bySession.set(e.session, item);
    } else if ((e.kind === 'dns_answer' || e.kind === 'dns_failed') && bySession.has(e.session)) {
      const item = bySession.get(e.session);
      item.answer = e.kind === 'dns_answer'
        ? { rcode: e.rcode, records: e.records, summary: e.summary, failed: isFailure(e) }
        : { rcode: 'no answer', records: [], summary: e.reason, failed: true };
    }
  }
  return list;
}

/** Zone records after `events`: the zones as served at start, changed by dns_change events. */
export function zonesAt(initialZones, events) {
  const zones = new Map(initialZones.map((z) => [z.domain, { domain: z.domain, records: z.records, changedAt: null }]));
  for (const e of events) {
    if (e.kind === 'dns_change') zones.set(e.domain, { domain: e.domain, records: e.records, changedAt: e.seq });
  }
  return [...zones.values()];
}

/** Whether a message (by id) was put in a mailbox among `events`, and the first such event. */
export function deliveredAt(events, id) {
  const e = events.find((x) => x.kind === 'delivered' && x.message && x.message.id === id);
  return e ? e.seq : null;
}
