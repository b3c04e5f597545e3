// The page in a real browser: step the demo hop by hop until Bob's
// mailbox has the message, watching the transcript grow and the highlight
// move; step back and forward again; open the message inspector.
//
// Run: cargo build && npm ci && node --test tests/browser/
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, assertAccessible, launchBrowser, startMailflow } from './helpers.mjs';

/** What the page shows now, enough to compare two moments. */
function snapshot(page) {
  return page.evaluate(() => {
    const svg = document.getElementById('topology');
    const transcript = document.querySelector('#pane-transcript .transcript');
    return {
      view: Number(document.body.dataset.view),
      total: Number(document.body.dataset.total),
      delivered: document.body.dataset.delivered === 'true',
      from: svg.dataset.activeFrom,
      to: svg.dataset.activeTo,
      seq: svg.dataset.seq,
      svg: svg.innerHTML,
      caption: document.getElementById('caption').innerText,
      session: transcript ? transcript.dataset.session : null,
      rows: [...document.querySelectorAll('#pane-transcript .row')].map((r) => Number(r.dataset.seq)),
      transcriptText: transcript ? transcript.innerText : '',
      mode: document.getElementById('mode').textContent,
    };
  });
}

/** The parts of a snapshot that must not depend on how we got to a view. */
function content(s) {
  const { view, from, to, seq, svg, caption, session, rows, transcriptText } = s;
  return { view, from, to, seq, svg, caption, session, rows, transcriptText };
}

async function untilView(page, predicate, arg, timeout = 10000) {
  await page.waitForFunction(predicate, arg, { timeout });
}

test('stepping through the demo: transcript, highlight, step back, inspector', { timeout: 240000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const server = await startMailflow(['demo', '--step']);
  t.after(() => server.stop());
  const browser = await launchBrowser({ width: 1280, height: 720 });
  t.after(() => browser.close());
  const page = browser.context.pages()[0] || await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  const foreign = [];
  const origin = new URL(server.url).host;
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.host !== origin) foreign.push(request.url());
  });

  await page.goto(server.url);
  await page.waitForSelector('#topology g.node[data-name="alice-laptop"]');
  await page.click('[data-tab=transcript]');
  // The world is up and the first step announced before any hop waits.
  await untilView(page, () => Number(document.body.dataset.view) >= 2);

  const seen = [await snapshot(page)];
  const hops = new Set();
  let grew = 0;
  for (let presses = 0; presses < 200 && !seen.at(-1).delivered; presses++) {
    const before = seen.at(-1);
    await page.keyboard.press('ArrowRight');
    try {
      await untilView(page, (v) => Number(document.body.dataset.view) > v, before.view, 4000);
    } catch {
      continue; // the next hop had not reached the conductor yet: press again
    }
    const now = await snapshot(page);
    assert.equal(now.view, now.total, 'stepping at the live edge follows the story');
    assert.deepEqual(now.rows, [...now.rows].sort((a, b) => a - b), 'transcript rows are in event order');
    assert.ok(now.rows.every((seq) => seq < now.view), 'the transcript shows nothing from the future');
    if (now.session === before.session && now.rows.length > before.rows.length) {
      grew += 1;
      assert.deepEqual(now.rows.slice(0, before.rows.length), before.rows, 'the transcript grows at its end');
    }
    hops.add(`${now.from} → ${now.to}`);
    seen.push(now);
  }
  const last = seen.at(-1);
  assert.ok(last.delivered, `the message reached a mailbox within 200 steps (at view ${last.view})`);
  assert.equal(last.to, 'mx1.example.org', 'the delivering server is highlighted');
  assert.match(last.caption, /lands in bob@example.org's mailbox/);
  assert.ok(grew >= 5, `the transcript grew line by line (${grew} times)`);
  for (const hop of ['alice-laptop → smtp.school.test', 'smtp.school.test → alice-laptop', 'smtp.school.test → dns', 'dns → smtp.school.test', 'smtp.school.test → mx1.example.org']) {
    assert.ok(hops.has(hop), `the highlight moved along ${hop} (saw ${[...hops].join(', ')})`);
  }

  // Step back to a view seen on the way: the page must look as it did then.
  const earlier = seen.filter((s) => s.view < last.view).at(-1);
  for (let i = last.view; i > earlier.view; i--) await page.keyboard.press('ArrowLeft');
  await untilView(page, (v) => Number(document.body.dataset.view) === v, earlier.view);
  const back = await snapshot(page);
  assert.match(back.mode, /REWOUND/);
  assert.deepEqual(content(back), content(earlier), 'stepping back restores the earlier view');
  assert.equal(back.total, last.total, 'stepping back asks the server for nothing');
  // ...and forward again, inside what is known, without asking the server.
  for (let i = earlier.view; i < last.view; i++) await page.keyboard.press('ArrowRight');
  await untilView(page, (v) => Number(document.body.dataset.view) === v, last.view);
  const again = await snapshot(page);
  assert.deepEqual(content(again), content(last), 'stepping forward again shows the same view');
  assert.equal(again.mode, 'LIVE');

  // The inspector draws the Received chain as hops.
  await page.click('[data-tab=message]');
  await page.waitForSelector('.received-chain .hop-node.mailbox', { timeout: 10000 });
  const chain = await page.$$eval('.received-chain .hop-node b', (nodes) => nodes.map((n) => n.textContent));
  assert.deepEqual(chain, ['alice-laptop', 'smtp.school.test', 'mx1.example.org', 'bob@example.org']);
  const withs = await page.$$eval('.received-chain .hop-arrow', (nodes) => nodes.map((n) => n.textContent));
  // The device logs in over STARTTLS: S for TLS, A for AUTH (RFC 3848).
  assert.match(withs[0], /ESMTPSA/);
  assert.ok(await page.$eval('.header-table', (table) => /Message-ID/.test(table.innerText)));
  await page.screenshot({ path: path.join(ARTIFACTS, 'browser-step.png') });
  await assertAccessible(page, 'at 1280x720, the inspector after the delivery');

  // DNS panel: the MX question with its answer.
  await page.click('[data-tab=dns]');
  // The pane renders on the next frame; under load that can take a while.
  await page.waitForFunction(() => /MX example\.org/.test(document.querySelector('#pane-dns').innerText), null, { timeout: 15000 });
  const dns = await page.$eval('#pane-dns', (pane) => pane.innerText);
  assert.match(dns, /MX example\.org/);
  assert.match(dns, /mx1\.example\.org/);

  // A picture of the relay: rewind to the moment the message itself
  // travels from the school's server to example.org's MX.
  await page.click('[data-tab=timeline]');
  const relay = await page.evaluate(() => window.mailflow.events.find((e) => e.kind === 'data' && e.to === 'mx1.example.org').seq);
  for (let i = last.view; i > relay + 1; i--) await page.keyboard.press('ArrowLeft');
  await untilView(page, (v) => Number(document.body.dataset.view) === v, relay + 1);
  assert.match(await page.$eval('#caption', (c) => c.innerText), /sends the message itself/);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.screenshot({ path: path.join(ARTIFACTS, 'browser-relay.png') });
  if (process.env.MAILFLOW_SCREENSHOT) copyFileSync(path.join(ARTIFACTS, 'browser-relay.png'), process.env.MAILFLOW_SCREENSHOT);

  assert.deepEqual(errors, [], 'no script errors');
  assert.deepEqual(foreign, [], 'no request leaves the mailflow server');
});

test('read-only viewers cannot steer; the teacher can, and can write and restart', { timeout: 120000 }, async (t) => {
  const server = await startMailflow(['demo', '--step', '--control-token', 'teach']);
  t.after(() => server.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const errors = [];

  const student = browser.context.pages()[0] || await browser.context.newPage();
  student.on('pageerror', (err) => errors.push(err.message));
  await student.goto(server.url);
  await student.waitForSelector('#topology g.node');
  await untilView(student, () => Number(document.body.dataset.view) >= 2);
  assert.ok(await student.$eval('#restart', (b) => b.disabled), 'restart is disabled for students');
  assert.ok(await student.$eval('#compose', (b) => b.disabled), 'writing is disabled for students');
  await assertAccessible(student, 'at 1280x720, a read-only student page');
  const before = await snapshot(student);
  await student.keyboard.press('ArrowRight');
  await student.waitForSelector('#toast.show');
  assert.match(await student.$eval('#toast', (n) => n.textContent), /Read-only/);
  await student.waitForTimeout(700);
  assert.equal((await snapshot(student)).total, before.total, 'a student step moves nothing');

  const teacher = await browser.context.newPage();
  teacher.on('pageerror', (err) => errors.push(err.message));
  await teacher.goto(`${server.url}?token=teach`);
  await teacher.waitForSelector('#topology g.node');
  await untilView(teacher, () => Number(document.body.dataset.view) >= 2);
  const start = await snapshot(teacher);
  await teacher.keyboard.press('ArrowRight');
  await untilView(teacher, (v) => Number(document.body.dataset.total) > v, start.total);
  // Every tab sees the same session: the student's page follows.
  await untilView(student, (v) => Number(document.body.dataset.total) > v, start.total);

  // Play (space) runs the story to its end at full speed.
  await teacher.selectOption('#speed', '0');
  await teacher.keyboard.press(' ');
  await untilView(teacher, () => window.mailflow.events.some((e) => e.kind === 'finished'), null, 30000);

  // Write a message from the page.
  await teacher.click('#compose');
  await teacher.fill('#compose-dialog input[name=to]', 'bob@example.org');
  await teacher.fill('#compose-dialog input[name=subject]', 'Written in the browser');
  await teacher.fill('#compose-dialog textarea[name=body]', 'Hello from the projector');
  await teacher.click('#compose-dialog button[value=send]');
  await untilView(teacher, () => window.mailflow.events.some((e) => e.kind === 'delivered' && e.message && e.message.label.includes('Written in the browser')), null, 30000);
  await untilView(student, () => window.mailflow.events.some((e) => e.kind === 'delivered' && e.message && e.message.label.includes('Written in the browser')), null, 30000);

  // Restart: every page starts over with a new generation.
  const generation = await teacher.evaluate(() => window.mailflow.generation);
  await teacher.click('#restart');
  for (const page of [teacher, student]) {
    await untilView(page, (g) => window.mailflow.generation === g + 1, generation, 15000);
    await untilView(page, () => !window.mailflow.events.some((e) => e.message && e.message.label.includes('Written in the browser')));
  }
  assert.deepEqual(errors, [], 'no script errors');
});

test('a bad scenario file shows its line, column and field', { timeout: 120000 }, async (t) => {
  const server = await startMailflow(['demo', '--fast']);
  t.after(() => server.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = browser.context.pages()[0] || await browser.context.newPage();
  await page.goto(server.url);
  await page.waitForSelector('#topology g.node');
  await page.click('#scenarios');
  await page.waitForSelector('.scenario-pick');
  await page.setInputFiles('#scenario-dialog input[type=file]', { name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{\n  "title": 42,\n  "domains": {},\n  "hosts": {}\n}\n') });
  await page.waitForSelector('#scenario-dialog .problems li');
  const problem = await page.$eval('#scenario-dialog .problems li', (li) => li.innerText);
  assert.match(problem, /broken\.json:2:\d+/);
  assert.match(problem, /title/);
  // A good one from the list replaces the world.
  const generation = await page.evaluate(() => window.mailflow.generation);
  await page.click('.scenario-pick');
  await untilView(page, (g) => window.mailflow.generation === g + 1, generation, 15000);
});
