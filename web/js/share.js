// Students' own mail programs (mailflow --share ADDR): a "Join" button in
// the bar opens a dialog with a QR code that opens the students' page (the
// page on the shared address, read-only, without the teacher's token), the
// world's CA certificate to import, the shared DNS port, and each account's
// mail program settings. Passwords are never on the page: the teacher hands
// out the accounts (the terminal prints them).
//
// Without --share, GET /api/share answers 404 and nothing is added. The
// settings are fetched again each time the dialog opens, because the
// teacher may have loaded another scenario (other hosts, other users).

import { getJson } from './api.js';
import { h } from './panels.js';

const THUNDERBIRD_CA = 'In Thunderbird: Settings → Privacy & Security → Certificates → Manage Certificates → Authorities → Import, and tick "Trust this CA to identify websites" (the trust Thunderbird checks for mail servers too).';

function endpoint(e) {
  if (!e) return h('span', { class: 'muted' }, 'none here');
  return h('span', {},
    h('strong', {}, e.protocol), ' server ', h('code', {}, e.server), ', port ', h('code', {}, String(e.port)), ', ', e.security,
    h('br'), h('span', { class: 'muted' }, `→ ${e.host}`));
}

function render(dialog, info) {
  const body = dialog.querySelector('.share-body');
  const rows = info.users.map((u) => h('tr', {},
    h('th', { scope: 'row' }, h('code', {}, u.user), h('br'), h('span', { class: 'muted' }, `username ${u.username}`)),
    h('td', {}, u.incoming.length ? u.incoming.flatMap((e, i) => [i ? h('br') : null, endpoint(e)]) : h('span', { class: 'muted' }, `no IMAP or POP3 on ${u.mailbox_host}`)),
    h('td', {}, endpoint(u.outgoing))));
  const domainHint = `MX ${(info.dns.domains || [])[0] || 'example.org'}`;
  body.replaceChildren(
    h('div', { class: 'share-join' },
      h('img', { class: 'share-qr', src: `${info.qr}?t=${Date.now()}`, width: 240, height: 240, alt: `QR code that opens ${info.page}` }),
      h('div', {},
        h('p', {}, 'Scan it, or type this address, to follow the story on your own phone or laptop:'),
        h('p', { class: 'share-url' }, h('a', { href: info.page }, info.page)),
        h('p', {}, '1. Trust the world\'s certificate authority: ', h('a', { href: info.ca, download: 'mailflow-ca.pem' }, 'download mailflow-ca.pem'), '.'),
        h('p', { class: 'muted' }, THUNDERBIRD_CA),
        h('p', {}, '2. Add a mail account by hand (manual configuration) with the settings of your account below; authentication: normal password. Your teacher gives you the password.'),
        h('p', {}, 'Ask the world\'s DNS yourself: ', h('code', {}, `dig @${info.dns.server} -p ${info.dns.port} ${domainHint}`)))),
    h('table', { class: 'share-table' },
      h('caption', {}, 'Mail program settings'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Account'), h('th', { scope: 'col' }, 'Incoming (read mail)'), h('th', { scope: 'col' }, 'Outgoing (SMTP)'))),
      h('tbody', {}, rows)));
}

function buildDialog() {
  const dialog = h('dialog', { id: 'share-dialog', 'aria-labelledby': 'share-dialog-title' },
    h('h2', { id: 'share-dialog-title' }, 'Join with your own mail program'),
    h('div', { class: 'share-body' }),
    h('form', { method: 'dialog' }, h('button', { value: 'close' }, 'Close')));
  document.body.append(dialog);
  return dialog;
}

/** Adds the Join button and its dialog if the world is shared. */
export async function initShare() {
  try {
    await getJson('/api/share');
  } catch {
    return; // not shared (404), or the server is gone: no button
  }
  const dialog = buildDialog();
  const open = async () => {
    try {
      render(dialog, await getJson('/api/share'));
    } catch (err) {
      dialog.querySelector('.share-body').replaceChildren(h('p', {}, `The settings cannot be loaded (${err.message}).`));
    }
    if (!dialog.open) dialog.showModal();
  };
  const button = h('button', { id: 'share', type: 'button', title: 'Join with your own mail program: QR code and settings', 'aria-haspopup': 'dialog', onclick: open },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, '⇄'),
    h('span', { class: 'label short-hide' }, ' Join'));
  document.querySelector('#bar .controls').append(button);
}
