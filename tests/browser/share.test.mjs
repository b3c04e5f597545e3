// Students' own mail programs (--share), in a real browser:
// - `demo --share 127.A.B.200` (a second loopback address stands for the
//   teacher's classroom address; nothing leaves the machine) prints the
//   students' page; the teacher's page shows a Join button whose dialog
//   has the QR code, the CA link and every account's settings;
// - the QR code, drawn by the browser from the served SVG, decodes (jsQR,
//   a pure-JavaScript decoder) to the students' page: ADDR, no token;
// - that page, opened on ADDR, is read-only and shows the same dialog;
// - the bar with the extra button passes the layout and WCAG checks at a
//   phone, a projector and a laptop size, dialog open and closed.
//
// Run: cargo build && npm ci && node --test tests/browser/share.test.mjs
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import jsQR from 'jsqr';
import path from 'node:path';
import { ARTIFACTS, BIN, ROOT, SIZES, assertPageOk, freePort, launchBrowser } from './helpers.mjs';

const TEACHER = "Teacher's page (steers the world; keep this address to yourself): ";
const STUDENTS = "Students' page (read-only; also as a QR code on the page): ";

/** `demo --step --share 127.A.B.200` on 127.A.B.0/24; resolves with the printed URLs. */
async function startShared() {
  if (!existsSync(BIN)) throw new Error(`the mailflow binary is missing at ${BIN}: run \`cargo build\` first`);
  const a = 130 + Math.floor(Math.random() * 100);
  const b = Math.floor(Math.random() * 256);
  const share = `127.${a}.${b}.200`;
  const port = await freePort();
  const args = ['demo', '--step', '--quiet', '--share', share, '--web', `127.0.0.1:${port}`, '--subnet', `127.${a}.${b}.0/24`];
  const child = spawn(BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const printed = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mailflow did not print its web address within 15 s:\n${output}`)), 15000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes(TEACHER) && /\n$/.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    });
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`mailflow exited with ${code}:\n${output}`)); });
  });
  child.removeAllListeners('exit');
  const line = (prefix) => printed.split('\n').find((l) => l.startsWith(prefix)).slice(prefix.length).trim();
  return {
    share,
    printed,
    teacherUrl: line(TEACHER),
    studentUrl: line(STUDENTS),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('exit', () => resolve());
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}

/** Opens the Join dialog and waits until its QR code has loaded. */
async function openJoin(page) {
  await page.locator('#share').click();
  await page.locator('#share-dialog[open] img.share-qr').waitFor();
  await page.waitForFunction(() => {
    const img = document.querySelector('#share-dialog img.share-qr');
    return img && img.complete && img.naturalWidth > 0;
  });
}

/** The dialog's QR code, drawn on a canvas by the browser, decoded by jsQR. */
async function decodeQr(page) {
  const pixels = await page.evaluate(() => {
    const img = document.querySelector('#share-dialog img.share-qr');
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height);
    return { width: data.width, height: data.height, rgba: Array.from(data.data) };
  });
  const code = jsQR(Uint8ClampedArray.from(pixels.rgba), pixels.width, pixels.height);
  assert.ok(code, 'the QR code decodes');
  return code.data;
}

test('--share: the Join dialog, its QR code and the students\' read-only page', async () => {
  const mailflow = await startShared();
  const browser = await launchBrowser({ width: 1440, height: 900 });
  try {
    assert.match(mailflow.studentUrl, new RegExp(`^http://${mailflow.share.replaceAll('.', '\\.')}:\\d+/$`), mailflow.printed);
    assert.ok(!mailflow.studentUrl.includes('token'), 'the students\' page carries no token');

    const teacher = await browser.context.newPage();
    await teacher.goto(mailflow.teacherUrl);
    await teacher.locator('#share').waitFor();
    await openJoin(teacher);
    const dialog = teacher.locator('#share-dialog');
    assert.equal(await dialog.locator('.share-url a').textContent(), mailflow.studentUrl);
    assert.equal(await dialog.locator('a[download]').getAttribute('href'), `${mailflow.studentUrl}ca.pem`);
    const bob = dialog.locator('.share-table tbody tr', { hasText: 'bob@example.org' });
    const bobText = await bob.textContent();
    assert.match(bobText, new RegExp(`IMAP server ${mailflow.share}, port 20243, STARTTLS`));
    assert.match(bobText, new RegExp(`POP3 server ${mailflow.share}, port 20210, STARTTLS`));
    const alice = await dialog.locator('.share-table tbody tr', { hasText: 'alice@school.test' }).textContent();
    assert.match(alice, new RegExp(`SMTP server ${mailflow.share}, port 20187, STARTTLS`));
    assert.ok(!(await dialog.textContent()).match(/wonderland|builder/), 'no password on the page');
    assert.equal(await decodeQr(teacher), mailflow.studentUrl, 'the QR code opens the students\' page');
    // The CA the dialog links to is a certificate.
    const pem = await (await fetch(`${mailflow.studentUrl}ca.pem`)).text();
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);

    // Every size, with the extra button in the bar and with the dialog open.
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const size of SIZES) {
      await teacher.setViewportSize({ width: size.width, height: size.height });
      await teacher.keyboard.press('Escape');
      await assertPageOk(teacher, `with --share at ${size.name}`);
      await openJoin(teacher);
      await assertPageOk(teacher, `with the Join dialog open at ${size.name}`);
      const box = await teacher.locator('#share-dialog .share-qr').boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= size.width, `the QR code is on screen at ${size.name}`);
      await teacher.screenshot({ path: path.join(ARTIFACTS, `browser-share-${size.name}.png`) });
    }

    // The students' page: the same page on the shared address, read-only, with the same dialog.
    const student = await browser.context.newPage();
    await student.goto(mailflow.studentUrl);
    await student.locator('#share').waitFor();
    await student.waitForFunction(() => document.body.classList.contains('read-only'));
    assert.equal(await student.locator('#restart').isDisabled(), true, 'students cannot restart the teacher\'s world');
    await openJoin(student);
    assert.equal(await decodeQr(student), mailflow.studentUrl);
  } finally {
    await browser.close();
    await mailflow.stop();
  }
});
