// The page's pure model (web/js/model.js), checked without a browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  simTime, phaseOf, hopOf, nodeStates, timeline, transcript, currentSession, dnsExchanges, zonesAt, isFailure,
} from '../../web/js/model.js';

const topology = {
  nodes: [
    { name: 'dns', role: 'dns', starts_up: true },
    { name: 'smtp.school.test', role: 'host', starts_up: true },
    { name: 'mx1.example.org', role: 'host', starts_up: true },
    { name: 'alice-laptop', role: 'client', starts_up: true },
  ],
  edges: [],
};
const msg = { id: 'm1@school.test', label: '"Hi" (alice → bob)' };
let seq = 0;
const ev = (fields) => ({ seq: seq++, sim_ms: 0, wall_ms: 0, summary: fields.kind, ...fields });
seq = 0;
const events = [
  ev({ from: 'world', to: 'world', protocol: 'sim', kind: 'world_up' }),
  ev({ from: 'alice-laptop', to: 'smtp.school.test', protocol: 'smtp', kind: 'connect', session: 1, message: msg }),
  ev({ from: 'smtp.school.test', to: 'alice-laptop', protocol: 'smtp', kind: 'line', direction: 'to_client', line: '220 hi', session: 1, message: msg }),
  ev({ from: 'alice-laptop', to: 'smtp.school.test', protocol: 'smtp', kind: 'line', direction: 'to_server', line: 'EHLO alice', session: 1, message: msg }),
  ev({ from: 'smtp.school.test', to: 'smtp.school.test', protocol: 'smtp', kind: 'queue', queue_id: 'SMTP-1', state: 'queued', recipients: [], message: msg }),
  ev({ from: 'smtp.school.test', to: 'dns', protocol: 'dns', kind: 'dns_query', name: 'example.org.', rtype: 'MX', transport: 'UDP', session: 2, message: msg }),
  ev({ from: 'dns', to: 'smtp.school.test', protocol: 'dns', kind: 'dns_answer', name: 'example.org.', rtype: 'MX', rcode: 'No Error', records: ['example.org. 300 IN MX 10 mx1.example.org.'], session: 2, message: msg, summary: 'DNS answers: mx1' }),
  ev({ from: 'smtp.school.test', to: 'mx1.example.org', protocol: 'smtp', kind: 'connect_failed', reason: 'refused', message: msg }),
  ev({ from: 'smtp.school.test', to: 'smtp.school.test', protocol: 'smtp', kind: 'queue', queue_id: 'SMTP-1', state: 'deferred', recipients: [], retry_at_ms: 300000, message: msg }),
  ev({ from: 'mx1.example.org', to: 'mx1.example.org', protocol: 'sim', kind: 'host_state', host: 'mx1.example.org', up: false }),
  ev({ from: 'mx1.example.org', to: 'mx1.example.org', protocol: 'smtp', kind: 'delivered', mailbox: 'bob@example.org', bytes: 10, message: msg }),
];

test('simulated time', () => {
  assert.equal(simTime(0), '00:00:00');
  assert.equal(simTime(3723004, true), '01:02:03.004');
});

test('phases of a message', () => {
  assert.equal(phaseOf(events[1], topology), 'submit');
  assert.equal(phaseOf(events[4], topology), 'queue');
  assert.equal(phaseOf(events[5], topology), 'lookup');
  assert.equal(phaseOf(events[7], topology), 'relay');
  assert.equal(phaseOf(events[10], topology), 'deliver');
  assert.equal(phaseOf(events[0], topology), null);
});

test('hops: who sends to whom', () => {
  assert.deepEqual(hopOf(events[3], topology), { from: 'alice-laptop', to: 'smtp.school.test', travels: true, protocol: 'smtp', dns: false, kind: 'line' });
  assert.equal(hopOf(events[5], topology).dns, true);
  assert.equal(hopOf(events[7], topology).travels, false, 'a refused connection carries nothing');
  assert.equal(hopOf(events[4], topology).from, 'smtp.school.test');
  assert.equal(hopOf(events[0], topology), null);
});

test('node states replay from the start', () => {
  const at = (n) => nodeStates(topology, events.slice(0, n));
  assert.equal(at(4)['smtp.school.test'].queued, 0);
  assert.equal(at(5)['smtp.school.test'].queued, 1);
  assert.equal(at(9)['smtp.school.test'].deferred, true);
  assert.equal(at(9)['mx1.example.org'].up, true);
  assert.equal(at(10)['mx1.example.org'].up, false);
  assert.equal(at(11)['mx1.example.org'].mailbox, 1);
  // A POP3 download (deleted at QUIT) empties the mailbox again; other folders do not count.
  const removed = (folder, count) => ({ seq: 99, sim_ms: 0, wall_ms: 0, summary: 'removed', from: 'mx1.example.org', to: 'mx1.example.org', protocol: 'sim', kind: 'removed', mailbox: 'bob@example.org', folder, count });
  assert.equal(nodeStates(topology, [...events, removed('Archive', 1)])['mx1.example.org'].mailbox, 1);
  assert.equal(nodeStates(topology, [...events, removed('INBOX', 1)])['mx1.example.org'].mailbox, 0);
});

test('timeline groups by message and phase; deferrals and failures stand out', () => {
  const groups = timeline(topology, events);
  assert.equal(groups[0].id, msg.id);
  const phases = groups[0].chips.map((c) => `${c.phase}:${c.status}`);
  assert.deepEqual(phases, ['submit:pending', 'queue:info', 'lookup:ok', 'relay:error', 'queue:warn', 'deliver:ok']);
  assert.match(groups[0].chips[4].detail, /retry at 00:05:00/);
  assert.equal(groups.at(-1).chips[0].phase, 'host');
});

test('transcripts follow one session up to N', () => {
  assert.equal(currentSession(events.slice(0, 4)), 1);
  assert.deepEqual(transcript(events.slice(0, 4), 1).map((r) => `${r.prefix} ${r.lines[0] ?? r.summary}`), ['· connect', 'S: 220 hi', 'C: EHLO alice']);
  assert.equal(currentSession(events), 2);
});

test('DNS questions with answers, and zone changes', () => {
  const x = dnsExchanges(events);
  assert.equal(x.length, 1);
  assert.equal(x[0].name, 'example.org');
  assert.deepEqual(x[0].answer.records, ['example.org. 300 IN MX 10 mx1.example.org.']);
  const zones = zonesAt([{ domain: 'example.org', records: ['a'] }], [{ seq: 3, kind: 'dns_change', domain: 'example.org', records: ['b'] }]);
  assert.deepEqual(zones, [{ domain: 'example.org', records: ['b'], changedAt: 3 }]);
  assert.ok(isFailure({ kind: 'line', direction: 'to_client', protocol: 'smtp', line: '550 no' }));
  assert.ok(!isFailure({ kind: 'line', direction: 'to_server', protocol: 'smtp', line: '550 no' }));
});

test('a relay that names its message only after connecting is still grouped with it', () => {
  const m = { id: 'm2@x', label: 'm2' };
  const relay = [
    { seq: 0, from: 'smtp.school.test', to: 'mx1.example.org', protocol: 'smtp', kind: 'connect', session: 9, summary: 'connect' },
    { seq: 1, from: 'mx1.example.org', to: 'smtp.school.test', protocol: 'smtp', kind: 'line', direction: 'to_client', line: '220 hi', session: 9, summary: 'greets' },
    { seq: 2, from: 'smtp.school.test', to: 'mx1.example.org', protocol: 'smtp', kind: 'line', direction: 'to_server', line: 'MAIL FROM:<a@b>', session: 9, message: m, summary: 'mail' },
    { seq: 3, from: 'smtp.school.test', to: 'smtp.school.test', protocol: 'smtp', kind: 'note', message: m, summary: 'a note' },
  ];
  const groups = timeline(topology, relay);
  assert.equal(groups.length, 1, 'no stray "around the messages" group');
  assert.deepEqual(groups[0].chips.map((c) => [c.phase, c.title, c.first, c.last]), [['relay', 'smtp.school.test → mx1.example.org', 0, 2]]);
  assert.equal(phaseOf(relay[3], topology), null, 'notes narrate; they are not a phase');
});
