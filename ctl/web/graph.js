/*
 * graph.js - a project's DAG as an SVG drawing laid out in layers: a task's
 * layer is one more than its deepest dependency's, tasks in a layer are
 * ordered by where their dependencies stand (one barycentre sweep), edges run
 * from a dependency down to its dependent.  Node colours and the status word
 * on each node follow the events; a node is a link to its task.
 */
'use strict';

const NODE_W = 168, NODE_H = 44, GAP_X = 24, GAP_Y = 56, PAD = 16;

function layout(tasks) {
  const byId = new Map(tasks.map(t => [t.id, t]));
  const layer = new Map();
  const depth = id => {
    if (layer.has(id)) return layer.get(id);
    layer.set(id, 0);                       /* a cycle cannot be, but never loop */
    const t = byId.get(id);
    let d = 0;
    for (const dep of (t && t.depends_on) || [])
      if (byId.has(dep)) d = Math.max(d, depth(dep) + 1);
    layer.set(id, d);
    return d;
  };
  tasks.forEach(t => depth(t.id));
  const layers = [];
  for (const t of [...tasks].sort((a, b) => num(a.id) - num(b.id))) {
    const d = layer.get(t.id);
    (layers[d] = layers[d] || []).push(t);
  }
  const pos = new Map();
  layers.forEach((ts, d) => {
    if (d > 0) {
      const bary = t => {
        const xs = (t.depends_on || []).filter(x => pos.has(x)).map(x => pos.get(x).i);
        return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
      };
      ts.sort((a, b) => bary(a) - bary(b) || num(a.id) - num(b.id));
    }
    ts.forEach((t, i) => pos.set(t.id, { i, d, x: PAD + i * (NODE_W + GAP_X), y: PAD + d * (NODE_H + GAP_Y) }));
  });
  const width = PAD * 2 + Math.max(1, ...layers.map(l => l.length)) * (NODE_W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(1, layers.length) * (NODE_H + GAP_Y) - GAP_Y;
  return { pos, width, height };
}

function graphSVG(tasks) {
  const { pos, width, height } = layout(tasks);
  const edges = [], nodes = [];
  for (const t of tasks) {
    const b = pos.get(t.id);
    for (const dep of t.depends_on || []) {
      const a = pos.get(dep);
      if (!a) continue;
      const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y;
      const my = (y1 + y2) / 2;
      edges.push(`<path class="edge" marker-end="url(#arrow)" d="M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}"/>`);
    }
    const title = t.title.length > 22 ? t.title.slice(0, 21) + '…' : t.title;
    nodes.push(`<a href="#/t/${esc(t.id)}" class="node s-${esc(t.status)}" data-id="${esc(t.id)}" aria-label="${esc(t.id)} ${esc(t.title)}: ${esc(t.status)}">
      <rect x="${b.x}" y="${b.y}" width="${NODE_W}" height="${NODE_H}" rx="6"/>
      <text x="${b.x + 8}" y="${b.y + 18}" class="node-title">${esc(title)}</text>
      <text x="${b.x + 8}" y="${b.y + 35}" class="node-meta">${esc(t.id)} · ${esc(t.status.replace('_', ' '))}</text></a>`);
  }
  return `<svg class="graph" role="img" aria-label="Dependency graph" width="${width}" height="${height}"
    viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
    <path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>
    <g class="edges">${edges.join('')}</g><g class="nodes">${nodes.join('')}</g></svg>`;
}

class GraphPage {
  constructor(pid) {
    this.pid = pid;
    this.closed = false;
    crumbs([['#/', 'Projects'], ['#/p/' + pid, pid], [null, 'Graph']]);
    loadWhile(this, () => this.load(true));
  }

  close() {
    this.closed = true;
    if (this.feed) this.feed.close();
    clearTimeout(this.timer);
    clearTimeout(this.retry);
  }

  async load(first) {
    const r = await api('GET', `projects/${encodeURIComponent(this.pid)}/board`);
    if (this.closed) return;
    const p = r.project;
    crumbs([['#/', 'Projects'], ['#/p/' + p.id, p.name], [null, 'Graph']]);
    $('#main').innerHTML = `<section class="page"><div class="board-title"><h1>${esc(p.name)}</h1>
      <span class="pid">${esc(p.id)}</span>${projectTabs(p.id, 'graph')}</div>
      <div class="graph-wrap" tabindex="0" aria-label="Dependency graph, scrollable">${graphSVG(r.tasks)}</div></section>`;
    if (first)
      this.feed = new Feed(`project=${encodeURIComponent(p.id)}&since=${r.last_seq}`, ev => {
        if (ev.entity === 'task') {
          clearTimeout(this.timer);
          this.timer = setTimeout(() => loadWhile(this, () => this.load(false)), 250);
        }
      });
  }
}

route(/^\/p\/([^/]+)\/graph$/, pid => new GraphPage(pid));
