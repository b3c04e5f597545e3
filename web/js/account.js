// The account view: a mail provider's "account settings" page for the
// users of the running world. Sign in with a password and, for an account
// with two-factor sign-in, the 6-digit code its owner's authenticator app
// shows (simulated here, ticking every 30 s: RFC 6238). Signed in, make an
// app password for a device (shown once) or revoke one (that device is cut
// off). Lists show no secrets. Changes pass the same guard as every other
// control: with a control token, only the teacher's page may use it.

import { getJson, postJson } from './api.js';
import { h } from './panels.js';

const state = { session: null, user: null, timer: null };

function problem(reply) {
  return (reply.body && reply.body.error) || `the server answered ${reply.status}`;
}

function build() {
  const toolbar = document.querySelector('#bar .controls');
  const button = h('button', { id: 'accounts', type: 'button', title: 'Accounts: sign in, two-factor codes, app passwords' },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, '@'), h('span', { class: 'visually-hidden' }, 'Accounts'));
  toolbar.append(button);
  const dialog = h('dialog', { id: 'account-dialog', 'aria-labelledby': 'account-dialog-title' },
    h('h2', { id: 'account-dialog-title' }, 'Accounts'),
    h('section', { class: 'account-list', 'aria-labelledby': 'account-list-title' },
      h('h3', { id: 'account-list-title' }, 'Mailboxes of this world'),
      h('table', { class: 'accounts' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Server'), h('th', { scope: 'col' }, 'Two-factor'), h('th', { scope: 'col' }, 'App passwords'))),
        h('tbody', {}))),
    h('form', { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
      h('h3', { id: 'sign-in-title' }, 'Sign in on the web'),
      h('label', {}, 'User ', h('select', { name: 'user' })),
      h('label', {}, 'Password ', h('input', { name: 'password', type: 'password', autocomplete: 'off', required: '' })),
      h('div', { class: 'authenticator', hidden: '' },
        h('p', { class: 'phone', 'aria-live': 'polite' },
          h('span', { class: 'phone-title' }, 'Authenticator app on the owner’s phone: '),
          h('output', { class: 'totp-code', 'aria-label': 'current code' }, '––––––'),
          h('span', { class: 'totp-left' }, '')),
        h('label', {}, 'Code ', h('input', { name: 'code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9 ]*' }))),
      h('div', { class: 'result', role: 'status' }),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in'))),
    h('section', { class: 'signed-in', hidden: '', 'aria-labelledby': 'signed-in-title' },
      h('h3', { id: 'signed-in-title' }, 'App passwords'),
      h('p', { class: 'who' }),
      h('p', {}, h('button', { type: 'button', class: 'sign-out' }, 'Sign out')),
      h('ul', { class: 'app-passwords' }),
      h('form', { class: 'new-app-password' },
        h('label', {}, 'Device name ', h('input', { name: 'name', type: 'text', placeholder: 'e.g. tablet', autocomplete: 'off', required: '' })),
        h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Make an app password'))),
      h('div', { class: 'shown-once', role: 'status' })),
    h('form', { method: 'dialog' }, h('div', { class: 'buttons' }, h('button', { value: 'close' }, 'Close'))));
  document.body.append(dialog);
  button.addEventListener('click', () => open(dialog));
  dialog.addEventListener('close', () => stopTicking());
  dialog.querySelector('form.sign-in').addEventListener('submit', (ev) => { ev.preventDefault(); signIn(dialog); });
  dialog.querySelector('form.new-app-password').addEventListener('submit', (ev) => { ev.preventDefault(); makeAppPassword(dialog); });
  dialog.querySelector('select[name=user]').addEventListener('change', () => chooseUser(dialog));
  dialog.querySelector('button.sign-out').addEventListener('click', () => signOut(dialog));
}

let accounts = [];

async function open(dialog) {
  dialog.showModal();
  await refresh(dialog);
  chooseUser(dialog);
}

async function refresh(dialog) {
  try {
    accounts = (await getJson('/api/accounts')).accounts;
  } catch (err) {
    accounts = [];
  }
  const body = dialog.querySelector('table.accounts tbody');
  body.replaceChildren(...accounts.map((a) => h('tr', {},
    h('td', {}, a.address, a.locked_until_ms != null ? h('span', { class: 'locked' }, ' (locked)') : null),
    h('td', {}, a.host),
    h('td', {}, a.two_factor ? 'on' : 'off'),
    h('td', {}, a.app_passwords.length ? a.app_passwords.join(', ') : '—'))));
  const select = dialog.querySelector('select[name=user]');
  const chosen = select.value;
  select.replaceChildren(...accounts.map((a) => h('option', { value: a.address }, a.address)));
  if (chosen && accounts.some((a) => a.address === chosen)) select.value = chosen;
  if (state.user) showSignedIn(dialog, accounts.find((a) => a.address === state.user));
}

function chooseUser(dialog) {
  const user = dialog.querySelector('select[name=user]').value;
  const account = accounts.find((a) => a.address === user);
  const box = dialog.querySelector('.authenticator');
  stopTicking();
  box.hidden = !(account && account.two_factor);
  if (!box.hidden) tick(dialog, user);
}

function stopTicking() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

// The simulated authenticator: the code now and a countdown, asked again
// when the 30-second period rolls over.
async function tick(dialog, user) {
  const reply = await postJson('/api/accounts/authenticator', { user });
  const code = dialog.querySelector('.totp-code');
  const left = dialog.querySelector('.totp-left');
  if (!reply.ok) {
    code.textContent = '––––––';
    left.textContent = ` (${problem(reply)})`;
    return;
  }
  code.textContent = `${reply.body.code.slice(0, 3)} ${reply.body.code.slice(3)}`;
  let seconds = reply.body.seconds_left;
  const count = () => {
    left.textContent = ` — ${seconds} s left`;
    if (seconds <= 0) { tick(dialog, user); return; }
    seconds -= 1;
    state.timer = setTimeout(count, 1000);
  };
  stopTicking();
  count();
}

async function signIn(dialog) {
  const form = dialog.querySelector('form.sign-in');
  const result = form.querySelector('.result');
  const request = { user: form.elements.user.value, password: form.elements.password.value };
  if (!form.querySelector('.authenticator').hidden) request.code = form.elements.code.value;
  const reply = await postJson('/api/accounts/sign-in', request);
  form.elements.password.value = '';
  form.elements.code.value = '';
  if (!reply.ok) {
    result.replaceChildren(h('p', { class: 'error' }, `Not signed in: ${problem(reply)}`));
    return;
  }
  state.session = reply.body.session;
  state.user = reply.body.user;
  result.replaceChildren(h('p', { class: 'ok' }, `Signed in as ${reply.body.user}.`));
  dialog.querySelector('.shown-once').replaceChildren();
  await refresh(dialog);
}

// Signed in, the sign-in form makes way for the account's app passwords.
function signOut(dialog) {
  state.session = null;
  state.user = null;
  dialog.querySelector('.shown-once').replaceChildren();
  dialog.querySelector('form.sign-in .result').replaceChildren();
  showSignedIn(dialog, null);
  chooseUser(dialog);
}

function showSignedIn(dialog, account) {
  const section = dialog.querySelector('.signed-in');
  const form = dialog.querySelector('form.sign-in');
  section.hidden = !account;
  form.hidden = !!account;
  if (!account) return;
  stopTicking();
  section.querySelector('.who').textContent = `Signed in as ${account.address}. One app password per device: each opens the mailbox over SMTP, IMAP and POP3, and can be revoked alone.`;
  section.querySelector('ul.app-passwords').replaceChildren(...(account.app_passwords.length
    ? account.app_passwords.map((name) => {
      const revoke = h('button', { type: 'button', class: 'revoke' }, 'Revoke');
      revoke.setAttribute('aria-label', `Revoke ${name}`);
      revoke.addEventListener('click', () => revokeAppPassword(dialog, name));
      return h('li', {}, h('span', { class: 'device' }, name), ' ', revoke);
    })
    : [h('li', { class: 'muted' }, 'none yet')]));
}

async function makeAppPassword(dialog) {
  const form = dialog.querySelector('form.new-app-password');
  const shown = dialog.querySelector('.shown-once');
  const reply = await postJson('/api/accounts/app-passwords', { session: state.session, name: form.elements.name.value });
  if (!reply.ok) {
    shown.replaceChildren(h('p', { class: 'error' }, problem(reply)));
    return;
  }
  form.elements.name.value = '';
  shown.replaceChildren(h('p', {}, `App password for ${reply.body.name} (shown this once; type it into that device’s mail program): `,
    h('code', { class: 'app-password' }, reply.body.app_password)));
  await refresh(dialog);
}

async function revokeAppPassword(dialog, name) {
  const shown = dialog.querySelector('.shown-once');
  const reply = await postJson('/api/accounts/revoke', { session: state.session, name });
  shown.replaceChildren(h('p', { class: reply.ok ? 'ok' : 'error' }, reply.ok ? `Revoked ${name}: that device is refused from now on.` : problem(reply)));
  await refresh(dialog);
}

build();
