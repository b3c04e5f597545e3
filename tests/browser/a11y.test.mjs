// The page for every student, at every size it supports: a phone
// (390×844), a projector (1024×768) and a laptop (1440×900), each checked
// in every state a lesson goes through (waiting, stepping, playing, paused,
// rewound, each tab, both dialogs, a bounce, a DNS failure, a delay, a host
// down) by axe-core against WCAG 2.1 A and AA, and by a layout check: no
// control, counter or LIVE/REWOUND state off screen, no tab cut, nothing in
// the picture overlapping. Screenshots of each size go to artifacts/ (and
// to docs/ with MAILFLOW_DOCS_SCREENSHOTS=1).
//
// Run: cargo build && npm ci && node --test tests/browser/
// (cargo test runs it too, through tests/web_browser.rs.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, ROOT, SIZES, assertPageOk, launchBrowser, startMailflow } from './helpers.mjs';

const TABS = ['timeline', 'transcript', 'message', 'dns'];

async function untilView(page, predicate, arg, timeout = 10000) {
  await page.waitForFunction(predicate, arg, { timeout });
}

/** Waits until the page has drawn what it knows (a render is one frame away). */
async function settled(page) {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

/** Gives the keys to the page itself (not to a select or a button that keeps them). */
async function unfocus(page) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur && document.activeElement.blur());
}

/** One page per size, all on the same world. */
async function openPages(browser, url, errors) {
  const pages = [];
  for (const size of SIZES) {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => errors.push(`${size.name}: ${err.message}`));
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.goto(url);
    await page.waitForSelector('#topology g.node', { state: 'attached' });
    pages.push({ size, page });
  }
  return pages;
}

async function checkAll(pages, state) {
  for (const { size, page } of pages) {
    await settled(page);
    await assertPageOk(page, `at ${size.width}x${size.height}, ${state}`);
  }
}

async function showTab(page, tab) {
  await page.click(`[data-tab=${tab}]`);
  await page.waitForFunction((t) => !document.getElementById(`pane-${t}`).hidden, tab);
  await settled(page);
}

/** Every tab of every page; the Message tab waits for the inspector when a message was delivered. */
async function checkTabs(pages, state) {
  for (const { size, page } of pages) {
    for (const tab of TABS) {
      await showTab(page, tab);
      if (tab === 'message' && await page.evaluate(() => document.body.dataset.delivered === 'true')) {
        await page.waitForSelector('#pane-message .message-detail', { timeout: 10000 });
      }
      await assertPageOk(page, `at ${size.width}x${size.height}, ${state}, ${tab} tab`);
    }
    await showTab(page, 'timeline');
  }
}

/** Moves one page's view (back, or forward inside what it knows) to the first event for which `predicate(event)` holds. */
async function rewindTo(page, predicate) {
  const events = await page.evaluate(() => window.mailflow.events);
  const target = events.findIndex(predicate);
  assert.ok(target >= 0, `the story has an event matching ${predicate}`);
  const view = await page.evaluate(() => window.mailflow.view);
  await unfocus(page);
  for (let i = view; i > target + 1; i--) await page.keyboard.press('ArrowLeft');
  for (let i = view; i < target + 1; i++) await page.keyboard.press('ArrowRight'); // inside what is known: asks the server nothing
  try {
    await untilView(page, (v) => Number(document.body.dataset.view) === v, target + 1);
  } catch (err) {
    throw new Error(`rewinding from ${view} to ${target + 1}: the page shows ${await page.evaluate(() => document.body.dataset.view)}, focus on ${await page.evaluate(() => document.activeElement && document.activeElement.outerHTML.slice(0, 80))}: ${err.message}`);
  }
  await settled(page);
  return events[target].seq;
}

test('the demo at three sizes: every state passes axe (WCAG 2.1 A/AA) and the layout check', { timeout: 480000 }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const server = await startMailflow(['demo', '--step']);
  t.after(() => server.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const errors = [];
  const pages = await openPages(browser, server.url, errors);
  const [phone] = pages.map((p) => p.page);
  const teacher = pages.at(-1).page;
  for (const { page } of pages) await untilView(page, () => Number(document.body.dataset.view) >= 2);
  await checkAll(pages, 'waiting for the first hop');

  // The phone shows the picture first, scaled to its width; then the
  // caption; then the panels as tabs.
  const order = await phone.evaluate(() => {
    const top = (id) => document.getElementById(id).getBoundingClientRect().top;
    const svg = document.getElementById('topology').getBoundingClientRect();
    return { svg: top('topology'), caption: top('caption'), tabs: document.querySelector('[role=tablist]').getBoundingClientRect().top, width: svg.width, viewport: innerWidth, layout: document.getElementById('topology').dataset.layout };
  });
  assert.ok(order.svg < order.caption && order.caption < order.tabs, `on a phone: picture, caption, then tabs (${JSON.stringify(order)})`);
  assert.ok(order.width >= order.viewport * 0.9, `on a phone the picture fills the width (${order.width} of ${order.viewport})`);
  assert.equal(order.layout, 'rows', 'on a phone the lanes of the picture are rows');
  assert.equal(await teacher.$eval('#topology', (svg) => svg.dataset.layout), 'columns');

  // The caption is a polite live region that changes once per hop (a
  // screen reader reads it out on each change), and not when the page
  // redraws for anything else (here: switching tabs; the same guard
  // covers the server's status frames).
  assert.equal(await teacher.$eval('#caption-live', (c) => c.getAttribute('aria-live')), 'polite');
  await teacher.evaluate(() => {
    window.captionChanges = 0;
    new MutationObserver(() => { window.captionChanges += 1; }).observe(document.getElementById('caption-live'), { childList: true });
  });
  const before = await teacher.evaluate(() => Number(document.body.dataset.view));
  await unfocus(teacher);
  await teacher.keyboard.press('ArrowLeft');
  await untilView(teacher, (v) => Number(document.body.dataset.view) === v - 1, before);
  await settled(teacher);
  await showTab(teacher, 'transcript');
  await showTab(teacher, 'timeline');
  await teacher.waitForTimeout(300);
  await settled(teacher);
  assert.equal(await teacher.evaluate(() => window.captionChanges), 1, 'one step back, one change of the live caption; redraws for the tabs change nothing');
  await unfocus(teacher);
  await teacher.keyboard.press('End');
  await untilView(teacher, (v) => Number(document.body.dataset.view) === v, before);

  // The picture in words: each machine with its role and address, and the hop.
  const words = await teacher.$$eval('#topology-list li', (items) => items.map((li) => li.textContent));
  assert.ok(words.some((w) => /^smtp\.school\.test: mail server among the Outgoing servers; address 127\./.test(w)), words.join('\n'));
  assert.ok(words.some((w) => /^alice-laptop: device .*used by alice@school\.test/.test(w)), words.join('\n'));

  // Step hop by hop until Bob's mailbox has the message, checking the pages
  // at the first DNS hop on the way.
  let checkedDns = false;
  for (let presses = 0; presses < 200; presses++) {
    const state = await teacher.evaluate(() => ({ view: Number(document.body.dataset.view), delivered: document.body.dataset.delivered === 'true' }));
    if (state.delivered) break;
    await teacher.keyboard.press('ArrowRight');
    try {
      await untilView(teacher, (v) => Number(document.body.dataset.view) > v, state.view, 4000);
    } catch {
      continue;
    }
    if (!checkedDns && await teacher.$eval('#topology', (svg) => svg.dataset.activeTo === 'dns')) {
      for (const { page } of pages) await untilView(page, (v) => Number(document.body.dataset.view) >= v, state.view + 1);
      await checkAll(pages, 'stepping, a DNS question on its way');
      const now = await teacher.$$eval('#topology-list li', (items) => items.map((li) => li.textContent));
      assert.ok(now.some((w) => /^dns: .*now receives DNS from /.test(w)), `the list says what the current hop does:\n${now.join('\n')}`);
      checkedDns = true;
    }
  }
  assert.ok(checkedDns, 'a DNS hop was seen and checked');
  assert.ok(await teacher.evaluate(() => document.body.dataset.delivered === 'true'), 'the message was delivered');
  const total = await teacher.evaluate(() => window.mailflow.events.length);
  for (const { page } of pages) await untilView(page, (n) => window.mailflow.events.length >= n, total);
  await checkTabs(pages, 'stepping, the message delivered');

  // Keyboard: a timeline chip is a button that Enter activates; the
  // scrolling panes take the focus.
  await teacher.focus('#pane-timeline .chip');
  await teacher.keyboard.press('Enter');
  await teacher.waitForFunction(() => !document.getElementById('pane-transcript').hidden);
  assert.equal(await teacher.$eval('#pane-transcript', (p) => p.tabIndex), 0, 'the transcript pane is reachable by keyboard');
  await showTab(teacher, 'timeline');

  // Playing (at classroom speed, so the check sees it move), then paused.
  await unfocus(teacher);
  await teacher.keyboard.press(' ');
  await teacher.waitForFunction(() => document.querySelector('#play .label').textContent.includes('Pause'));
  await checkAll(pages, 'playing');
  await teacher.keyboard.press(' ');
  await teacher.waitForFunction(() => document.querySelector('#play .label').textContent.includes('Play'));
  await checkAll(pages, 'paused');

  // Rewound: every page steps back on its own and shows REWOUND.
  for (const { page } of pages) {
    await unfocus(page);
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowLeft');
    await page.waitForFunction(() => document.getElementById('mode').textContent === 'REWOUND');
  }
  await checkAll(pages, 'rewound');

  // Both dialogs.
  for (const { size, page } of pages) {
    await page.click('#scenarios');
    await page.waitForSelector('#scenario-dialog .scenario-pick');
    await assertPageOk(page, `at ${size.width}x${size.height}, the scenario dialog open`);
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.getElementById('scenario-dialog').open);
    await page.click('#compose');
    await page.waitForSelector('#compose-dialog[open]');
    await assertPageOk(page, `at ${size.width}x${size.height}, the compose dialog open`);
    await page.click('#compose-dialog button[value=cancel]');
    await page.waitForFunction(() => !document.getElementById('compose-dialog').open);
  }

  // Pictures for the docs: the relay, the message itself travelling from
  // the school's server to example.org's MX, at each size.
  for (const { size, page } of pages) {
    await rewindTo(page, (e) => e.kind === 'data' && e.to === 'mx1.example.org');
    await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
    await settled(page);
    await assertPageOk(page, `at ${size.width}x${size.height}, rewound to the relay`);
    const file = path.join(ARTIFACTS, `screenshot-${size.name}.png`);
    await page.screenshot({ path: file, fullPage: size.width < 820 });
    if (process.env.MAILFLOW_DOCS_SCREENSHOTS) copyFileSync(file, path.join(ROOT, 'docs', `screenshot-${size.name}.png`));
  }
  assert.deepEqual(errors, [], 'no script errors');
});

/** The null MX lesson, sent to a domain that does not exist: DNS answers NXDOMAIN. */
function nxdomainScenario() {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailflow-a11y-'));
  const file = path.join(dir, 'nxdomain.json');
  writeFileSync(file, readFileSync(path.join(ROOT, 'scenarios/null-mx.json'), 'utf8').replaceAll('news@noreply.test', 'news@nowhere.test'));
  return file;
}

// Failures, bounces and delays: each scenario runs to its end at once, then
// every page is checked at the end (each tab) and rewound to the event that
// went wrong, whose mark and word (✖, ⚠, DOWN) must show without colour.
const TROUBLE = [
  { file: nxdomainScenario, what: 'a DNS failure (NXDOMAIN)', at: (e) => e.kind === 'dns_answer' && e.rcode !== 'No Error', mark: /✖|Failed/ },
  { file: 'scenarios/unknown-recipient-bounce.json', what: 'a bounce', at: (e) => e.kind === 'queue' && e.state === 'bounced', mark: /✖|Failed/ },
  // Watched read-only (a control token is set): the banner, disabled controls.
  { file: 'scenarios/greylisting.json', what: 'a delay (greylisting), watched read-only', token: 'teach', at: (e) => e.kind === 'queue' && e.state === 'deferred', mark: /⚠|Delayed/ },
  { file: 'scenarios/mx-failover.json', what: 'a host down', at: (e) => e.kind === 'connect_failed', mark: /DOWN|✖/ },
];

for (const trouble of TROUBLE) {
  test(`${trouble.what} at three sizes passes axe and the layout check`, { timeout: 240000 }, async (t) => {
    const server = await startMailflow(['serve', typeof trouble.file === 'function' ? trouble.file() : trouble.file, '--fast', ...(trouble.token ? ['--control-token', trouble.token] : [])]);
    t.after(() => server.stop());
    const browser = await launchBrowser();
    t.after(() => browser.close());
    const errors = [];
    const pages = await openPages(browser, server.url, errors);
    for (const { page } of pages) await untilView(page, () => window.mailflow.events.some((e) => e.kind === 'finished'), null, 30000);
    if (trouble.token) {
      for (const { page } of pages) assert.ok(await page.$eval('#readonly', (b) => !b.hidden), 'the read-only banner shows');
    }
    await checkTabs(pages, `${trouble.what}, at the end`);
    for (const { size, page } of pages) {
      const seq = await rewindTo(page, trouble.at);
      await page.waitForFunction((s) => document.getElementById('caption').innerText.includes(`#${s}`), seq);
      const seen = await page.evaluate(() => `${document.getElementById('caption').innerText}\n${[...document.querySelectorAll('#topology .state-text')].map((x) => x.textContent).join(' ')}\n${document.getElementById('pane-timeline').innerText}`);
      assert.match(seen, trouble.mark, `${trouble.what}: a mark or word says so, not only a colour`);
      for (const tab of ['timeline', 'transcript', 'dns']) {
        await showTab(page, tab);
        await assertPageOk(page, `at ${size.width}x${size.height}, rewound to ${trouble.what}, ${tab} tab`);
      }
    }
    assert.deepEqual(errors, [], 'no script errors');
  });
}
