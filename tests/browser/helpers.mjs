// Shared by the browser tests: start the real mailflow binary on a free
// port and a random loopback subnet, and drive Debian's Chromium with
// playwright-core (which never downloads a browser of its own).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const BIN = process.env.MAILFLOW_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'mailflow');
export const ARTIFACTS = path.join(ROOT, 'artifacts');

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A random /24 in 127.0.0.0/8, so parallel runs do not collide. */
export function randomSubnet() {
  const a = 130 + Math.floor(Math.random() * 100);
  const b = Math.floor(Math.random() * 256);
  return `127.${a}.${b}.0/24`;
}

/**
 * Starts `mailflow demo` (or other `args`) with its web page; resolves
 * when the banner has printed the page's address.
 */
export async function startMailflow(args = ['demo', '--step']) {
  if (!existsSync(BIN)) throw new Error(`the mailflow binary is missing at ${BIN}: run \`cargo build\` first (or set MAILFLOW_BIN)`);
  const port = await freePort();
  const child = spawn(BIN, [...args, '--web', `127.0.0.1:${port}`, '--subnet', randomSubnet()], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mailflow did not print its web address within 15 s:\n${output}`)), 15000);
    const onData = (chunk) => {
      output += chunk;
      const match = output.match(/Web page: (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => { output += chunk; });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mailflow exited with ${code} before serving:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  return {
    url,
    output: () => output,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.on('exit', () => resolve());
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}

/** Launches Chromium with an empty profile; returns {context, close}. */
export async function launchBrowser({ width = 1280, height = 720 } = {}) {
  const { chromium } = await import('playwright-core');
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is missing at ${CHROMIUM}: apt-get install -y chromium`);
  const profile = mkdtempSync(path.join(tmpdir(), 'mailflow-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// ---- accessibility and layout checks -------------------------------------

/** The sizes every page state is checked at: a phone, a projector, a laptop. */
export const SIZES = [
  { name: '390', width: 390, height: 844 },
  { name: '1024', width: 1024, height: 768 },
  { name: '1440', width: 1440, height: 900 },
];

/** WCAG 2.0 and 2.1, levels A and AA: the rules axe-core checks here. */
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
let axeSource = null;

/**
 * Runs axe-core (from node_modules, a devDependency: the page itself never
 * loads it) on the page as it is now, and returns its A/AA violations.
 * The source is evaluated through the DevTools protocol, which the page's
 * Content-Security-Policy (no inline scripts) does not apply to, so the page
 * is checked with its real policy in force.
 */
export async function axeViolations(page) {
  if (!axeSource) axeSource = readFileSync(path.join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(axeSource);
  const results = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }), AXE_TAGS);
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ')}`),
  }));
}

/** Fails when axe finds any A/AA violation; serious and critical ones are listed first. */
export async function assertAccessible(page, state) {
  const violations = await axeViolations(page);
  const rank = { critical: 0, serious: 1, moderate: 2, minor: 3 };
  violations.sort((a, b) => (rank[a.impact] ?? 4) - (rank[b.impact] ?? 4));
  const report = violations.map((v) => `  ${v.impact} ${v.id} (${v.help}):\n${v.nodes.slice(0, 5).map((n) => `    ${n}`).join('\n')}`).join('\n');
  if (violations.length) throw new Error(`axe-core: ${violations.length} WCAG A/AA violation(s) ${state}:\n${report}`);
}

/**
 * What is wrong with the layout now, as sentences (empty when all is well):
 * the page scrolls sideways; a control, the counter or the LIVE/REWOUND
 * state is off screen or cut; a tab's name is cut; in the picture, two
 * machines (box, icon, state tag, badges) or a lane title overlap, or a
 * text or icon spills out of its box.
 */
export function layoutProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const vw = document.documentElement.clientWidth;
    const rect = (el) => el.getBoundingClientRect();
    const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
    const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
    const union = (rs) => rs.reduce((u, r) => ({ left: Math.min(u.left, r.left), right: Math.max(u.right, r.right), top: Math.min(u.top, r.top), bottom: Math.max(u.bottom, r.bottom) }));
    const name = (el) => el.id ? `#${el.id}` : el.getAttribute('data-name') || el.textContent.trim().slice(0, 30) || el.tagName;
    const visible = (el) => { const r = rect(el); return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden'; };

    if (document.documentElement.scrollWidth > vw + 1) problems.push(`the page scrolls sideways (${document.documentElement.scrollWidth} px wide in ${vw} px)`);
    for (const el of document.querySelectorAll('#bar button, #bar select, #simtime, #position, #mode')) {
      if (!visible(el)) { problems.push(`${name(el)} is not shown`); continue; }
      const r = rect(el);
      if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`${name(el)} is off screen (${Math.round(r.left)}..${Math.round(r.right)} of ${vw})`);
      if (el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'SELECT') problems.push(`${name(el)} is cut (${el.scrollWidth} > ${el.clientWidth})`);
    }
    for (const tab of document.querySelectorAll('[role=tab]')) {
      const r = rect(tab);
      if (r.left < -0.5 || r.right > vw + 0.5) problems.push(`tab ${name(tab)} is off screen`);
      if (tab.scrollWidth > tab.clientWidth + 1) problems.push(`tab ${name(tab)} is cut (${tab.scrollWidth} > ${tab.clientWidth})`);
    }

    const svg = document.getElementById('topology');
    if (!visible(svg)) problems.push('the picture of the network is not shown');
    else {
      const footprints = [];
      for (const node of svg.querySelectorAll('g.node')) {
        const box = rect(node.querySelector('rect.box'));
        const parts = [box];
        for (const part of node.querySelectorAll('.icon, text')) {
          if (part.closest('.badges, .state-tag') || !visible(part)) continue;
          if (!inside(rect(part), box)) problems.push(`${node.dataset.name}: "${part.textContent || 'its icon'}" spills out of its box`);
        }
        const iconRect = rect(node.querySelector('.icon'));
        for (const t of node.querySelectorAll(':scope > text')) {
          if (visible(t) && overlap(iconRect, rect(t))) problems.push(`${node.dataset.name}: its icon overlaps "${t.textContent}"`);
        }
        const tag = node.querySelector('.state-tag');
        if (tag && visible(tag)) parts.push(rect(tag));
        const badges = node.querySelector('.badges');
        if (badges && badges.childElementCount && visible(badges)) {
          parts.push(rect(badges));
          if (rect(badges).width > box.width + 1) problems.push(`${node.dataset.name}: its badges are wider than its box`);
        }
        footprints.push({ name: node.dataset.name, rect: union(parts) });
      }
      const titles = [...svg.querySelectorAll('.column-title')].map((t) => ({ name: `title "${t.textContent}"`, rect: rect(t) }));
      const all = [...footprints, ...titles];
      const labels = [...svg.querySelectorAll('.edge-label')].map((l) => ({ name: `the link label "${l.textContent}"`, rect: rect(l) }));
      for (let i = 0; i < all.length; i++) {
        for (let j = i + 1; j < all.length; j++) {
          if (overlap(all[i].rect, all[j].rect)) problems.push(`${all[i].name} overlaps ${all[j].name}`);
        }
      }
      const picture = rect(svg);
      for (const item of [...all, ...labels]) {
        if (!inside(item.rect, picture)) problems.push(`${item.name} is outside the picture`);
      }
    }
    return problems;
  });
}

/** Fails with the list of layout problems, if any. */
export async function assertLayout(page, state) {
  const problems = await layoutProblems(page);
  if (problems.length) throw new Error(`layout problems ${state}:\n  ${problems.join('\n  ')}`);
}

/** Both checks at once: axe-core's A/AA rules and the layout. */
export async function assertPageOk(page, state) {
  await assertLayout(page, state);
  await assertAccessible(page, state);
}
