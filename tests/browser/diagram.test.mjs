// Handouts render (issue 13): `mailflow diagram` on a trace the binary
// recorded, drawn by Chromium.
// - The SVG is rasterised to a PNG (drawn into a canvas, as a print
//   preview would), which must be A4-proportioned per page and not blank,
//   with every participant's name in the DOM.
// - The Mermaid text is parsed and drawn by mermaid itself (the npm
//   package's self-contained bundle, loaded from node_modules into a blank
//   page: nothing is fetched at test time).
// - The message inspector's download link saves the same SVG.
//
// Run: cargo build && npm ci && node --test tests/browser/diagram.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, BIN, ROOT, launchBrowser, randomSubnet, startMailflow } from './helpers.mjs';

const PARTICIPANTS = ['alice-laptop', 'smtp.school.test', 'dns', 'mx1.example.org', 'bob-phone'];

/** Records the demo scenario's trace and draws it in both formats. */
function drawTrace(dir) {
  const trace = path.join(dir, 'trace.jsonl');
  execFileSync(BIN, ['run', 'scenarios/alice-writes-to-bob.json', '--fast', '--quiet', '--subnet', randomSubnet(), '--record', trace], { cwd: ROOT, stdio: 'pipe' });
  const svg = execFileSync(BIN, ['diagram', trace, '--format', 'svg'], { cwd: ROOT }).toString();
  const mermaid = execFileSync(BIN, ['diagram', trace, '--format', 'mermaid'], { cwd: ROOT }).toString();
  return { svg, mermaid };
}

/** Width and height of a PNG, from its IHDR chunk. */
function pngSize(buffer) {
  assert.equal(buffer.subarray(1, 4).toString(), 'PNG', 'a PNG file');
  return { width: buffer.readUInt32BE(16), height: buffer.readUInt32BE(20) };
}

test('the SVG handout renders to an A4-proportioned, non-blank PNG', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailflow-diagram-'));
  const { svg, mermaid } = drawTrace(dir);
  const { context, close } = await launchBrowser({ width: 900, height: 1200 });
  try {
    const page = await context.newPage();
    await page.setContent('<!doctype html><html lang="en"><body style="margin:0"></body></html>');
    // Rasterise as an image (no DOM, no scripts: how a viewer or printer
    // sees the file), then count what is not white.
    const raster = await page.evaluate(async (source) => {
      const img = new Image();
      img.src = `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(source)))}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let inked = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) inked += 1;
      // The top of page 1 (title and participants) must have ink too.
      const top = ctx.getImageData(0, 0, canvas.width, 90).data;
      let topInk = 0;
      for (let i = 0; i < top.length; i += 4) if (top[i] < 200) topInk += 1;
      return { width: canvas.width, height: canvas.height, inked, topInk, png: canvas.toDataURL('image/png') };
    }, svg);
    const pages = (svg.match(/<g class="page"/g) || []).length;
    assert.ok(pages >= 1, 'at least one page');
    const perPage = raster.height / pages / raster.width;
    assert.ok(Math.abs(perPage - 297 / 210) < 0.01, `each page is A4 portrait (297:210), got ${raster.width}×${raster.height} for ${pages} page(s)`);
    const share = raster.inked / (raster.width * raster.height);
    assert.ok(share > 0.005 && share < 0.5, `the drawing has ink but is not a solid block: ${(share * 100).toFixed(2)} % inked`);
    assert.ok(raster.topInk > 500, `the title and participants are drawn (${raster.topInk} dark pixels at the top)`);
    const png = Buffer.from(raster.png.split(',')[1], 'base64');
    assert.deepEqual(pngSize(png), { width: raster.width, height: raster.height });
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(path.join(ARTIFACTS, 'diagram.png'), png);

    // As a document: the participants are text a reader (or a screen reader) finds.
    await page.setContent(`<!doctype html><html lang="en"><body style="margin:0">${svg}</body></html>`);
    const names = await page.$$eval('svg text.participant', (nodes) => [...new Set(nodes.map((n) => n.textContent))]);
    assert.deepEqual(names, PARTICIPANTS);
    const box = await page.locator('svg').boundingBox();
    assert.ok(Math.abs(box.height / pages / box.width - 297 / 210) < 0.01, `laid out A4 in the page: ${box.width}×${box.height}`);
    const shot = await page.locator('svg g.page').first().screenshot();
    const size = pngSize(shot);
    assert.ok(Math.abs(size.height / size.width - 297 / 210) < 0.02, `page 1 screenshot is A4: ${size.width}×${size.height}`);

    // Mermaid: parsed and drawn by mermaid, from node_modules, offline.
    await page.setContent('<!doctype html><html lang="en"><body><div id="out"></div></body></html>');
    await page.addScriptTag({ path: path.join(ROOT, 'node_modules/mermaid/dist/mermaid.min.js') });
    const drawn = await page.evaluate(async (source) => {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
      const broken = await window.mermaid.parse('sequenceDiagram\n  a->>: no receiver', { suppressErrors: true });
      await window.mermaid.parse(source);
      const { svg: out } = await window.mermaid.render('handout', source);
      document.getElementById('out').innerHTML = out;
      const texts = [...document.querySelectorAll('#out svg text')].map((t) => t.textContent);
      return { broken, texts };
    }, mermaid);
    assert.equal(drawn.broken, false, 'the parser does reject a broken diagram (so this check can fail)');
    for (const name of PARTICIPANTS) assert.ok(drawn.texts.includes(name), `mermaid drew participant ${name}`);
    assert.ok(drawn.texts.some((t) => t.includes('MAIL FROM:<alice@school.test>')), 'escaped text comes out as written');
    assert.ok(drawn.texts.some((t) => t.includes('queued as SMTP-1')), 'notes are drawn');
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the message inspector downloads the message as an SVG diagram', async () => {
  const mailflow = await startMailflow(['serve', 'scenarios/alice-writes-to-bob.json', '--fast', '--quiet']);
  const { context, close } = await launchBrowser({ width: 1440, height: 900 });
  try {
    const page = await context.newPage();
    await page.goto(mailflow.url);
    await page.waitForFunction(() => document.body.dataset.delivered === 'true', null, { timeout: 20000 });
    await page.click('#tab-message');
    const link = page.locator('#pane-message a.diagram-download');
    await link.waitFor({ timeout: 20000 });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.match(download.suggestedFilename(), /^mailflow-.*\.svg$/);
    const file = await download.path();
    const svg = readFileSync(file, 'utf8');
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="210mm"'), svg.slice(0, 200));
    for (const name of ['alice-laptop', 'smtp.school.test', 'mx1.example.org']) assert.ok(svg.includes(`>${name}</text>`), name);
  } finally {
    await close();
    await mailflow.stop();
  }
});
