// The authentication view: for one message, what each receiving server
// concluded about who really sent it (SPF, DKIM and DMARC), the DNS
// records each check used, and the verdict in plain words.
//
// Everything comes from the trace (events 0..N), so stepping back rewinds
// it too. A checking server tells its work in a fixed order for each
// message (src/mta/authentication.rs): for each check, its DNS questions
// and answers (dns_query / dns_answer between the server and "dns"), then
// one note "SPF: …", "DKIM: …" or "DMARC: …"; last, the decision note
// (takes / Junk / refuses). The questions before a check's note are that
// check's records.

import { h } from './panels.js';

const CHECKS = [
  { key: 'spf', name: 'SPF', what: 'May the sending server send for the envelope sender’s domain? (RFC 7208)' },
  { key: 'dkim', name: 'DKIM', what: 'Does the signature match the key in DNS and the message as it arrived? (RFC 6376)' },
  { key: 'dmarc', name: 'DMARC', what: 'Did SPF or DKIM pass for the domain in From:, and what does that domain ask for if not? (RFC 7489)' },
];

const DECISIONS = [
  { test: / refuses the message/, kind: 'reject', word: 'Refused (550 5.7.1)' },
  { test: / Junk folder/, kind: 'quarantine', word: 'Delivered into Junk' },
  { test: / takes the message/, kind: 'none', word: 'Delivered to the inbox' },
];

/**
 * The result word at the end of a check's sentence ("… → fail"). DMARC's
 * sentence ends in the disposition ("policy reject → reject"): the check
 * itself failed.
 */
function resultOf(text) {
  const m = text.match(/→ (\w+)/);
  const word = m ? m[1] : '?';
  return /^DMARC: /.test(text) && (word === 'reject' || word === 'quarantine') ? 'fail' : word;
}

/**
 * The verdicts given on message `id` up to the events shown, one per
 * checking server, in order: {host, seq, checks: {spf, dkim, dmarc}, decision}.
 * Each check: {sentences, result, lookups: [{name, rtype, rcode, records, summary}]}.
 */
export function verdicts(events, id) {
  const byHost = new Map();
  const out = [];
  const current = (host) => {
    if (!byHost.has(host)) {
      const v = { host, seq: null, pending: [], checks: { spf: null, dkim: null, dmarc: null }, decision: null };
      byHost.set(host, v);
      out.push(v);
    }
    return byHost.get(host);
  };
  for (const e of events) {
    if (!e.message || e.message.id !== id) continue;
    if (e.kind === 'dns_query' && isCheckQuestion(e)) {
      const v = current(e.from);
      v.pending.push({ seq: e.seq, question: e.summary, name: e.name, rtype: e.rtype, answer: null });
      continue;
    }
    if (e.kind === 'dns_answer' && e.from === 'dns' && byHost.has(e.to)) {
      const v = byHost.get(e.to);
      const open = v.pending.find((q) => !q.answer && q.name === e.name && q.rtype === e.rtype);
      if (open) open.answer = { rcode: e.rcode, records: e.records || [], summary: e.summary };
      continue;
    }
    if (e.kind !== 'note' || e.from !== e.to) continue;
    const m = e.summary.match(/^(SPF|DKIM|DMARC): /);
    if (m) {
      const v = current(e.from);
      if (v.decision) {
        // A second verdict by the same server (a retry): start over.
        byHost.delete(e.from);
        const again = current(e.from);
        again.pending = [];
        addCheck(again, m[1].toLowerCase(), e);
      } else {
        addCheck(v, m[1].toLowerCase(), e);
      }
      continue;
    }
    const v = byHost.get(e.from);
    if (!v || v.decision) continue;
    const decision = DECISIONS.find((d) => d.test.test(e.summary));
    if (decision) v.decision = { ...decision, seq: e.seq, summary: e.summary, explain: e.explain || '' };
  }
  return out.filter((v) => v.checks.spf || v.checks.dkim || v.checks.dmarc).map(({ pending, ...v }) => v);
}

/** A DNS question a receiving server asks while checking a sender. */
function isCheckQuestion(e) {
  return /asks DNS for .*(SPF policy|DKIM public key|DMARC policy|the address of|the mail servers \(MX\)|text records|the name of the client)/.test(e.summary);
}

function addCheck(v, key, e) {
  const lookups = v.pending.splice(0);
  const check = v.checks[key] || { sentences: [], results: [], lookups: [] };
  check.sentences.push(e.summary.replace(/^(SPF|DKIM|DMARC): /, ''));
  check.results.push(resultOf(e.summary));
  check.lookups.push(...lookups);
  check.result = check.results.includes('pass') ? 'pass' : check.results[0];
  if (v.seq == null) v.seq = e.seq;
  v.checks[key] = check;
}

/** The messages some server refused after its checks (never stored, so not in the mailboxes). */
export function refusedMessages(events) {
  const seen = new Map();
  for (const e of events) {
    if (e.kind === 'note' && e.message && / refuses the message: .*DMARC policy/.test(e.summary)) seen.set(e.message.id, e.message.label);
  }
  return [...seen].map(([id, label]) => ({ id, label }));
}

const MARK = { pass: '✔', fail: '✖', softfail: '✖', none: '–', neutral: '–', permerror: '⚠', temperror: '⚠' };

function resultBadge(result) {
  const cls = result === 'pass' ? 'pass' : (result === 'fail' || result === 'softfail') ? 'fail' : 'other';
  return h('span', { class: `auth-result ${cls}` }, h('span', { 'aria-hidden': 'true' }, `${MARK[result] || '?'} `), result);
}

function lookupList(lookups) {
  if (!lookups.length) return h('p', { class: 'muted auth-no-dns' }, 'No DNS question for this check.');
  return h('ul', { class: 'auth-dns' }, lookups.map((q) => h('li', {},
    h('code', {}, `${q.rtype} ${q.name}`),
    q.answer
      ? (q.answer.records.length
        ? h('pre', { class: 'records' }, q.answer.records.join('\n'))
        : h('span', { class: 'muted' }, ` — ${q.answer.summary.replace(/^DNS answers: /, '')}`))
      : h('span', { class: 'muted' }, ' — waiting for the answer…'))));
}

/** The cards of every verdict on message `id`, or null if none was given (yet). */
export function renderAuthentication(events, id, { onJump } = {}) {
  const list = verdicts(events, id);
  if (!list.length) return null;
  return h('section', { class: 'authentication', 'aria-label': 'Who sent this? The sender checks' },
    h('h4', {}, 'Who sent this? The sender checks'),
    list.map((v) => h('div', { class: 'auth-card', dataset: { host: v.host } },
      h('h5', {}, `At ${v.host} `, onJump && v.seq != null ? h('button', { class: 'link', onclick: () => onJump(v.seq + 1) }, `story #${v.seq}`) : null),
      h('ol', { class: 'auth-checks' }, CHECKS.map((c) => {
        const check = v.checks[c.key];
        return h('li', { class: 'auth-check', dataset: { check: c.key, result: check ? check.result : 'pending' } },
          h('div', { class: 'auth-check-head' }, h('b', {}, c.name), ' ', check ? resultBadge(check.result) : h('span', { class: 'muted' }, 'not yet')),
          h('div', { class: 'muted auth-what' }, c.what),
          check ? check.sentences.map((s) => h('p', { class: 'auth-sentence' }, s)) : null,
          check ? h('details', { class: 'auth-records', open: true }, h('summary', {}, `DNS records used (${check.lookups.length})`), lookupList(check.lookups)) : null);
      })),
      v.decision
        ? h('div', { class: `auth-verdict ${v.decision.kind}`, dataset: { verdict: v.decision.kind } },
          h('b', {}, `Verdict: ${v.decision.word}. `), v.decision.summary, v.decision.explain ? h('p', {}, v.decision.explain) : null)
        : h('div', { class: 'auth-verdict muted' }, 'Verdict: not given yet.'))));
}
