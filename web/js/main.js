// The page: a pure function of events 0..N.
//
// The page keeps every event of the current world (`events`) and a view
// position N (`view`): the picture, caption, timeline, transcript and DNS
// panel are drawn from events[0..N] only. Stepping back is rendering with
// N-1; stepping forward inside what is known is N+1; stepping forward at
// the live edge asks the server's conductor to let the next hop move.

import { getJson, postJson } from './api.js';
import { Stream } from './stream.js';
import { Topology } from './topology.js';
import { currentSession, simTime, timeline } from './model.js';
import { fill, h, renderCaption, renderDns, renderInspector, renderTimeline, renderTranscript } from './panels.js';
import { bindControls } from './controls.js';
import { dnsEditButton } from './dns-edit.js';
import { initShare } from './share.js';
import { QuizCard } from './quiz.js';
import { annotateTls, wireView } from './wire.js';

const $ = (id) => document.getElementById(id);

const app = {
  generation: null,
  events: [],
  view: 0,
  topology: null,
  scenario: null,
  status: { paused: true, speed: 1, waiting: [] },
  canControl: false,
  tokenRequired: false,
  frozen: false, // a read-only viewer paused their own view
  playback: null, // timer of a local replay towards the live edge
  pinnedSession: null, // a session picked on the timeline
  tab: 'timeline',
  inspector: { list: [], detail: null, selected: null },
  connected: false,
};

const picture = new Topology($('topology'), $('topology-list'));
// Votes from every page; the tally and the reveal on the teacher's (quiz.js).
const quiz = new QuizCard($('quiz'), {
  teacher: () => app.canControl,
  voter: () => !app.tokenRequired || !app.canControl,
  generation: () => app.generation,
  toast: (message) => toast(message),
  rerender: () => scheduleRender(false),
});
let captionKey = null; // the caption is a live region: redraw it only when the hop changes
let pending = null; // a scheduled render: {animate}

function shown() {
  return app.events.slice(0, app.view);
}

function hopDuration() {
  const speed = app.status.speed || 0;
  if (speed <= 0) return 0;
  return Math.max(150, Math.min(700, 450 / speed));
}

/** Renders on the next frame (several updates in one frame render once). */
function scheduleRender(animate = false) {
  if (pending) {
    pending.animate = pending.animate || animate;
    return;
  }
  pending = { animate };
  requestAnimationFrame(() => {
    const { animate: anim } = pending;
    pending = null;
    render(anim);
  });
}

function render(animate) {
  const events = shown();
  const last = events[events.length - 1];
  picture.render(events, { animate, duration: hopDuration() });
  // A polite live region is read out whenever it changes, so it changes
  // once per step, not on every status update (WCAG 4.1.3).
  const key = `${app.generation}:${last ? last.seq : -1}`;
  if (key !== captionKey) {
    captionKey = key;
    renderCaption($('caption-live'), events);
  }
  renderPane(events);
  const atEdge = app.view === app.events.length;
  $('simtime').textContent = simTime(last ? last.sim_ms : 0);
  $('position').textContent = `#${last ? last.seq : 0} / ${Math.max(app.events.length - 1, 0)}`;
  const mode = $('mode');
  mode.textContent = atEdge ? (app.frozen ? 'PAUSED' : 'LIVE') : 'REWOUND';
  mode.className = `mode ${atEdge && !app.frozen ? 'live' : 'rewound'}`;
  mode.disabled = atEdge && !app.frozen;
  const finished = atEdge && last && last.kind === 'finished';
  const waiting = atEdge && app.status.paused && app.status.waiting && app.status.waiting.length ? app.status.waiting[0] : null;
  fill($('next'), 
    waiting ? h('span', {}, h('b', {}, 'Next: '), waiting, app.canControl ? h('span', { class: 'muted' }, '  — press → to let it move') : null) : null,
    finished ? h('span', {}, h('b', {}, 'The story is over. '), app.canControl ? 'Write a message (✉) or restart.' : '') : null,
  );
  const playing = isPlaying();
  $('play').querySelector('.glyph').textContent = playing ? '❚❚' : '▶';
  $('play').querySelector('.label').textContent = playing ? ' Pause' : ' Play';
  $('play').setAttribute('aria-pressed', String(playing));
  document.body.dataset.view = String(app.view);
  document.body.dataset.total = String(app.events.length);
  document.body.dataset.generation = String(app.generation);
  document.body.dataset.delivered = String(events.some((e) => e.kind === 'delivered'));
  quiz.render(events, atEdge);
}

function renderPane(events) {
  const currentSeq = events.length ? events[events.length - 1].seq : -1;
  switch (app.tab) {
    case 'timeline':
      renderTimeline($('pane-timeline'), annotateTls(timeline(app.topology, events), events), currentSeq, pickChip);
      break;
    case 'transcript':
      renderTranscript($('pane-transcript'), events, app.pinnedSession ?? currentSession(events));
      const wire = wireView(events, app.pinnedSession ?? currentSession(events));
      if (wire) $('pane-transcript').append(wire);
      break;
    case 'dns':
      renderDns($('pane-dns'), app.topology ? app.topology.zones : [], events);
      if (app.canControl) $('pane-dns').prepend(dnsEditButton());
      break;
    case 'message':
      renderInspector($('pane-message'), app.inspector, events, { onSelect: selectMessage, onJump: jumpTo });
      break;
    default:
  }
}

function isPlaying() {
  if (app.playback) return true;
  if (app.canControl) return !app.status.paused;
  return !app.frozen && !app.status.paused;
}

// ---- actions -------------------------------------------------------------

function stopPlayback() {
  if (app.playback) clearTimeout(app.playback);
  app.playback = null;
}

function back() {
  stopPlayback();
  app.pinnedSession = null;
  if (app.view > 1) app.view -= 1;
  scheduleRender(false);
}

async function forward() {
  stopPlayback();
  app.pinnedSession = null;
  if (app.view < app.events.length) {
    app.view += 1;
    scheduleRender(true);
    return;
  }
  app.frozen = false;
  if (!app.canControl) {
    toast('Read-only page: the teacher moves the story on.');
    return;
  }
  const reply = await postJson('/api/control', { action: 'step' });
  if (!reply.ok) toast(reply.body && reply.body.error ? reply.body.error : 'The step did not reach the server.');
  else if (!reply.body.stepped) {
    const last = app.events[app.events.length - 1];
    toast(last && last.kind === 'finished' ? 'The story is over: nothing left to step.' : 'Nothing is waiting to move right now.');
  }
}

function toLive() {
  stopPlayback();
  app.frozen = false;
  app.view = app.events.length;
  scheduleRender(false);
}

function toStart() {
  stopPlayback();
  app.view = Math.min(1, app.events.length);
  scheduleRender(false);
}

function jumpTo(n) {
  stopPlayback();
  app.view = Math.max(1, Math.min(n, app.events.length));
  scheduleRender(false);
}

async function play() {
  app.frozen = false;
  if (app.view < app.events.length) {
    // Replay what is known one hop at a time, faster than the story
    // moves so it catches up, then follow live.
    const tick = () => {
      if (app.view >= app.events.length) {
        stopPlayback();
        scheduleRender(false);
        return;
      }
      app.view += 1;
      scheduleRender(true);
      const behind = app.events.length - app.view;
      app.playback = setTimeout(tick, behind > 20 ? 60 : Math.max(120, hopDuration() / 2));
    };
    app.playback = setTimeout(tick, 0);
  }
  if (app.canControl) {
    const reply = await postJson('/api/control', { action: 'play' });
    if (reply.ok) app.status = { ...app.status, ...reply.body };
  }
  scheduleRender(false);
}

async function pause() {
  stopPlayback();
  if (app.canControl) {
    const reply = await postJson('/api/control', { action: 'pause' });
    if (reply.ok) app.status = { ...app.status, ...reply.body };
  } else {
    app.frozen = true;
  }
  scheduleRender(false);
}

function togglePlay() {
  if (isPlaying()) pause();
  else play();
}

async function restart() {
  if (!app.canControl) {
    toast('Read-only page: only the teacher can restart.');
    return;
  }
  const reply = await postJson('/api/control', { action: 'restart' });
  if (!reply.ok) toast(reply.body && reply.body.error ? reply.body.error : 'Restart failed.');
}

async function setSpeed(speed) {
  if (!app.canControl) {
    toast('Read-only page: the teacher sets the speed.');
    return;
  }
  const reply = await postJson('/api/control', { action: 'speed', speed });
  if (reply.ok) app.status = { ...app.status, ...reply.body };
  scheduleRender(false);
}

function showTab(tab) {
  app.tab = tab;
  for (const button of document.querySelectorAll('[data-tab]')) {
    const selected = button.dataset.tab === tab;
    button.setAttribute('aria-selected', String(selected));
    $(`pane-${button.dataset.tab}`).hidden = !selected;
  }
  if (tab === 'message') refreshMessages();
  scheduleRender(false);
}

function pickChip(chip) {
  // Show that part of the story: the view moves to the chip's last event.
  stopPlayback();
  app.view = Math.min(chip.last + 1, app.events.length);
  app.pinnedSession = chip.session;
  showTab(chip.session != null ? 'transcript' : app.tab);
}

let refreshTimer = null;
async function refreshMessages() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    try {
      const { messages, generation } = await getJson('/api/messages');
      if (generation !== app.generation) return;
      app.inspector.list = messages;
      if (!app.inspector.selected && messages.length) await selectMessage(messages[messages.length - 1].id);
      scheduleRender(false);
    } catch { /* the next delivery refreshes again */ }
  }, 150);
}

async function selectMessage(id) {
  app.inspector.selected = id;
  try {
    app.inspector.detail = await getJson(`/api/messages/${encodeURIComponent(id)}`);
  } catch {
    app.inspector.detail = null;
  }
  scheduleRender(false);
}

let toastTimer = null;
function toast(message) {
  const el = $('toast');
  el.textContent = message;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 3500);
}

// ---- the stream ----------------------------------------------------------

async function loadWorld(generation) {
  const [topology, scenario] = await Promise.all([getJson('/api/topology'), getJson('/api/scenario')]);
  if (generation != null && topology.generation !== generation) return loadWorld(generation);
  app.topology = topology;
  app.scenario = scenario;
  picture.setTopology(topology);
  $('title').textContent = topology.title;
  $('subtitle').textContent = scenario.scenario.description || '';
  document.title = `mailflow — ${topology.title}`;
  $('teacher-notes').textContent = scenario.scenario.teacher_notes || '';
  $('notes-box').hidden = !scenario.scenario.teacher_notes || !app.canControl;
  return null;
}

function reset(generation) {
  stopPlayback();
  app.generation = generation;
  app.events = [];
  app.view = 0;
  app.pinnedSession = null;
  app.frozen = false;
  app.inspector = { list: [], detail: null, selected: null };
}

const stream = new Stream({
  position: () => ({ since: app.events.length, generation: app.generation }),
  onHello: async (hello) => {
    if (hello.generation !== app.generation) {
      const first = app.generation === null;
      reset(hello.generation);
      if (!first) toast(`A new world started: ${hello.title}`);
      await loadWorld(hello.generation);
      scheduleRender(false);
    } else if (hello.since !== app.events.length) {
      stream.resync();
    }
  },
  onEvents: (frame) => {
    if (frame.generation !== app.generation) return;
    const atEdge = app.view === app.events.length;
    let added = 0;
    for (const event of frame.events) {
      if (event.seq < app.events.length) continue; // already known
      if (event.seq > app.events.length) { stream.resync(); break; } // a gap: ask again
      app.events.push(event);
      added += 1;
    }
    if (!added) return;
    if (atEdge && !app.frozen && !app.playback) app.view = app.events.length;
    if (app.tab === 'message' && frame.events.some((e) => e.kind === 'delivered')) refreshMessages();
    scheduleRender(atEdge && added <= 3);
  },
  onStatus: (status) => {
    if (status.generation !== app.generation) return;
    app.status = status;
    $('speed').value = String(status.speed);
    scheduleRender(false);
  },
  onConnection: (up) => {
    app.connected = up;
    $('connection').hidden = up;
  },
});

async function start() {
  bindControls({
    back, forward, togglePlay, toLive, toStart, restart, setSpeed, showTab, toast,
    canControl: () => app.canControl,
    senders: () => (app.topology ? app.topology.nodes.filter((n) => n.role === 'client' && n.submit_to) : []),
    someRecipient: () => {
      const scenario = app.scenario && app.scenario.scenario;
      const users = scenario ? Object.keys(scenario.users) : [];
      return users[users.length - 1];
    },
  });
  try {
    const state = await getJson('/api/state');
    app.canControl = state.can_control;
    app.tokenRequired = state.token_required;
    app.status = state;
  } catch { /* the stream will retry */ }
  document.body.classList.toggle('read-only', !app.canControl);
  for (const id of ['restart', 'scenarios', 'compose', 'speed']) $(id).disabled = !app.canControl && id !== 'scenarios';
  $('readonly').hidden = app.canControl;
  $('speed').value = String(app.status.speed ?? 1);
  showTab('timeline');
  stream.connect();
  initShare();
}

start();

// For tests and curious students: the page's state, read-only.
window.mailflow = { get view() { return app.view; }, get events() { return app.events; }, get generation() { return app.generation; } };
