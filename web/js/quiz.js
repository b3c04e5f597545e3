// The quiz card: a scenario's `quiz` step asks the class a question.
//
// What the card shows comes from the events the page has reached, like
// everything else: `quiz_asked` (question and choices, never the answer)
// opens it, `quiz_revealed` (the answer, the explanation, the counts)
// closes it. While a quiz is open at the live edge:
//   - a student's page votes (POST /api/quiz/vote) with an anonymous id
//     kept in this browser (localStorage), so each browser has one vote,
//     which it may change until the reveal;
//   - the teacher's page (the control token, or anyone on a page without
//     one) asks GET /api/quiz every second for the tally, draws it as
//     bars, marks the right answer for the teacher alone, and reveals it.
// The server never sends the answer to a student's page before the reveal.

import { getJson, postJson } from './api.js';
import { h, fill } from './panels.js';

const LETTERS = 'ABCDE';
const POLL_MS = 1000;

/** This browser's anonymous voter id (random, kept across reloads). */
function voterId() {
  const key = 'mailflow-voter';
  let id = null;
  try { id = localStorage.getItem(key); } catch { /* storage may be off */ }
  if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    try { localStorage.setItem(key, id); } catch { /* one vote for this tab, then */ }
  }
  return id;
}

/** The latest quiz among `events`: {asked, revealed} or null. */
export function latestQuiz(events) {
  let asked = null;
  let revealed = null;
  for (const e of events) {
    if (e.kind === 'quiz_asked') { asked = e; revealed = null; }
    else if (e.kind === 'quiz_revealed' && asked && e.quiz === asked.quiz) revealed = e;
  }
  return asked ? { asked, revealed } : null;
}

/** One bar of the chart. Its width is set through the CSSOM: the page's
 * Content-Security-Policy allows no inline style attributes. */
function bar(count, total) {
  const fillEl = h('span', { class: 'quiz-bar-fill', 'aria-hidden': 'true' });
  fillEl.style.width = `${Math.round((count / total) * 100)}%`;
  return h('div', { class: 'quiz-bar' }, fillEl, h('span', { class: 'quiz-count', dataset: { count: String(count) } }, `${count} ${count === 1 ? 'vote' : 'votes'}`));
}

export class QuizCard {
  /**
   * @param root   the card's element (a <section>, hidden when no quiz)
   * @param app    {teacher(): bool, voter(): bool, generation(): any, toast(msg)}
   */
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.voter = voterId();
    this.server = null; // the last GET /api/quiz answer for the open quiz
    this.mine = null; // this browser's choice on the open quiz
    this.dismissed = null; // "generation:quiz" of a revealed card the viewer closed
    this.timer = null;
    this.key = null; // what was drawn last, so the card is not rebuilt needlessly
  }

  /** Draws the card for the events shown; `atEdge`: the view is live. */
  render(events, atEdge) {
    const found = latestQuiz(events);
    const id = found ? `${this.app.generation()}:${found.asked.quiz}:${found.asked.seq}` : null;
    if (!found || (found.revealed && this.dismissed === id)) {
      this.stopPolling();
      this.root.hidden = true;
      this.root.dataset.state = 'none';
      this.key = null;
      return;
    }
    const open = !found.revealed;
    const live = open && atEdge;
    if (this.openId !== id) {
      this.openId = id;
      this.server = null;
      this.mine = null;
    }
    if (live) this.startPolling(found.asked.quiz);
    else this.stopPolling();
    const key = JSON.stringify([id, open, live, this.server, this.mine]);
    if (key === this.key) return;
    this.key = key;
    this.draw(found, id, live);
  }

  draw({ asked, revealed }, id, live) {
    const teacher = this.app.teacher();
    const server = this.server && this.server.quiz && this.server.quiz.quiz === asked.quiz ? this.server.quiz : null;
    const counts = revealed ? revealed.counts : server && server.counts;
    const votes = revealed ? revealed.votes : server ? server.votes : null;
    const answer = revealed ? revealed.answer : teacher && server ? server.answer : null;
    const total = Math.max(1, ...(counts || [0]));
    const state = revealed ? 'revealed' : live ? 'open' : 'rewound';
    this.root.dataset.state = state;
    this.root.dataset.quiz = String(asked.quiz);
    const number = (asked.summary.match(/^quiz (\d+)/) || [])[1] || '';
    const canVote = live && this.app.voter();
    const rows = asked.choices.map((choice, i) => {
      const isAnswer = answer === i;
      const count = counts ? counts[i] : null;
      const chosen = this.mine === i;
      const mark = isAnswer ? h('span', { class: 'quiz-answer-mark' }, revealed ? '✔ the answer' : '✔ the answer (only you see this)') : null;
      const label = [h('span', { class: 'quiz-letter', 'aria-hidden': 'true' }, LETTERS[i]), h('span', { class: 'quiz-choice-text' }, choice, mark)];
      const pick = canVote
        ? h('button', { class: 'quiz-choice', 'aria-pressed': String(chosen), onclick: () => this.vote(asked.quiz, i) }, ...label)
        : h('div', { class: `quiz-choice static${chosen ? ' chosen' : ''}` }, ...label);
      return h('li', { class: `quiz-row${isAnswer ? ' answer' : ''}`, dataset: { choice: String(i) } },
        pick,
        count !== null && count !== undefined
          ? bar(count, total)
          : null);
    });
    let status = null;
    if (revealed) status = h('p', { class: 'quiz-explanation' }, h('b', {}, 'Why: '), revealed.explanation || '');
    else if (!live) status = h('p', { class: 'muted' }, 'Rewound: this question is still open at the live edge (End).');
    else if (canVote) status = h('p', { class: 'quiz-status', role: 'status' }, this.mine === null ? 'Tap your answer. It is anonymous.' : `Your vote: ${LETTERS[this.mine]}. You can change it until the answer is revealed.`);
    else status = h('p', { class: 'quiz-status', role: 'status' }, 'The class is answering.');
    fill(this.root,
      h('div', { class: 'quiz-head' },
        h('h2', { id: 'quiz-title' }, `Quiz ${number}`),
        votes !== null && votes !== undefined ? h('span', { class: 'quiz-votes' }, `${votes} ${votes === 1 ? 'vote' : 'votes'}`) : null,
        revealed ? h('button', { class: 'quiz-hide', onclick: () => { this.dismissed = id; this.render([], false); } }, 'Hide') : null),
      h('p', { class: 'quiz-question' }, asked.question),
      h('ol', { class: 'quiz-choices' }, rows),
      status,
      live && teacher ? h('button', { class: 'quiz-reveal primary', onclick: () => this.reveal(asked.quiz) }, 'Reveal the answer') : null);
    const opening = this.root.hidden || this.shownId !== id;
    this.shownId = id;
    this.root.hidden = false;
    // On a phone the card sits below the picture: bring a new question
    // into view once (never again while the student reads or votes).
    if (opening && live && window.matchMedia('(max-width: 820px)').matches) this.root.scrollIntoView({ block: 'nearest' });
  }

  async vote(quiz, choice) {
    const reply = await postJson('/api/quiz/vote', { quiz, choice, voter: this.voter });
    if (!reply.ok) {
      this.app.toast(reply.body && reply.body.error ? reply.body.error : 'The vote did not reach the server.');
      return;
    }
    this.mine = choice;
    this.key = null;
    this.app.rerender();
  }

  async reveal(quiz) {
    const reply = await postJson('/api/quiz/reveal', { quiz });
    if (!reply.ok) this.app.toast(reply.body && reply.body.error ? reply.body.error : 'The reveal did not reach the server.');
  }

  startPolling(quiz) {
    if (this.timer && this.polled === quiz) return;
    this.stopPolling();
    this.polled = quiz;
    const poll = async () => {
      try {
        const reply = await getJson(`/api/quiz?voter=${encodeURIComponent(this.voter)}`);
        if (this.polled !== quiz) return;
        if (reply.quiz && reply.quiz.quiz === quiz) {
          this.server = reply;
          if (reply.quiz.mine !== undefined) this.mine = reply.quiz.mine;
          this.app.rerender();
        }
      } catch { /* the next poll tries again */ }
      if (this.polled === quiz) this.timer = setTimeout(poll, POLL_MS);
    };
    this.timer = setTimeout(poll, 0);
  }

  stopPolling() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.polled = null;
  }
}
