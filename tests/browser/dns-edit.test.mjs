// Live DNS editing from the page (issue 13), in a real browser: with a
// control token, the teacher's page changes, adds and removes records in
// the DNS editor while the world runs, and `dig` against the fake DNS sees
// each change at once; the change appears in the DNS panel's zone (it is
// an event of the story). A student's page has no editor, and its own
// POST is refused.
//
// Run: cargo build && npm ci && node --test tests/browser/dns-edit.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { assertAccessible, launchBrowser, startMailflow } from './helpers.mjs';

const TOKEN = 'teacher-dns-token';

/** `dig +short` against the world's DNS, sorted lines. */
function dig(dns, type, name) {
  const out = execFileSync('dig', ['+time=3', '+tries=2', `@${dns.ip}`, '-p', dns.port, '+short', type, name]).toString();
  return out.split('\n').map((l) => l.trim()).filter(Boolean).sort();
}

test('the teacher edits DNS records from the page and dig sees each change', async () => {
  const mailflow = await startMailflow(['serve', 'scenarios/alice-writes-to-bob.json', '--fast', '--quiet', '--control-token', TOKEN]);
  const found = mailflow.output().match(/dig @(\S+) -p (\d+)/);
  assert.ok(found, `the banner names the DNS server:\n${mailflow.output()}`);
  const dns = { ip: found[1], port: found[2] };
  const { context, close } = await launchBrowser({ width: 1440, height: 900 });
  try {
    assert.deepEqual(dig(dns, 'MX', 'example.org'), ['10 mx1.example.org.', '20 mx2.example.org.']);

    // A student's page: no editor, and a POST of its own is refused.
    const student = await context.newPage();
    await student.goto(mailflow.url);
    await student.click('#tab-dns');
    await student.locator('#pane-dns .zone').first().waitFor();
    assert.equal(await student.locator('#dns-edit').count(), 0, 'no editor on a student page');
    const refused = await student.evaluate(async () => (await fetch('/api/dns', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ domain: 'example.org', action: 'add', record: { type: 'TXT', text: 'student' } }),
    })).status);
    assert.equal(refused, 403);

    // The teacher's page.
    const page = await context.newPage();
    await page.goto(`${mailflow.url}?token=${TOKEN}`);
    await page.click('#tab-dns');
    await page.click('#dns-edit');
    const dialog = page.locator('#dns-edit-dialog');
    await dialog.waitFor();
    const record = (text) => dialog.locator('.dns-edit-records li', { hasText: text });
    await record('MX 20 mx2.example.org.').waitFor();
    await assertAccessible(page, 'with the DNS editor open');

    // Change: mx2 becomes the first choice.
    await record('MX 20 mx2.example.org.').locator('.dns-edit-change').click();
    await dialog.locator('[name=preference]').fill('5');
    await dialog.locator('.dns-edit-submit').click();
    await record('MX 5 mx2.example.org.').waitFor();
    assert.deepEqual(dig(dns, 'MX', 'example.org'), ['10 mx1.example.org.', '5 mx2.example.org.']);

    // Add a TXT record, then remove it again.
    await dialog.locator('[name=type]').selectOption('TXT');
    await dialog.locator('[name=domain]').selectOption('example.org');
    await dialog.locator('[name=name]').fill('lesson');
    await dialog.locator('[name=value]').fill('edited live');
    await dialog.locator('.dns-edit-submit').click();
    await record('lesson.example.org.').waitFor();
    assert.deepEqual(dig(dns, 'TXT', 'lesson.example.org'), ['"edited live"']);
    await record('lesson.example.org.').locator('.dns-edit-remove').click();
    await record('lesson.example.org.').waitFor({ state: 'detached' });
    assert.deepEqual(dig(dns, 'TXT', 'lesson.example.org'), []);

    // A record that would point off this machine is refused, with the reason.
    await dialog.locator('[name=type]').selectOption('A');
    await dialog.locator('[name=name]').fill('evil');
    await dialog.locator('[name=value]').fill('8.8.8.8');
    await dialog.locator('.dns-edit-submit').click();
    await dialog.locator('.result.failure', { hasText: 'loopback' }).waitFor();
    assert.deepEqual(dig(dns, 'A', 'evil.example.org'), []);

    // Each change is an event: the DNS panel's zone shows it.
    await dialog.getByRole('button', { name: 'Close' }).click();
    const zone = page.locator('#pane-dns .zone', { hasText: 'example.org' }).first();
    await zone.locator('.changed').waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('#pane-dns .zone pre')].some((p) => p.textContent.includes('MX 5 mx2.example.org.')));
    // The student sees the change too, in the same story.
    await student.waitForFunction(() => [...document.querySelectorAll('#pane-dns .zone pre')].some((p) => p.textContent.includes('MX 5 mx2.example.org.')));
  } finally {
    await close();
    await mailflow.stop();
  }
});
