// TLS on the page (issue 10), with the lesson "What an eavesdropper reads":
// the timeline marks the TLS session with a lock and its handshake steps;
// the "On the wire" view beside the transcript shows, for the old laptop's
// plaintext hop, the raw lines and the password the eavesdropper decoded,
// and for the new laptop's TLS hop only TLS records, nothing readable; the
// picture puts a lock on an encrypted hop. axe-core stays clean.
//
// Run: cargo build && npm ci && node --test tests/browser/tls.test.mjs
// (cargo test runs it too, through tests/web_browser.rs.) With
// MAILFLOW_DOCS_SCREENSHOTS=1 it also refreshes docs/screenshot-tls.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, ROOT, SIZES, assertAccessible, assertPageOk, launchBrowser, startMailflow } from './helpers.mjs';

/** The timeline chip of the submission from `device` (a locator: the timeline redraws as events arrive). */
function chipOf(page, device) {
  return page.locator('#pane-timeline .chip.submit').filter({ hasText: `${device} →` }).first();
}

test('TLS on the page: lock, handshake steps, and what is on the wire', { timeout: 180000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const server = await startMailflow(['serve', 'scenarios/tls-eavesdropper.json', '--fast']);
  t.after(() => server.stop());
  const browser = await launchBrowser({ width: 1440, height: 900 });
  t.after(() => browser.close());
  const page = browser.context.pages()[0] || await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));

  await page.goto(server.url);
  // The fast story is over before the page loads: wait for its end.
  await page.waitForFunction(() => document.body.dataset.delivered === 'true' && document.querySelectorAll('#pane-timeline .chip.retrieve').length > 0
    && document.querySelector('#caption')?.innerText.includes('nothing is pending'), null, { timeout: 30000 });

  // The timeline: a lock and the handshake steps on the TLS submission, none on the plaintext one.
  const tlsChip = chipOf(page, 'alice-laptop');
  assert.equal(await tlsChip.locator('.tls-badge svg.lock-icon').count(), 1, 'the TLS submission has a lock');
  assert.match(await tlsChip.locator('.chip-handshake').textContent(), /TLS: hello → certificate → keys agreed → finished/);
  assert.match(await tlsChip.locator('.tls-badge').textContent(), /Encrypted: TLSv1\.3/);
  const oldChip = chipOf(page, 'alice-old-laptop');
  assert.equal(await oldChip.locator('.tls-badge').count(), 0, 'no lock on the plaintext submission');

  // The plaintext hop: the eavesdropper's raw lines and the decoded password.
  await oldChip.click();
  await page.waitForSelector('#pane-transcript .on-the-wire .captured mark');
  const plain = await page.$eval('#pane-transcript .on-the-wire', (n) => ({
    password: n.querySelector('.captured mark').textContent,
    captured: n.querySelector('.captured').textContent,
    summary: n.querySelector('.wire-summary').textContent,
    raw: [...n.querySelectorAll('.wire-raw')].map((p) => p.textContent).join('\n'),
    records: n.querySelectorAll('.record-table').length,
  }));
  assert.equal(plain.password, 'wonderland');
  assert.match(plain.captured, /alice@school\.test, sent with AUTH PLAIN/);
  assert.match(plain.summary, /^Plaintext: the eavesdropper/);
  assert.match(plain.raw, /AUTH PLAIN \S+/, 'the raw line as it crossed the link');
  assert.equal(plain.records, 0, 'no TLS on this hop');
  // The transcript itself keeps the login masked.
  const transcript = await page.$eval('#pane-transcript .transcript', (n) => n.textContent);
  assert.ok(!transcript.includes('wonderland'), 'the transcript never shows the password');
  await assertAccessible(page, 'with the password the eavesdropper read');

  // The TLS hop: only records, nothing readable after the handshake.
  // Back to the end of the story (the old hop's view knows nothing later), then pick the new laptop's hop.
  await page.click('#mode');
  await page.waitForFunction(() => document.body.dataset.view === document.body.dataset.total);
  await page.click('[data-tab=timeline]');
  await chipOf(page, 'alice-laptop').click();
  await page.waitForSelector('#pane-transcript .on-the-wire .record-table');
  const encrypted = await page.$eval('#pane-transcript .on-the-wire', (n) => ({
    text: n.textContent,
    summary: n.querySelector('.wire-summary').textContent,
    types: [...n.querySelectorAll('.record-table tbody td:first-child')].map((td) => td.textContent),
    hex: [...n.querySelectorAll('.record-table tbody code')].map((c) => c.textContent),
    captured: n.querySelectorAll('.captured').length,
    lock: Boolean(n.querySelector('h3 svg.lock-icon')),
  }));
  assert.match(encrypted.summary, /until the TLS handshake; after it, only TLS records/);
  assert.ok(encrypted.types.includes('handshake') && encrypted.types.includes('encrypted data'), encrypted.types.join(', '));
  assert.ok(encrypted.hex.some((x) => /^([0-9a-f]{2} ){15}[0-9a-f]{2}$/.test(x)), 'ciphertext shown as hex');
  assert.equal(encrypted.captured, 0);
  assert.ok(!encrypted.text.includes('wonderland') && !encrypted.text.includes('this one travelled encrypted'), 'nothing readable');
  assert.ok(encrypted.lock, 'the view says the hop is encrypted');

  // The picture: step back inside the session until an encrypted hop is shown: it carries a lock.
  for (let i = 0; i < 30; i++) {
    if (await page.$eval('#topology', (svg) => svg.dataset.encrypted === 'true')) break;
    await page.keyboard.press('ArrowLeft');
    await page.waitForTimeout(50);
  }
  assert.equal(await page.$eval('#topology', (svg) => svg.dataset.encrypted), 'true', 'an encrypted hop is shown');
  const label = await page.$eval('#topology .edge-label', (g) => ({ text: g.textContent, lock: Boolean(g.querySelector('.lock')) }));
  assert.match(label.text, /SMTP \d+ TLS/);
  assert.ok(label.lock, 'a lock on the encrypted hop');
  await page.click('[data-tab=transcript]');
  await page.waitForSelector('#pane-transcript .on-the-wire');
  await assertAccessible(page, 'with TLS records on the wire');

  // The picture with its lock, and the pane scrolled to what is on the wire.
  await page.$eval('#pane-transcript', (pane) => { pane.scrollTop = pane.querySelector('.on-the-wire').offsetTop - pane.offsetTop - 8; });
  const file = path.join(ARTIFACTS, 'screenshot-tls.png');
  await page.screenshot({ path: file });
  if (process.env.MAILFLOW_DOCS_SCREENSHOTS) copyFileSync(file, path.join(ROOT, 'docs', 'screenshot-tls.png'));

  // The same view at a phone, a projector and a laptop: axe and the layout check.
  for (const size of SIZES) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.waitForTimeout(200);
    await assertPageOk(page, `at ${size.name} px with an encrypted hop and TLS records on the wire`);
  }
  assert.deepEqual(errors, [], 'no script errors');
});
