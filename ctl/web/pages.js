/*
 * pages.js - the pages of the dagd board beside the board itself: a task
 * (its command, dependencies and dependents, attempts, result, error, and
 * its log following live, with start, cancel and retry) and a project's
 * settings (the autonomous switch and max_concurrency).  Both follow the
 * project's events and draw themselves anew when they matter.
 */
'use strict';

/* --- a task --------------------------------------------------------------- */

function taskLinks(ids) {
  if (!ids || !ids.length) return '<span class="muted">none</span>';
  return ids.map(id => `<a href="#/t/${esc(id)}">${esc(id)}</a>`).join(', ');
}

class TaskPage {
  constructor(id) {
    this.id = id;
    this.closed = false;
    this.attempt = null;        /* the attempt whose log is shown */
    this.log = null;
    crumbs([['#/', 'Projects'], [null, id]]);
    loadWhile(this, () => this.load(true));
  }

  close() {
    this.closed = true;
    if (this.feed) this.feed.close();
    if (this.log) this.log.close();
    clearTimeout(this.timer);
    clearTimeout(this.retry);
  }

  async load(first) {
    const r = await api('GET', `tasks/${encodeURIComponent(this.id)}`);
    if (this.closed) return;
    const t = this.task = r.task;
    if (first) {
      crumbs([['#/', 'Projects'], ['#/p/' + t.project_id, t.project_id], [null, t.id]]);
      api('GET', `projects/${encodeURIComponent(t.project_id)}`).then(r => {
        if (!this.closed) crumbs([['#/', 'Projects'], ['#/p/' + t.project_id, r.project.name], [null, t.id]]);
      }, () => {});
      this.feed = new Feed(`project=${encodeURIComponent(t.project_id)}`, ev => {
        if (ev.entity_id === this.id || (ev.payload && ev.payload.task_id === this.id)) this.later();
      }, () => this.later());
    }
    this.draw();
  }

  later() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => loadWhile(this, () => this.load(false)), 150);
  }

  draw() {
    const t = this.task;
    const command = Array.isArray(t.command) ? t.command.map(a => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ') : t.command;
    const finished = FINISHED.includes(t.status);
    const canStart = t.status === 'ready' && !t.released;
    const canRetry = ['failed', 'cancelled', 'upstream_failed'].includes(t.status);
    const attempts = [];
    for (let a = t.attempt; a >= 1; a--)
      attempts.push(`<li><button type="button" class="link" data-attempt="${a}" aria-pressed="${a === (this.attempt || t.attempt)}">attempt ${a}</button></li>`);
    const first = !$('#task-page');
    const html = `<section class="page task" id="task-page">
      <h1>${esc(t.title)} <span class="pid">${esc(t.id)}</span></h1>
      <p><span class="status-pill s-${esc(t.status)}">${esc(t.status.replace('_', ' '))}</span>
        <span class="muted">attempt ${t.attempt}${t.max_retries ? ' of ' + (t.max_retries + 1) : ''} · priority ${esc(t.priority)}
        · ${ago(t.status_changed_at, Date.now())} in status</span>
        <span class="retry">${retryText(t, Date.now())}</span></p>
      <div class="task-actions">
        <button type="button" class="btn btn-small" id="act-start" ${canStart ? '' : 'disabled'}>Start</button>
        <button type="button" class="btn btn-small btn-danger" id="act-cancel" ${finished ? 'disabled' : ''}>Cancel</button>
        <button type="button" class="btn btn-small" id="act-retry" ${canRetry ? '' : 'disabled'}>Retry</button>
        ${t.status === 'awaiting_approval' ? `<button type="button" class="btn btn-small" id="act-approve">Approve</button>
        <button type="button" class="btn btn-small btn-danger" id="act-reject">Reject</button>` : ''}
      </div>
      <p class="error" id="task-error" role="alert" hidden></p>
      <dl class="facts">
        <dt>Command</dt><dd><pre class="command">${esc(command)}</pre></dd>
        <dt>Depends on</dt><dd>${taskLinks(t.depends_on)}</dd>
        <dt>Dependents</dt><dd>${taskLinks(t.dependents)}</dd>
        <dt>Executor</dt><dd>${esc(t.executor || 'the project\'s')}${t.sandbox_id ? ' · sandbox ' + esc(t.sandbox_id) : ''}</dd>
        <dt>Result</dt><dd>${t.result == null ? '<span class="muted">none</span>' : `<pre>${esc(JSON.stringify(t.result, null, 2))}</pre>`}</dd>
        <dt>Error</dt><dd>${t.error_message ? `<span class="why">${esc(t.error_message)}</span>` : '<span class="muted">none</span>'}</dd>
        <dt>Attempts</dt><dd>${attempts.length ? `<ul class="attempts">${attempts.join('')}</ul>` : '<span class="muted">not started yet</span>'}</dd>
      </dl>
      <h2>Log <span class="muted" id="log-state"></span></h2>
      <pre class="log" id="log" tabindex="0" aria-label="Task output" aria-live="off"></pre></section>`;
    const logText = first ? '' : $('#log').textContent;
    $('#main').innerHTML = html;
    $('#log').textContent = logText;
    $('#act-start').onclick = () => this.act('start');
    $('#act-cancel').onclick = () => this.act('cancel');
    $('#act-retry').onclick = () => this.act('retry');
    if ($('#act-approve')) {
      $('#act-approve').onclick = () => this.act('approve');
      $('#act-reject').onclick = () => {
        const message = window.prompt('Why is it rejected?');
        if (message) this.act('reject', { message });
      };
    }
    for (const b of document.querySelectorAll('[data-attempt]'))
      b.onclick = () => this.follow(parseInt(b.dataset.attempt, 10), true);
    /* a new attempt's log is followed when it starts */
    if (t.attempt > 0 && (this.attempt == null || (this.attempt < t.attempt && this.following)))
      this.follow(t.attempt, false);
    else
      $('#log-state').textContent = this.logState || '';
  }

  async act(what, body) {
    try {
      await api('POST', `tasks/${encodeURIComponent(this.id)}/${what}`, body);
      say({ start: 'Started', cancel: 'Cancelled', retry: 'Retried', approve: 'Approved', reject: 'Rejected' }[what] + ' ' + this.id);
      this.later();
    } catch (e) {
      $('#task-error').textContent = e.message;
      $('#task-error').hidden = false;
    }
  }

  /* Follows one attempt's log: what is there, then what comes. */
  follow(attempt, chosen) {
    if (this.log) this.log.close();
    this.attempt = attempt;
    this.following = !chosen || attempt === this.task.attempt;
    const pre = $('#log');
    pre.textContent = '';
    for (const b of document.querySelectorAll('[data-attempt]'))
      b.setAttribute('aria-pressed', String(parseInt(b.dataset.attempt, 10) === attempt));
    const state = s => { this.logState = s; const e = $('#log-state'); if (e) e.textContent = s; };
    state(`(attempt ${attempt}, following)`);
    const es = this.log = new EventSource(`/api/v1/tasks/${encodeURIComponent(this.id)}/log-stream?attempt=${attempt}`);
    es.onmessage = m => {
      const d = JSON.parse(m.data), p = $('#log');
      if (!p) return;
      const atEnd = p.scrollTop + p.clientHeight >= p.scrollHeight - 4;
      if (d.lines && d.lines.length) p.append(d.lines.map(l => l + '\n').join(''));
      if (atEnd) p.scrollTop = p.scrollHeight;
      if (d.end) {
        es.close();
        state(`(attempt ${attempt}, ended${d.status ? ': ' + d.status.replace('_', ' ') : ''})`);
      }
    };
    es.addEventListener('failed', m => { es.close(); state('(' + JSON.parse(m.data).message + ')'); });
  }
}

route(/^\/t\/([^/]+)$/, id => new TaskPage(id));

/* --- a project's settings ------------------------------------------------- */

class SettingsPage {
  constructor(pid) {
    this.pid = pid;
    this.closed = false;
    crumbs([['#/', 'Projects'], ['#/p/' + pid, pid], [null, 'Settings']]);
    loadWhile(this, () => this.load(true));
  }

  close() {
    this.closed = true;
    if (this.feed) this.feed.close();
    clearTimeout(this.retry);
  }

  async load(first) {
    const r = await api('GET', `projects/${encodeURIComponent(this.pid)}`);
    if (this.closed) return;
    this.project = r.project;
    if (first) {
      this.draw();
      this.feed = new Feed(`project=${encodeURIComponent(r.project.id)}`, ev => {
        if (ev.type === 'AUTONOMOUS_MODE_CHANGED') { this.project.autonomous_execution_enabled = ev.payload.enabled; this.sync(); }
        if (ev.type === 'PROJECT_UPDATED' && ev.payload.project) { this.project = ev.payload.project; this.sync(); }
      });
    }
    this.sync();
  }

  draw() {
    const p = this.project;
    crumbs([['#/', 'Projects'], ['#/p/' + p.id, p.name], [null, 'Settings']]);
    $('#main').innerHTML = `<section class="page settings"><div class="board-title"><h1>${esc(p.name)}</h1>
      <span class="pid">${esc(p.id)}</span>${projectTabs(p.id, 'settings')}</div>
      <h2>Agent Defaults</h2>
      <div class="setting">
        <div><strong id="auto-label">Autonomous execution</strong>
          <p class="muted" id="auto-help">When on, tasks start by themselves as soon as their dependencies complete.
          When off, nothing runs until someone presses Start Processing.</p></div>
        <button type="button" id="settings-auto" class="switch" aria-pressed="false" aria-labelledby="auto-label" aria-describedby="auto-help">
          <span class="track" aria-hidden="true"><span class="knob"></span></span><span class="state"></span></button>
      </div>
      <form class="setting" id="conc-form">
        <label for="max-conc"><strong>Max concurrency</strong>
          <span class="muted">tasks of this project that may run at once</span></label>
        <span><input id="max-conc" type="number" min="1" step="1" required>
        <button type="submit" class="btn btn-small">Save</button></span>
      </form>
      <p class="error" id="settings-error" role="alert" hidden></p></section>`;
    $('#settings-auto').onclick = () => this.save({ autonomous_execution_enabled: !this.project.autonomous_execution_enabled });
    $('#conc-form').onsubmit = e => {
      e.preventDefault();
      this.save({ max_concurrency: parseInt($('#max-conc').value, 10) });
    };
    $('#max-conc').value = p.max_concurrency;
  }

  sync() {
    const sw = $('#settings-auto');
    if (!sw) return;
    const on = !!this.project.autonomous_execution_enabled;
    sw.setAttribute('aria-pressed', String(on));
    $('.state', sw).textContent = on ? 'On' : 'Off';
    if (document.activeElement !== $('#max-conc')) $('#max-conc').value = this.project.max_concurrency;
  }

  async save(change) {
    try {
      const r = await api('POST', `projects/${encodeURIComponent(this.project.id)}/settings`, change);
      this.project = r.project;
      $('#settings-error').hidden = true;
      say('Saved');
      this.sync();
    } catch (e) {
      $('#settings-error').textContent = e.message;
      $('#settings-error').hidden = false;
    }
  }
}

route(/^\/p\/([^/]+)\/settings$/, pid => new SettingsPage(pid));
