// Only the teacher steers (issue 15), in a real browser:
// - the page served beyond loopback (127.0.0.2 stands for the room's
//   network) with a generated token: the teacher's URL from the terminal
//   steers, the student's page cannot, not even with fetch() of its own;
// - a page of another site (another origin) posting "simple" requests to
//   a loopback page without a token changes nothing;
// - a DNS-rebinding page (Chromium told that evil.example is 127.0.0.1)
//   is same-origin to the browser, yet is refused by its Host.
//
// Run: cargo build && npm ci && node --test tests/browser/
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, CHROMIUM, CHROMIUM_ARGS, ROOT, randomSubnet } from './helpers.mjs';

const TEACHER = "Teacher's page (steers the world; keep this address to yourself): ";

/** Starts the binary with `args` (plus a random subnet); resolves when the
 *  web lines are printed, with the page's and the teacher's URLs. */
async function startMailflow(args) {
  if (!existsSync(BIN)) throw new Error(`the mailflow binary is missing at ${BIN}: run \`cargo build\` first`);
  const child = spawn(BIN, [...args, '--subnet', randomSubnet(), '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const printed = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mailflow did not print its web address within 15 s:\n${output}`)), 15000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      // The web lines end with an empty line.
      if (/Web page: \S+\n(.*\n)*?\n/.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`mailflow exited with ${code}:\n${output}`)); });
  });
  child.removeAllListeners('exit');
  const url = printed.match(/Web page: (\S+)/)[1];
  const teacher = printed.split('\n').find((line) => line.startsWith(TEACHER));
  return {
    url,
    printed,
    teacherUrl: teacher ? teacher.slice(TEACHER.length).trim() : null,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('exit', () => resolve());
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}

/** Chromium with an empty profile and `extra` flags. */
async function launch(extra = []) {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(path.join(tmpdir(), 'mailflow-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extra] });
  return { context, close: async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); } };
}

async function state(base) {
  const response = await fetch(new URL('api/state', base));
  return response.json();
}

async function composedCount(base) {
  const response = await fetch(new URL('api/events', base));
  const body = await response.json();
  return body.events.filter((e) => e.summary.includes('written on the web page')).length;
}

/** A POST from inside `page`, as its own script would send it. */
function postFrom(page, url, body, headers = { 'Content-Type': 'application/json' }) {
  return page.evaluate(async ([url, body, headers]) => {
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    let json = null;
    try { json = await response.json(); } catch { json = null; }
    return { status: response.status, body: json };
  }, [url, body, headers]);
}

test('beyond loopback: the generated teacher URL steers, the student page cannot', { timeout: 180000 }, async (t) => {
  const server = await startMailflow(['demo', '--step', '--web', '127.0.0.2:0']);
  t.after(() => server.stop());
  assert.match(server.url, /^http:\/\/127\.0\.0\.2:\d+\/$/);
  assert.ok(server.teacherUrl, `a teacher's URL is printed:\n${server.printed}`);
  const token = new URL(server.teacherUrl).searchParams.get('token');
  assert.match(token, /^[0-9a-f]{32}$/);
  assert.match(server.printed, /the class can open it, read-only; a control token was generated/);

  const browser = await launch();
  t.after(() => browser.close());
  const errors = [];

  const student = browser.context.pages()[0] || await browser.context.newPage();
  student.on('pageerror', (err) => errors.push(err.message));
  await student.goto(server.url);
  await student.waitForSelector('#topology g.node');
  await student.waitForFunction(() => Number(document.body.dataset.view) >= 2);
  assert.equal(await student.$eval('#readonly', (n) => n.hidden), false, 'the student sees the read-only banner');
  assert.ok(await student.$eval('#restart', (b) => b.disabled), 'restart is disabled for students');
  assert.ok(await student.$eval('#compose', (b) => b.disabled), 'writing is disabled for students');
  // The student's own scripts (the console) are refused by the server.
  for (const [endpoint, body] of [
    ['/api/control', { action: 'restart' }],
    ['/api/control', { action: 'play', speed: 0 }],
    ['/api/send', { client: 'alice-laptop', to: 'bob@example.org', subject: 'From a student', body: 'x' }],
    ['/api/scenario', { name: 'mx-change' }],
  ]) {
    const reply = await postFrom(student, endpoint, body);
    assert.equal(reply.status, 403, `${endpoint} ${JSON.stringify(reply)}`);
    assert.match(reply.body.error, /read-only/);
    const guessed = await postFrom(student, endpoint, body, { 'Content-Type': 'application/json', Authorization: 'Bearer 0123456789abcdef0123456789abcdef' });
    assert.equal(guessed.status, 403, 'a guessed token does not steer');
  }
  let now = await state(server.url);
  assert.equal(now.paused, true);
  assert.equal(now.generation, 1);
  assert.equal(await composedCount(server.url), 0);

  // The teacher's page, from the terminal's URL.
  const teacher = await browser.context.newPage();
  teacher.on('pageerror', (err) => errors.push(err.message));
  await teacher.goto(server.teacherUrl);
  await teacher.waitForSelector('#topology g.node');
  await teacher.waitForFunction(() => Number(document.body.dataset.view) >= 2);
  assert.equal(await teacher.$eval('#readonly', (n) => n.hidden), true, 'no read-only banner for the teacher');
  assert.ok(!teacher.url().includes(token), 'the token leaves the address bar (the projector shows it to the room)');
  await teacher.reload();
  await teacher.waitForSelector('#topology g.node');
  assert.equal(await teacher.$eval('#readonly', (n) => n.hidden), true, 'a reload keeps the teacher\'s controls');
  assert.equal(await teacher.$eval('#restart', (b) => b.disabled), false);
  const total = await teacher.evaluate(() => Number(document.body.dataset.total));
  for (let presses = 0; presses < 20; presses++) {
    await teacher.keyboard.press('ArrowRight');
    try {
      await teacher.waitForFunction((v) => Number(document.body.dataset.total) > v, total, { timeout: 3000 });
      break;
    } catch { /* the next hop had not reached the conductor yet */ }
  }
  // The step moved the shared story: the student's page follows.
  await student.waitForFunction((v) => Number(document.body.dataset.total) > v, total, { timeout: 15000 });

  // Play at full speed, then write a message from the teacher's page.
  await teacher.selectOption('#speed', '0');
  await teacher.keyboard.press(' ');
  await teacher.waitForFunction(() => window.mailflow.events.some((e) => e.kind === 'finished'), null, { timeout: 30000 });
  await teacher.click('#compose');
  await teacher.fill('#compose-dialog input[name=to]', 'bob@example.org');
  await teacher.fill('#compose-dialog input[name=subject]', 'Only the teacher writes');
  await teacher.fill('#compose-dialog textarea[name=body]', 'Hello room');
  await teacher.click('#compose-dialog button[value=send]');
  const delivered = () => window.mailflow.events.some((e) => e.kind === 'delivered' && e.message && e.message.label.includes('Only the teacher writes'));
  await teacher.waitForFunction(delivered, null, { timeout: 30000 });
  await student.waitForFunction(delivered, null, { timeout: 30000 });
  now = await state(server.url);
  assert.equal(now.paused, false);
  assert.equal(await composedCount(server.url), 1, 'exactly the teacher\'s message went out');
  assert.deepEqual(errors, [], 'no script errors');
});

test('a page of another site and a rebound DNS name cannot steer a loopback page', { timeout: 180000 }, async (t) => {
  // The teacher's machine as before: loopback, no token, open to its own page.
  const server = await startMailflow(['demo', '--step', '--web', '127.0.0.1:0']);
  t.after(() => server.stop());
  assert.equal(server.teacherUrl, null, 'no token on loopback');
  const port = new URL(server.url).port;

  // Another site: a page on another port posts the "simple" requests a
  // browser sends anywhere without asking (text/plain, a form).
  const target = server.url.replace(/\/$/, '');
  const evilPage = `<!doctype html><title>evil</title>
    <form id="f" method="POST" action="${target}/api/control" enctype="text/plain" target="sink"><input name='{"action":"restart","x":"' value='"}'></form>
    <iframe name="sink"></iframe>
    <script>
      fetch('${target}/api/send', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ client: 'alice-laptop', to: 'bob@example.org', subject: 'Sent by evil', body: 'x' }) });
      fetch('${target}/api/control', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{"action":"play","speed":0}' });
      document.getElementById('f').submit();
    </script>`;
  const evil = http.createServer((request, response) => {
    response.writeHead(200, { 'Content-Type': 'text/html' });
    response.end(evilPage);
  });
  await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { evil.close(resolve); evil.closeAllConnections(); }));

  // Chromium resolves evil.example to this computer: what a rebinding
  // attacker's DNS answer achieves.
  const browser = await launch(['--host-resolver-rules=MAP evil.example 127.0.0.1']);
  t.after(() => browser.close());
  const page = browser.context.pages()[0] || await browser.context.newPage();

  const statuses = [];
  page.on('response', (response) => {
    if (response.request().method() === 'POST') statuses.push([new URL(response.url()).pathname, response.status()]);
  });
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  const waitFor = async (predicate, what) => {
    for (let i = 0; i < 300 && !predicate(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(predicate(), `${what}: ${JSON.stringify(statuses)}`);
  };
  await waitFor(() => statuses.length >= 3, 'the three cross-site requests reached the server');
  assert.deepEqual(statuses.map(([, status]) => status), [403, 403, 403], 'each cross-site request was refused');
  let now = await state(server.url);
  assert.equal(now.generation, 1, 'no restart');
  assert.equal(now.paused, true, 'no play');
  assert.equal(await composedCount(server.url), 0, 'no message');

  // The rebinding page: the browser thinks it is on evil.example, so
  // posting JSON to its "own" server is same-origin — and lands on mailflow.
  await page.goto(`http://evil.example:${port}/`);
  await page.waitForSelector('#topology g.node');
  assert.equal(await page.$eval('#readonly', (n) => n.hidden), false, 'the rebound page is told it is read-only');
  const reply = await postFrom(page, '/api/control', { action: 'restart' });
  assert.equal(reply.status, 403, JSON.stringify(reply));
  assert.match(reply.body.error, /DNS rebinding/);
  now = await state(server.url);
  assert.equal(now.generation, 1, 'no restart');

  // The teacher's own page still steers.
  await page.goto(server.url);
  await page.waitForSelector('#topology g.node');
  assert.equal(await page.$eval('#readonly', (n) => n.hidden), true);
  const ok = await postFrom(page, '/api/control', { action: 'speed', speed: 2 });
  assert.equal(ok.status, 200, JSON.stringify(ok));
  assert.equal((await state(server.url)).speed, 2);
});
