// Quizzes the class answers live (issue 13), in two real browsers: the
// teacher's page (opened with the control token from the terminal) and a
// student's page (no token), on a lesson with two quizzes in step mode.
// - both pages show the question; only the teacher's marks the answer,
//   and the student's page (its DOM, /api/scenario, /api/quiz) has no
//   trace of the answer or the explanation before the reveal;
// - the student's vote reaches the teacher's bar chart;
// - the teacher's reveal reaches both pages; the story goes on to the
//   second quiz, and the same again;
// - axe-core finds no WCAG A/AA violation on either page, open or revealed.
//
// Run: cargo build && npm ci && node --test tests/browser/
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAccessible, launchBrowser, startMailflow } from './helpers.mjs';

const TOKEN = 'quiz-teacher-7b';
const LESSON = 'scenarios/seed-client-to-mailbox.json';
const TEACHER = "Teacher's page (steers the world; keep this address to yourself): ";

async function openPage(browser, url, errors) {
  const page = browser.context.pages()[0] || await browser.context.newPage();
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(url);
  return page;
}

/** Waits until `page` shows quiz step `quiz` in `state` (open, revealed). */
function quizShown(page, quiz, state) {
  return page.waitForSelector(`#quiz[data-state="${state}"][data-quiz="${quiz}"]`, { timeout: 20000 });
}

/** The count shown beside `choice` on `page` (null when no bar). */
function countOf(page, choice) {
  return page.evaluate((choice) => {
    const el = document.querySelector(`#quiz .quiz-row[data-choice="${choice}"] .quiz-count`);
    return el ? Number(el.dataset.count) : null;
  }, choice);
}

/** What a student could learn the answer from, read from inside the page. */
function studentLeaks(page, answer, explanation) {
  return page.evaluate(async ([answer, explanation]) => {
    const leaks = [];
    if (document.querySelector('#quiz .quiz-answer-mark, #quiz .quiz-row.answer')) leaks.push('the card marks an answer');
    if (document.querySelector('#quiz .quiz-reveal')) leaks.push('the card offers the reveal button');
    if (document.body.innerText.includes(explanation)) leaks.push('the page shows the explanation');
    const scenario = await (await fetch('/api/scenario')).json();
    const text = JSON.stringify(scenario);
    if (text.includes(explanation)) leaks.push('/api/scenario has the explanation');
    if (scenario.scenario.steps.some((s) => s.quiz && 'answer' in s.quiz)) leaks.push('/api/scenario has the answers');
    if (scenario.scenario.teacher_notes) leaks.push('/api/scenario has the teacher notes');
    if (scenario.text) leaks.push('/api/scenario has the file text');
    const quiz = await (await fetch('/api/quiz')).json();
    if (quiz.quiz && ('answer' in quiz.quiz || 'explanation' in quiz.quiz || 'counts' in quiz.quiz)) leaks.push(`/api/quiz tells: ${JSON.stringify(quiz.quiz)}`);
    const events = await (await fetch('/api/events')).json();
    if (JSON.stringify(events).includes(explanation)) leaks.push('/api/events has the explanation');
    if (JSON.stringify(events).includes(`"answer is \\"${answer}`)) leaks.push('/api/events has the answer');
    return leaks;
  }, [answer, explanation]);
}

test('two quizzes in step mode: a student votes, the teacher watches and reveals', { timeout: 240000 }, async (t) => {
  const server = await startMailflow(['serve', LESSON, '--step', '--control-token', TOKEN]);
  t.after(() => server.stop());
  for (let i = 0; i < 50 && !server.output().includes(TEACHER); i++) await new Promise((r) => setTimeout(r, 100));
  const line = server.output().split('\n').find((l) => l.startsWith(TEACHER));
  assert.ok(line, `the banner prints the teacher's URL:\n${server.output()}`);
  const teacherUrl = line.slice(TEACHER.length).trim();
  const lesson = JSON.parse(await (await fetch(new URL('api/scenario?token=' + TOKEN, server.url))).text()).scenario;
  const quizzes = lesson.steps.map((s, i) => ({ ...s.quiz, step: i })).filter((q) => q.question);
  assert.equal(quizzes.length >= 2, true, 'the lesson has two quizzes');

  // Two browsers with their own profiles: the teacher's laptop and a student's phone.
  const teacherBrowser = await launchBrowser({ width: 1440, height: 900 });
  t.after(() => teacherBrowser.close());
  const studentBrowser = await launchBrowser({ width: 390, height: 844 });
  t.after(() => studentBrowser.close());
  const errors = [];
  const teacher = await openPage(teacherBrowser, teacherUrl, errors);
  const student = await openPage(studentBrowser, server.url, errors);

  const step = () => fetch(new URL('api/control', server.url), {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ action: 'step' }),
  });

  for (const [n, quiz] of quizzes.slice(0, 2).entries()) {
    const answer = quiz.choices.indexOf(quiz.answer);
    const wrong = (answer + 1) % quiz.choices.length;
    // Step the story on until the quiz is asked (the first one is asked at once).
    for (let i = 0; i < 200; i++) {
      const open = await student.evaluate((q) => document.querySelector(`#quiz[data-state="open"][data-quiz="${q}"]`) !== null, quiz.step);
      if (open) break;
      await step();
      await new Promise((r) => setTimeout(r, 100));
    }
    await quizShown(student, quiz.step, 'open');
    await quizShown(teacher, quiz.step, 'open');
    assert.equal(await student.textContent('#quiz .quiz-question'), quiz.question);
    assert.equal(await teacher.textContent('#quiz .quiz-question'), quiz.question);

    // Before the reveal the answer is the teacher's alone.
    assert.deepEqual(await studentLeaks(student, quiz.answer, quiz.explanation), [], `quiz ${n + 1}: nothing tells the student the answer`);
    await teacher.waitForSelector(`#quiz .quiz-row.answer[data-choice="${answer}"] .quiz-answer-mark`);
    await teacher.waitForSelector('#quiz .quiz-reveal');
    assert.equal(await teacher.$('#quiz button.quiz-choice'), null, 'the teacher with a token does not vote');

    // The student votes (first the right answer, then changes to a wrong
    // one: one browser, one vote); the teacher's chart shows it.
    await student.click(`#quiz .quiz-row[data-choice="${answer}"] button.quiz-choice`);
    await student.waitForSelector(`#quiz .quiz-row[data-choice="${answer}"] button[aria-pressed="true"]`);
    await student.click(`#quiz .quiz-row[data-choice="${wrong}"] button.quiz-choice`);
    await student.waitForSelector(`#quiz .quiz-row[data-choice="${wrong}"] button[aria-pressed="true"]`);
    await teacher.waitForSelector(`#quiz .quiz-row[data-choice="${wrong}"] .quiz-count[data-count="1"]`, { timeout: 10000 });
    assert.equal(await countOf(teacher, answer), 0, 'the changed vote moved, it was not counted twice');
    assert.equal(await countOf(student, wrong), null, 'the student sees no tally before the reveal');
    await assertAccessible(teacher, `quiz ${n + 1} open, teacher`);
    await assertAccessible(student, `quiz ${n + 1} open, student`);

    // The story waits for the reveal: a step moves nothing.
    const before = (await (await fetch(new URL('api/events', server.url))).json()).events.length;
    const stepped = await (await step()).json();
    assert.equal(stepped.stepped, false, 'no hop moves while the class answers');
    assert.equal((await (await fetch(new URL('api/events', server.url))).json()).events.length, before);

    // The teacher reveals; both pages show the answer and the counts.
    await teacher.click('#quiz .quiz-reveal');
    for (const page of [teacher, student]) {
      await quizShown(page, quiz.step, 'revealed');
      await page.waitForSelector(`#quiz .quiz-row.answer[data-choice="${answer}"] .quiz-answer-mark`);
      assert.ok((await page.textContent('#quiz .quiz-explanation')).includes(quiz.explanation));
      assert.equal(await countOf(page, wrong), 1);
      assert.equal(await countOf(page, answer), 0);
    }
    await assertAccessible(teacher, `quiz ${n + 1} revealed, teacher`);
    await assertAccessible(student, `quiz ${n + 1} revealed, student`);
  }

  // The trace tells the story of both quizzes, with the counts.
  const events = (await (await fetch(new URL('api/events', server.url))).json()).events;
  const asked = events.filter((e) => e.kind === 'quiz_asked');
  const revealed = events.filter((e) => e.kind === 'quiz_revealed');
  assert.deepEqual(asked.slice(0, 2).map((e) => e.quiz), quizzes.slice(0, 2).map((q) => q.step));
  assert.deepEqual(revealed.slice(0, 2).map((e) => e.votes), [1, 1]);
  for (const [i, e] of revealed.slice(0, 2).entries()) {
    const quiz = quizzes[i];
    assert.equal(e.answer, quiz.choices.indexOf(quiz.answer));
    assert.equal(e.counts.reduce((a, b) => a + b, 0), 1);
  }
  assert.deepEqual(errors, [], 'no script errors on either page');
});
