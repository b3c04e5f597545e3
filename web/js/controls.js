// Buttons, keys and dialogs. The actions themselves live in main.js; this
// file connects them to what a teacher presses: space plays or pauses,
// → steps forward, ← steps back, End jumps to now, Home to the start,
// 1–4 pick a pane.

import { getJson, postJson } from './api.js';
import { h } from './panels.js';

export function bindControls(actions) {
  const $ = (id) => document.getElementById(id);
  $('back').addEventListener('click', () => actions.back());
  $('play').addEventListener('click', () => actions.togglePlay());
  $('step').addEventListener('click', () => actions.forward());
  $('mode').addEventListener('click', () => actions.toLive());
  $('restart').addEventListener('click', () => actions.restart());
  $('speed').addEventListener('change', (ev) => actions.setSpeed(Number(ev.target.value)));
  $('scenarios').addEventListener('click', () => openScenarioDialog(actions));
  $('compose').addEventListener('click', () => openComposeDialog(actions));
  for (const tab of document.querySelectorAll('[data-tab]')) {
    tab.addEventListener('click', () => actions.showTab(tab.dataset.tab));
  }

  document.addEventListener('keydown', (ev) => {
    if (ev.target.closest('input, textarea, select, dialog') || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const keys = {
      ' ': () => actions.togglePlay(),
      ArrowRight: () => actions.forward(),
      ArrowLeft: () => actions.back(),
      End: () => actions.toLive(),
      Home: () => actions.toStart(),
      1: () => actions.showTab('timeline'),
      2: () => actions.showTab('transcript'),
      3: () => actions.showTab('message'),
      4: () => actions.showTab('dns'),
    };
    const action = keys[ev.key];
    if (action) {
      ev.preventDefault();
      action();
    }
  });
}

/** The problems of a rejected scenario, each with line, column and field. */
function problemList(body) {
  if (!body) return h('p', { class: 'error' }, 'The server did not answer.');
  if (!body.problems) return h('p', { class: 'error' }, body.error || 'Something went wrong.');
  return h('div', { class: 'error' }, h('p', {}, body.error),
    h('ul', { class: 'problems' }, body.problems.map((p) => h('li', {},
      h('code', {}, `${p.file}:${p.line}:${p.column}`), ' ', h('b', {}, p.path), ': ', p.message))));
}

async function openScenarioDialog(actions) {
  const dialog = document.getElementById('scenario-dialog');
  const list = dialog.querySelector('.scenario-list');
  const result = dialog.querySelector('.result');
  result.replaceChildren();
  list.replaceChildren(h('li', { class: 'muted' }, 'Loading…'));
  dialog.showModal();
  const load = async (request) => {
    result.replaceChildren(h('p', { class: 'muted' }, 'Starting the new world…'));
    const reply = await postJson('/api/scenario', request);
    if (reply.ok) {
      dialog.close();
      actions.toast(`Loaded “${reply.body.title}”`);
    } else {
      result.replaceChildren(problemList(reply.body));
    }
  };
  try {
    const { scenarios } = await getJson('/api/scenarios');
    // The lesson index: the first lesson first, then by level, then by name.
    const order = { first: 0, beginner: 1, intermediate: 2, advanced: 3 };
    const rank = (s) => (s.level in order ? order[s.level] : 4);
    scenarios.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    const about = (s) => [s.level, s.minutes ? `${s.minutes} min` : null].filter(Boolean).join(' · ');
    list.replaceChildren(...scenarios.map((s) => h('li', {},
      h('button', { class: 'scenario-pick', disabled: !s.valid || !actions.canControl(), onclick: () => load({ name: s.name }) },
        h('b', {}, s.title),
        s.valid && about(s) ? h('span', { class: 'lesson-about' }, ` [${about(s)}]`) : null,
        s.valid ? h('span', { class: 'muted' }, ` — ${s.description || s.file}`) : h('span', { class: 'error' }, ` — has errors: ${s.error}`),
        s.valid && s.teaches && s.teaches.length ? h('span', { class: 'lesson-teaches' }, `Teaches: ${s.teaches.join(', ')}`) : null))));
    if (!scenarios.length) list.replaceChildren(h('li', { class: 'muted' }, 'No scenario files in the scenarios folder.'));
  } catch (err) {
    list.replaceChildren(h('li', { class: 'error' }, `Cannot list the scenarios: ${err.message}`));
  }
  const input = dialog.querySelector('input[type=file]');
  input.disabled = !actions.canControl();
  input.value = '';
  input.onchange = async () => {
    const file = input.files[0];
    if (file) load({ file: file.name, text: await file.text() });
  };
}

function openComposeDialog(actions) {
  const dialog = document.getElementById('compose-dialog');
  const form = dialog.querySelector('form');
  const result = dialog.querySelector('.result');
  const select = form.elements.client;
  const clients = actions.senders();
  select.replaceChildren(...clients.map((c) => h('option', { value: c.name }, `${c.name} (${c.user})`)));
  result.replaceChildren();
  if (!form.elements.to.value) form.elements.to.value = actions.someRecipient() || '';
  dialog.showModal();
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    if (ev.submitter && ev.submitter.value === 'cancel') {
      dialog.close();
      return;
    }
    const request = { client: select.value, to: form.elements.to.value, subject: form.elements.subject.value, body: form.elements.body.value };
    const reply = await postJson('/api/send', request);
    if (reply.ok) {
      dialog.close();
      form.elements.subject.value = '';
      form.elements.body.value = '';
      actions.toast(`${request.client} sends “${request.subject}”`);
      actions.toLive();
    } else {
      result.replaceChildren(problemList(reply.body));
    }
  };
}
