// The authentication view (web/js/authentication.js) in a real browser:
// for a forwarded message the Message tab shows one card per checking
// server (mx1: SPF, DKIM, DMARC pass; mx.home.test: SPF fail, DKIM pass,
// DMARC pass), each check with the DNS records it used and the verdict,
// and the headers table shows Authentication-Results. A forgery refused
// with 550 5.7.1 is never stored, yet its checks are shown too. axe-core
// finds no WCAG A/AA violation at a phone, a projector and a laptop size.
// The laptop view is saved as artifacts/screenshot-authentication.png (and
// docs/ with MAILFLOW_DOCS_SCREENSHOTS=1).
//
// Run: cargo build && npm ci && node --test tests/browser/authentication.test.mjs
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, ROOT, SIZES, assertPageOk, launchBrowser, startMailflow } from './helpers.mjs';

async function settled(page) {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

/** Opens the page at `size`, shows the Message tab, waits for `cards` verdict cards. */
async function openMessageTab(browser, url, size, cards, errors) {
  const page = await browser.context.newPage();
  page.on('pageerror', (err) => errors.push(`${size.name}: ${err.message}`));
  await page.setViewportSize({ width: size.width, height: size.height });
  await page.goto(url);
  await page.waitForSelector('#topology g.node', { state: 'attached' });
  await page.click('[data-tab=message]');
  await page.waitForFunction((n) => document.querySelectorAll('#pane-message .auth-card .auth-verdict[data-verdict]').length >= n, cards, { timeout: 15000 });
  await settled(page);
  return page;
}

/** What the cards say: per host, each check's result and record names, and the verdict. */
function readCards(page) {
  return page.evaluate(() => [...document.querySelectorAll('#pane-message .auth-card')].map((card) => ({
    host: card.dataset.host,
    checks: Object.fromEntries([...card.querySelectorAll('.auth-check')].map((c) => [c.dataset.check, {
      result: c.dataset.result,
      records: [...c.querySelectorAll('.auth-dns code')].map((code) => code.textContent),
      text: c.textContent,
    }])),
    verdict: card.querySelector('.auth-verdict').dataset.verdict,
    verdictText: card.querySelector('.auth-verdict').textContent,
  })));
}

test('a forwarded message: two servers\' checks, their DNS records and verdicts; Authentication-Results in the headers', async () => {
  const server = await startMailflow(['serve', 'scenarios/auth-forwarding.json', '--fast', '--quiet']);
  const browser = await launchBrowser();
  const errors = [];
  try {
    for (const size of SIZES) {
      const page = await openMessageTab(browser, server.url, size, 2, errors);
      const cards = await readCards(page);
      assert.deepEqual(cards.map((c) => c.host), ['mx1.example.org', 'mx.home.test'], JSON.stringify(cards));
      const [mx1, home] = cards;
      assert.deepEqual([mx1.checks.spf.result, mx1.checks.dkim.result, mx1.checks.dmarc.result], ['pass', 'pass', 'pass']);
      assert.deepEqual([home.checks.spf.result, home.checks.dkim.result, home.checks.dmarc.result], ['fail', 'pass', 'pass']);
      assert.ok(home.checks.spf.records.includes('TXT school.test.'), `SPF used school.test's TXT: ${home.checks.spf.records}`);
      assert.ok(home.checks.dkim.records.includes('TXT mailflow._domainkey.school.test.'), `DKIM used the key: ${home.checks.dkim.records}`);
      assert.ok(home.checks.dmarc.records.includes('TXT _dmarc.school.test.'), `DMARC used the policy: ${home.checks.dmarc.records}`);
      assert.match(home.checks.spf.text, /is not among the addresses that 'mx' names for school\.test/);
      assert.match(home.checks.dkim.text, /v=DKIM1; k=ed25519; p=/, 'the key record itself is shown');
      assert.equal(home.verdict, 'none');
      assert.match(home.verdictText, /Delivered to the inbox/);
      const header = await page.evaluate(() => [...document.querySelectorAll('#pane-message .header-table tr.auth-header')].map((tr) => tr.textContent));
      assert.equal(header.length, 2, 'both Authentication-Results headers are in the table');
      assert.match(header[0], /Authentication-Results.*mx\.home\.test.*spf=fail.*dkim=pass.*dmarc=pass/s);
      await assertPageOk(page, `at ${size.width}x${size.height}, the authentication view of a forwarded message`);
      if (size.name === '1440') {
        mkdirSync(ARTIFACTS, { recursive: true });
        // The last hop's card: SPF fail, DKIM and DMARC pass, at the top of the pane.
        await page.evaluate(() => {
          const pane = document.getElementById('pane-message');
          const card = pane.querySelector('.auth-card[data-host="mx.home.test"]');
          pane.scrollTop += card.getBoundingClientRect().top - pane.getBoundingClientRect().top - 8;
        });
        await settled(page);
        const file = path.join(ARTIFACTS, 'screenshot-authentication.png');
        await page.screenshot({ path: file });
        if (process.env.MAILFLOW_DOCS_SCREENSHOTS) copyFileSync(file, path.join(ROOT, 'docs', 'screenshot-authentication.png'));
      }
      await page.close();
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('a forgery refused with 550 5.7.1 is shown with its checks, though no mailbox holds it', async () => {
  const server = await startMailflow(['serve', 'scenarios/auth-spoofed-principal.json', '--fast', '--quiet']);
  const browser = await launchBrowser();
  const errors = [];
  try {
    const size = SIZES[0];
    const page = await openMessageTab(browser, server.url, size, 1, errors);
    const refused = await page.evaluate(() => [...document.querySelectorAll('#pane-message .message-detail.refused .auth-card')].map((c) => c.dataset.host));
    assert.deepEqual(refused, ['mx.example.net']);
    const card = (await readCards(page)).find((c) => c.host === 'mx.example.net');
    assert.deepEqual([card.checks.spf.result, card.checks.dkim.result, card.checks.dmarc.result], ['fail', 'none', 'fail']);
    assert.equal(card.verdict, 'reject');
    assert.match(card.verdictText, /Refused \(550 5\.7\.1\)/);
    await assertPageOk(page, `at ${size.width}x${size.height}, a refused forgery`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.stop();
  }
});
