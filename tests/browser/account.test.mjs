// The account view (issue 12), in a real browser, on the "phished
// password" lesson (Carol: two-factor sign-in and two app passwords):
// the list shows no secrets; the password alone does not sign in; the code
// of Carol's simulated authenticator (ticking) does; an app password is
// made and shown once; revoking one removes it. Every state passes axe
// (WCAG 2.1 A/AA) and the layout check at a phone's and a projector's
// size; no secret reaches the story. A screenshot goes to artifacts/ (and
// to docs/screenshot-account.png with MAILFLOW_DOCS_SCREENSHOTS=1).
//
// Run: cargo build && npm ci && node --test tests/browser/
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, ROOT, assertPageOk, launchBrowser, startMailflow } from './helpers.mjs';

const PASSWORD = 'violet-harbor-lantern-1987';
const APP_PASSWORDS = ['qzxkmvnprtwbhcjd', 'lfgsyueodiakwnbv'];

async function settled(page) {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

test('the account view: sign in with a TOTP code, make and revoke app passwords', { timeout: 180000 }, async (t) => {
  const server = await startMailflow(['serve', 'scenarios/phished-password.json', '--step']);
  t.after(() => server.stop());
  const browser = await launchBrowser({ width: 1024, height: 768 });
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(server.url);
  await page.waitForSelector('#topology g.node', { state: 'attached' });

  // The list: both accounts, Carol with two-factor and her devices' names, no secrets.
  await page.click('#accounts');
  await page.waitForSelector('#account-dialog[open] table.accounts tbody tr');
  const rows = await page.$$eval('#account-dialog table.accounts tbody tr', (trs) => trs.map((tr) => tr.textContent));
  assert.equal(rows.length, 2, rows.join(' | '));
  const carolRow = rows.find((r) => r.includes('carol@example.org'));
  assert.ok(carolRow.includes('on') && carolRow.includes('carol-phone') && carolRow.includes('carol-laptop'), carolRow);
  const shown = async () => page.evaluate(() => document.body.innerText);
  for (const secret of [PASSWORD, ...APP_PASSWORDS]) assert.ok(!(await shown()).includes(secret), 'the page shows no secret');

  // Carol's authenticator shows a 6-digit code and a countdown.
  await page.selectOption('#account-dialog select[name=user]', 'carol@example.org');
  await page.waitForFunction(() => /^\d{3} \d{3}$/.test(document.querySelector('#account-dialog .totp-code').textContent));
  await page.waitForFunction(() => /\d+ s left/.test(document.querySelector('#account-dialog .totp-left').textContent));
  for (const size of [{ width: 390, height: 844 }, { width: 1024, height: 768 }]) {
    await page.setViewportSize(size);
    await settled(page);
    await assertPageOk(page, `at ${size.width}x${size.height}, account view with the authenticator`);
  }

  // The password alone is not enough for a two-factor account.
  await page.fill('#account-dialog input[name=password]', PASSWORD);
  await page.click('#account-dialog form.sign-in button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#account-dialog form.sign-in .result').textContent.includes('Not signed in'));
  assert.match(await page.textContent('#account-dialog form.sign-in .result'), /6-digit code/);
  await assertPageOk(page, 'after a sign-in without the code');

  // With the code the authenticator shows, Carol is in and sees her app passwords.
  const code = (await page.textContent('#account-dialog .totp-code')).replace(/\s/g, '');
  await page.fill('#account-dialog input[name=password]', PASSWORD);
  await page.fill('#account-dialog input[name=code]', code);
  await page.click('#account-dialog form.sign-in button[type=submit]');
  await page.waitForSelector('#account-dialog .signed-in:not([hidden])');
  assert.match(await page.textContent('#account-dialog .signed-in .who'), /Signed in as carol@example.org/);
  const devices = await page.$$eval('#account-dialog ul.app-passwords .device', (els) => els.map((e) => e.textContent));
  assert.deepEqual(devices, ['carol-phone', 'carol-laptop']);

  // A new app password for a tablet: 16 letters in groups of four, shown once.
  await page.fill('#account-dialog input[name=name]', 'carol-tablet');
  await page.click('#account-dialog form.new-app-password button[type=submit]');
  await page.waitForSelector('#account-dialog .app-password');
  await page.$eval('#account-dialog .shown-once', (el) => el.scrollIntoView({ block: 'end' }));
  const made = await page.textContent('#account-dialog .app-password');
  assert.match(made, /^[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}$/);
  await page.waitForFunction(() => [...document.querySelectorAll('#account-dialog ul.app-passwords .device')].some((e) => e.textContent === 'carol-tablet'));
  for (const size of [{ width: 390, height: 844 }, { width: 1024, height: 768 }]) {
    await page.setViewportSize(size);
    await settled(page);
    await assertPageOk(page, `at ${size.width}x${size.height}, signed in, a new app password shown`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'screenshot-account.png');
  await page.screenshot({ path: file });
  if (process.env.MAILFLOW_DOCS_SCREENSHOTS) copyFileSync(file, path.join(ROOT, 'docs', 'screenshot-account.png'));

  // Revoking the lost phone's app password removes it, here and in the list.
  await page.click('#account-dialog button[aria-label="Revoke carol-phone"]');
  await page.waitForFunction(() => document.querySelector('#account-dialog .shown-once').textContent.includes('Revoked carol-phone'));
  await page.waitForFunction(() => ![...document.querySelectorAll('#account-dialog ul.app-passwords .device')].some((e) => e.textContent === 'carol-phone'));
  const after = await page.$$eval('#account-dialog ul.app-passwords .device', (els) => els.map((e) => e.textContent));
  assert.deepEqual(after, ['carol-laptop', 'carol-tablet']);
  await assertPageOk(page, 'after revoking an app password');
  const listed = await (await fetch(new URL('/api/accounts', server.url))).json();
  const carol = listed.accounts.find((a) => a.address === 'carol@example.org');
  assert.deepEqual(carol.app_passwords, ['carol-laptop', 'carol-tablet']);

  // The story tells each change, and no secret: not the password, not an app password, not the code.
  const events = await (await fetch(new URL('/api/events?since=0', server.url))).json();
  const story = JSON.stringify(events);
  assert.ok(story.includes('carol@example.org makes an app password for \\"carol-tablet\\"'), 'the story tells the new app password');
  assert.ok(story.includes('carol@example.org revokes the app password \\"carol-phone\\"'), 'the story tells the revocation');
  for (const secret of [PASSWORD, ...APP_PASSWORDS, made.replace(/\s/g, ''), made]) assert.ok(!story.includes(secret), `the story shows a secret: ${secret}`);
  // Signing out brings the sign-in form back.
  await page.click('#account-dialog button.sign-out');
  await page.waitForSelector('#account-dialog form.sign-in:not([hidden])');
  assert.ok(await page.$eval('#account-dialog .signed-in', (el) => el.hidden));
  assert.deepEqual(errors, [], 'no script errors');
});
