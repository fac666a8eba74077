/*
 * app.js - the core of the dagd board: talking to the JSON API, following
 * dagd's events over Server-Sent Events, the routes (#/, #/p/ID,
 * #/p/ID/settings, #/p/ID/graph, #/t/ID), the project list, and the board
 * itself: lanes of cards updated in place, in batches, under the header with
 * the autonomous toggle and the Start Processing button of the spec.
 * pages.js adds the task and settings pages, graph.js the graph.
 */
'use strict';

const LANES = [
  { name: 'waiting', title: 'Waiting', statuses: ['waiting'] },
  { name: 'ready', title: 'Ready', statuses: ['ready', 'awaiting_approval'] },
  { name: 'running', title: 'Running', statuses: ['spawning', 'running'] },
  { name: 'validating', title: 'Validating', statuses: ['pending_validation', 'validating'] },
  { name: 'done', title: 'Done', statuses: ['completed', 'skipped'], recent: true },
  { name: 'failed', title: 'Failed', statuses: ['failed', 'upstream_failed', 'cancelled'], recent: true },
];
const LANE_OF = {};
LANES.forEach(l => l.statuses.forEach(s => { LANE_OF[s] = l.name; }));
const FINISHED = ['completed', 'failed', 'upstream_failed', 'cancelled', 'skipped'];
const LANE_CARDS = 500;         /* cards a lane draws at first, and more at a time */

const $ = (sel, root) => (root || document).querySelector(sel);
const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = s => String(s == null ? '' : s).replace(/[&<>"']/g, c => ESC[c]);
const num = id => +String(id).slice(2) || 0;

const ICONS = {
  play: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M7 4v16l13-8z"/></svg>',
  pause: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 4h4v16H6zM14 4h4v16h-4z"/></svg>',
};

/* --- the API --------------------------------------------------------------- */

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch('/api/v1/' + path, opt);
  } catch (e) {
    setBanner(true, 'dagctl web does not answer; retrying…');
    throw Object.assign(new Error('dagctl web is not reachable'), { status: 0 });
  }
  let j = null;
  try { j = await r.json(); } catch (e) { /* no body */ }
  if (!r.ok) {
    const err = (j && j.error) || {};
    if (r.status === 503) setBanner(true);
    throw Object.assign(new Error(err.message || r.statusText), { status: r.status, code: err.code });
  }
  return j;
}

function setBanner(down, text) {
  const b = $('#banner');
  b.hidden = !down;
  if (down) $('#banner-text').textContent = text || 'Reconnecting…';
  document.body.classList.toggle('daemon-down', down);
}

function say(text) {
  $('#live').textContent = text;
}

/* One feed of events for the view that is shown: resumes by itself (the
 * server reconnects to dagd from the last seq; the browser sends
 * Last-Event-ID); onEvent gets each event, onHello each (re)subscription. */
class Feed {
  constructor(query, onEvent, onHello) {
    this.es = new EventSource('/api/v1/events?' + query);
    this.es.onmessage = m => { try { onEvent(JSON.parse(m.data)); } catch (e) { console.error(e); } };
    this.es.addEventListener('hello', () => { setBanner(false); if (onHello) onHello(); });
    this.es.addEventListener('daemon', m => {
      const d = JSON.parse(m.data);
      setBanner(!d.up);
      if (d.up && onHello) onHello();
    });
    this.es.onerror = () => {
      if (this.es.readyState !== EventSource.OPEN) setBanner(true, 'lost dagctl web; reconnecting…');
    };
  }
  close() { this.es.close(); }
}

/* --- times ---------------------------------------------------------------- */

function ago(iso, now) {
  if (!iso) return '';
  let s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd';
}

function retryText(t, now) {
  if (t.held) return 'held';
  if (t.status !== 'ready' || !t.not_before) return '';
  const s = Math.ceil((Date.parse(t.not_before) - now) / 1000);
  return s > 0 ? 'retry in ' + s + 's' : '';
}

/* --- the router ----------------------------------------------------------- */

const App = { view: null, routes: [] };

function route(re, make) { App.routes.push({ re, make }); }

function crumbs(items) {
  $('#crumbs').innerHTML = items.map(([href, text]) =>
    href ? `<a href="${esc(href)}">${esc(text)}</a>` : `<span aria-current="page">${esc(text)}</span>`)
    .join('<span class="sep" aria-hidden="true">/</span>');
}

function show() {
  if (App.view && App.view.close) App.view.close();
  App.view = null;
  const hash = location.hash.replace(/^#/, '') || '/';
  for (const r of App.routes) {
    const m = hash.match(r.re);
    if (m) {
      App.view = r.make(...m.slice(1).map(decodeURIComponent));
      return;
    }
  }
  location.hash = '#/';
}

window.addEventListener('hashchange', show);
window.addEventListener('DOMContentLoaded', () => setTimeout(show, 0));

/* Retries load() until it works, while the view is the one shown. */
function loadWhile(view, load) {
  const attempt = async () => {
    if (App.view !== view || view.closed) return;
    try {
      await load();
    } catch (e) {
      if (e.status === 503 || e.status === 0) {
        view.retry = setTimeout(attempt, 1000);
        return;
      }
      $('#main').innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`;
    }
  };
  setTimeout(attempt, 0);
}

/* --- the project list ----------------------------------------------------- */

route(/^\/$/, () => {
  const view = { closed: false };
  let timer = null;
  crumbs([[null, 'Projects']]);
  const load = async () => {
    const r = await api('GET', 'projects');
    if (view.closed) return;
    const rows = r.projects.map(p => {
      const c = p.counts || {};
      const running = (c.spawning || 0) + (c.running || 0);
      return `<li class="project"><a href="#/p/${esc(p.id)}"><strong>${esc(p.name)}</strong>
        <span class="pid">${esc(p.id)}</span></a>
        <span class="mode ${p.autonomous_execution_enabled ? 'on' : 'off'}">${p.autonomous_execution_enabled ? 'Autonomous: ON' : 'Manual'}</span>
        <span class="muted">${c.waiting || 0} waiting · ${c.ready || 0} ready · ${running} running ·
        ${(c.completed || 0) + (c.skipped || 0)} done · ${(c.failed || 0) + (c.upstream_failed || 0) + (c.cancelled || 0)} failed</span></li>`;
    });
    $('#main').innerHTML = `<section class="page"><h1>Projects</h1>
      ${rows.length ? `<ul class="projects">${rows.join('')}</ul>` : '<p class="muted">No projects yet: <code>dagctl project create NAME</code>.</p>'}</section>`;
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(() => loadWhile(view, load), 300); };
  view.feed = new Feed('', later, later);
  view.close = () => { view.closed = true; view.feed.close(); clearTimeout(timer); clearTimeout(view.retry); };
  loadWhile(view, load);
  return view;
});

/* --- the board ------------------------------------------------------------ */

function projectTabs(id, current) {
  const tab = (href, text, name) =>
    `<a href="${href}"${name === current ? ' aria-current="page" class="current"' : ''}>${text}</a>`;
  return `<nav class="tabs" aria-label="Project views">${tab('#/p/' + esc(id), 'Board', 'board')}
    ${tab('#/p/' + esc(id) + '/graph', 'Graph', 'graph')}${tab('#/p/' + esc(id) + '/settings', 'Settings', 'settings')}</nav>`;
}

function cardHTML(t, now) {
  const status = t.status, retry = retryText(t, now);
  const why = (status === 'failed' || status === 'upstream_failed' || status === 'cancelled')
    ? `<span class="why">${esc(t.error_message || status.replace('_', ' '))}</span>` : '';
  const prio = t.priority === 'high' || t.priority === 'critical'
    ? `<b class="prio p-${t.priority}">${t.priority}</b>` : esc(t.priority);
  /* few elements a card: 10,000 of them must draw in well under a second */
  return `<li class="card s-${status}" data-id="${esc(t.id)}"><a href="#/t/${esc(t.id)}">` +
    `<span class="title">${esc(t.title)}</span><span class="meta">${esc(t.id)} · ` +
    `<b class="status">${esc(status.replace('_', ' '))}</b> · #${t.attempt} · ${prio} · ` +
    `<span class="age" title="time in status">${ago(t.status_changed_at, now)}</span></span>` +
    `${why}${retry ? `<span class="retry">${retry}</span>` : ''}` +
    `${status === 'awaiting_approval' ? '<b class="badge approval">awaiting approval</b>' : ''}</a></li>`;
}

class Board {
  constructor(pid) {
    this.pid = pid;
    this.tasks = new Map();
    this.cards = new Map();
    this.queue = [];
    this.flushing = false;
    this.closed = false;
    crumbs([['#/', 'Projects'], [null, pid]]);
    loadWhile(this, () => this.load());
    this.tick = setInterval(() => this.age(), 1000);
  }

  close() {
    this.closed = true;
    if (this.feed) this.feed.close();
    clearInterval(this.tick);
    clearTimeout(this.retry);
  }

  async load() {
    const t0 = performance.now();
    const r = await api('GET', `projects/${encodeURIComponent(this.pid)}/board`);
    if (this.closed) return;
    const t1 = performance.now();
    this.project = r.project;
    this.pid = r.project.id;
    this.tasks.clear();
    for (const t of r.tasks) this.tasks.set(t.id, t);
    crumbs([['#/', 'Projects'], [null, r.project.name]]);
    this.render();
    /* the time to the first frame drawn after it: the layout and paint count too */
    requestAnimationFrame(() => setTimeout(() => {
      window.boardTimes = { fetch: t1 - t0, render: performance.now() - t1, tasks: r.tasks.length };
    }, 0));
    if (!this.feed)
      this.feed = new Feed(`project=${encodeURIComponent(this.pid)}&since=${r.last_seq}`, ev => this.push(ev));
  }

  render() {
    const p = this.project;
    const lanes = LANES.map(l => `<section class="lane lane-${l.name}" data-lane="${l.name}" aria-labelledby="lane-${l.name}">
        <h2 id="lane-${l.name}">${l.title} <span class="count">0</span></h2><ol class="cards"></ol>
        <button type="button" class="more" hidden></button></section>`);
    $('#main').innerHTML = `<section class="board">
      <div class="board-head">
        <div class="board-title"><h1>${esc(p.name)}</h1><span class="pid">${esc(p.id)}</span>${projectTabs(p.id, 'board')}</div>
        <div class="actions">
          <button type="button" id="auto-toggle" class="switch" aria-pressed="false">
            <span class="track" aria-hidden="true"><span class="knob"></span></span>
            <span>Autonomous</span> <span class="state"></span></button>
          <button type="button" id="process" class="btn"></button>
        </div>
      </div>
      <p class="counts" id="counts"></p>
      <p class="error" id="board-error" role="alert" hidden></p>
      <div class="lanes">${lanes.join('')}</div></section>`;
    this.cards.clear();
    this.lists = {};
    this.limit = {};
    for (const sec of document.querySelectorAll('.lane')) {
      const name = sec.dataset.lane;
      this.lists[name] = $('.cards', sec);
      this.limit[name] = LANE_CARDS;
      $('.more', sec).addEventListener('click', () => { this.limit[name] += LANE_CARDS; this.renderLane(name, true); this.header(); });
      this.renderLane(name);
    }
    $('#auto-toggle').addEventListener('click', () => this.setAutonomous(!this.project.autonomous_execution_enabled));
    $('#process').addEventListener('click', () => this.project.autonomous_execution_enabled
      ? this.setAutonomous(false) : this.start());
    this.header();
  }

  /* Draws a lane anew: its first this.limit cards, in order (the newest
   * first in done and failed, else by id); "Show more" draws more. */
  renderLane(name, append) {
    const l = LANES.find(x => x.name === name), list = this.lists[name], now = Date.now();
    const ts = [];
    for (const t of this.tasks.values())
      if (LANE_OF[t.status] === name) ts.push(t);
    ts.sort(l.recent ? (a, b) => (b.status_changed_at || '').localeCompare(a.status_changed_at || '') || num(b.id) - num(a.id)
      : (a, b) => num(a.id) - num(b.id));
    if (append) {
      /* the cards shown are the first of the lane: the next ones go after them */
      const from = list.children.length;
      list.insertAdjacentHTML('beforeend', ts.slice(from, this.limit[name]).map(t => cardHTML(t, now)).join(''));
      for (let i = from; i < list.children.length; i++) this.cards.set(list.children[i].dataset.id, list.children[i]);
      return;
    }
    for (const li of list.children) this.cards.delete(li.dataset.id);
    list.innerHTML = ts.slice(0, this.limit[name]).map(t => cardHTML(t, now)).join('');
    for (const li of list.children) this.cards.set(li.dataset.id, li);
  }

  counts() {
    const c = {};
    LANES.forEach(l => { c[l.name] = 0; });
    for (const t of this.tasks.values()) {
      const l = LANE_OF[t.status];
      if (l) c[l]++;
    }
    return c;
  }

  /* The spec's header: "Autonomous: ON" and the running count, outlined
   * green with a pause icon; or "Start Processing" and the processable
   * count, filled green with a play icon. */
  header() {
    const on = !!this.project.autonomous_execution_enabled, c = this.counts();
    const tg = $('#auto-toggle'), b = $('#process');
    if (!tg) return;
    tg.setAttribute('aria-pressed', String(on));
    $('.state', tg).textContent = on ? 'On' : 'Off';
    b.className = 'btn ' + (on ? 'btn-auto' : 'btn-process');
    if (on) {
      b.innerHTML = `${ICONS.pause}<span class="label">Autonomous: ON</span><span class="badge badge-on" title="running tasks">${c.running}</span>`;
      b.setAttribute('aria-label', `Autonomous: ON, ${c.running} running; pause autonomous mode`);
    } else {
      b.innerHTML = `${ICONS.play}<span class="label">Start Processing</span>` +
        (c.ready > 0 ? `<span class="badge" title="ready tasks">${c.ready}</span>` : '');
      b.setAttribute('aria-label', `Start Processing, ${c.ready} ready`);
    }
    const total = this.tasks.size;
    $('#counts').textContent = LANES.map(l => `${l.name} ${c[l.name]}`).join(' · ') + `  (${total} task${total === 1 ? '' : 's'})`;
    for (const l of LANES) {
      const h = $(`#lane-${l.name} .count`), more = $(`.lane-${l.name} .more`);
      if (h) h.textContent = c[l.name];
      const hidden = c[l.name] - this.lists[l.name].children.length;
      more.hidden = hidden <= 0;
      more.textContent = `Show ${Math.min(hidden, LANE_CARDS)} more (${hidden} not shown)`;
    }
  }

  async act(fn, done) {
    const err = $('#board-error');
    try {
      const r = await fn();
      err.hidden = true;
      if (done) say(done(r));
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  setAutonomous(on) {
    return this.act(() => api('POST', `projects/${encodeURIComponent(this.pid)}/autonomous`, { enabled: on }),
      r => { this.project = r.project; this.header(); return on ? 'Autonomous mode on' : 'Autonomous mode off'; });
  }

  start() {
    return this.act(() => api('POST', `projects/${encodeURIComponent(this.pid)}/start`),
      r => `Released ${r.released.length} task${r.released.length === 1 ? '' : 's'}`);
  }

  /* Events are gathered and applied once per frame. */
  push(ev) {
    this.queue.push(ev);
    if (this.flushing) return;
    this.flushing = true;
    const go = () => { if (this.flushing) this.flush(); };
    requestAnimationFrame(go);
    setTimeout(go, 100);
  }

  flush() {
    const t0 = performance.now();
    this.flushing = false;
    const evs = this.queue;
    this.queue = [];
    const dirty = new Set();
    let head = false;
    for (const ev of evs) {
      const p = ev.payload || {};
      let t = p.task_id && this.tasks.get(p.task_id);
      switch (ev.type) {
        case 'TASK_CREATED':
          this.tasks.set(p.task.id, p.task);
          dirty.add(p.task.id);
          break;
        case 'TASK_STATUS_CHANGED':
          if (!t) break;
          t.status = p.new_status;
          t.status_changed_at = ev.time;
          if (p.attempt != null) t.attempt = p.attempt;
          if (p.new_status !== 'ready') t.not_before = null;
          dirty.add(t.id);
          break;
        case 'TASK_COMPLETED':
          if (t) { t.result = p.result; t.error_message = null; dirty.add(t.id); }
          break;
        case 'TASK_FAILED':
          if (t) {
            t.error_message = p.error_message;
            t.not_before = p.will_retry ? p.retry_at : null;
            dirty.add(t.id);
          }
          break;
        case 'TASK_DEPENDENCY_UPDATED':
          if (t) t.depends_on = p.depends_on;
          break;
        case 'TASK_UPDATED':
          /* held, released or edited: the task as it is now */
          if (t && p.task) { this.tasks.set(t.id, p.task); dirty.add(t.id); }
          break;
        case 'TASK_REMOVED':
          if (!t) break;
          this.tasks.delete(t.id);
          dirty.delete(t.id);
          if (this.cards.get(t.id)) { this.cards.get(t.id).remove(); this.cards.delete(t.id); }
          head = true;
          break;
        case 'AUTONOMOUS_MODE_CHANGED':
          this.project.autonomous_execution_enabled = p.enabled;
          head = true;
          break;
        case 'PROJECT_UPDATED':
          if (p.project) { this.project = p.project; head = true; }
          break;
        case 'PROJECT_DELETED':
          $('#board-error').textContent = 'This project was deleted.';
          $('#board-error').hidden = false;
          break;
      }
    }
    const now = Date.now();
    for (const id of dirty) this.place(this.tasks.get(id), now);
    if (dirty.size) {
      const c = this.counts();
      for (const l of LANES) {
        const shown = this.lists[l.name].children.length;
        if (c[l.name] > shown && shown < this.limit[l.name]) this.renderLane(l.name, true);
      }
    }
    if (dirty.size || head) this.header();
    /* what it cost, for whoever watches (the tests) */
    const st = window.boardStats = window.boardStats || { flushes: 0, events: 0, maxFlushMs: 0 };
    st.flushes++;
    st.events += evs.length;
    st.maxFlushMs = Math.max(st.maxFlushMs, performance.now() - t0);
  }

  /* Puts a task's card in its lane and place, drawn anew; a lane shows at
   * most this.limit cards, and a card past them is not drawn. */
  place(t, now) {
    const old = this.cards.get(t.id), laneName = LANE_OF[t.status], list = this.lists[laneName];
    const focused = old && old.contains(document.activeElement);
    if (old) old.remove();
    this.cards.delete(t.id);
    if (!list) return;
    const lane = LANES.find(l => l.name === laneName), kids = list.children;
    let at = 0;
    if (!lane.recent) {
      /* by id: a binary search over the lane's cards */
      const n = num(t.id);
      let hi = kids.length;
      while (at < hi) {
        const mid = (at + hi) >> 1;
        if (num(kids[mid].dataset.id) < n) at = mid + 1; else hi = mid;
      }
      if (at >= this.limit[laneName]) return;
    }
    const tmp = document.createElement('template');
    tmp.innerHTML = cardHTML(t, now);
    const li = tmp.content.firstChild;
    list.insertBefore(li, kids[at] || null);
    this.cards.set(t.id, li);
    if (kids.length > this.limit[laneName]) {
      this.cards.delete(list.lastElementChild.dataset.id);
      list.lastElementChild.remove();
    }
    if (focused) $('a', li).focus();
  }

  /* The times on the cards age; retry countdowns count down. */
  age() {
    if (!this.lists) return;
    const now = Date.now();
    for (const name of ['ready', 'running', 'validating']) {
      const list = this.lists[name];
      if (!list || list.children.length > 2000) continue;
      for (const li of list.children) {
        const t = this.tasks.get(li.dataset.id);
        if (!t) continue;
        $('.age', li).textContent = ago(t.status_changed_at, now);
        const retry = retryText(t, now), r = $('.retry', li);
        if (r) r.textContent = retry;
        else if (retry) $('a', li).insertAdjacentHTML('beforeend', `<span class="retry">${retry}</span>`);
      }
    }
  }
}

route(/^\/p\/([^/]+)$/, pid => new Board(pid));
