// Shared by the browser tests: start the real mailflow binary on a free
// port and a random loopback subnet, and drive Debian's Chromium with
// playwright-core (which never downloads a browser of its own).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
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
