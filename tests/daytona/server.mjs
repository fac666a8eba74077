// server.mjs - a loopback Daytona, for the tests of the daytona executor.
//
//   node server.mjs --key KEY [--port N] [--specs DIR] [--exit-with-stdin]
//
// Prints "listening PORT" once it listens on 127.0.0.1.  It serves the part
// of Daytona's API the executor and the SDK's basic calls use, with the
// toolbox of each sandbox under /toolbox-proxy/{sandboxId} (its
// toolboxProxyUrl is http://127.0.0.1:PORT/toolbox-proxy):
//
//   POST /sandbox, GET /sandbox (labels, cursor), GET/DELETE /sandbox/{id},
//   GET /sandbox/{id}/toolbox-proxy-url
//   toolbox: /process/execute, /process/session (create, list, get, delete),
//   /process/session/{sid}/exec (runAsync: 202), .../command/{cmdId},
//   .../command/{cmdId}/logs (plain text, or JSON for SDKs >= 0.167.0),
//   /files/download, /files/info, /files/upload (multipart/form-data)
//
// Every request is checked against the two specs (DIR: the directory of
// daytona-api-openapi.yaml and daytona-toolbox-swagger.yaml): a path and
// method the spec has, its required parameters, and its body's required
// fields and types.  A request that fails the check is answered 400 and
// recorded; so is an answer of the server's own that is not as the spec
// says; GET /_test/violations lists them.  Everything under /_test/ is
// the tests' own and needs no key.
//
// Sandboxes follow Daytona's states: creating (pending_build and
// building_snapshot from an image) -> starting -> started; delete goes
// destroying -> destroyed.  A command really runs, as a local process with
// the sandbox's env, in a directory that stands for the sandbox's file
// system: an absolute path P in the file API, and in DAGD_RESULT_FILE and
// DAGD_INPUTS, is that directory + P.
//
// Faults, for the tests (POST /_test/faults {...}, merged into the current):
//   latencyMs     every answer delayed so long
//   rate429       every Nth API or toolbox request answered 429
//   rate500       every Nth toolbox command poll answered 500
//   startMs       how long a sandbox takes to start (default 100)
// and per sandbox, by its label "test.fault":
//   build_failed  the build fails (state build_failed, errorReason)
//   error         starting fails (state error)
//   die           the sandbox dies (state error) once its command has run
//                 for a little while; the toolbox then answers 502
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadSpecs } from './spec.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const KEY = opt('key', 'test-key');
const PORT = Number(opt('port', '0'));
const SPECS = opt('specs', process.env.DAYTONA_SPECS || '');
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'daytona-loopback-'));

const spec = loadSpecs(SPECS);
const sandboxes = new Map();
const violations = [];
const uploads = [];
const log = [];                 // every request: method, path, status
let faults = { latencyMs: 0, rate429: 0, rate500: 0, startMs: 100 };
let counter429 = 0, counter500 = 0;
let base = '';

const now = () => new Date().toISOString();

function sandboxView(s) {
  const v = {
    id: s.id, organizationId: 'org-loopback', name: s.name, snapshot: s.snapshot, user: s.user,
    env: s.env, labels: s.labels, public: false, networkBlockAll: s.networkBlockAll,
    target: s.target, cpu: s.cpu, gpu: s.gpu, memory: s.memory, disk: s.disk, state: s.state,
    desiredState: s.desiredState, autoStopInterval: s.autoStopInterval,
    autoArchiveInterval: 10080, autoDeleteInterval: s.autoDeleteInterval,
    createdAt: s.createdAt, updatedAt: s.updatedAt, toolboxProxyUrl: `${base}/toolbox-proxy`,
    recoverable: false, backupState: 'None',
  };
  if (s.networkAllowList !== undefined) v.networkAllowList = s.networkAllowList;
  if (s.errorReason) v.errorReason = s.errorReason;
  return v;
}

// A sandbox as GET /sandbox lists it (SandboxListItem: no env, no network settings).
function listItemView(s) {
  const { env, networkBlockAll, networkAllowList, ...v } = sandboxView(s);
  return v;
}

function setState(s, state, errorReason) {
  s.state = state;
  s.updatedAt = now();
  if (errorReason) s.errorReason = errorReason;
  if (state === 'error' || state === 'build_failed' || state === 'destroyed') {
    for (const sess of s.sessions.values())
      for (const c of sess.commands.values())
        if (c.proc && c.exitCode === undefined) killCommand(c);
  }
}

// A command runs in a process group of its own: all of it goes.
function killCommand(c) {
  try { process.kill(-c.proc.pid, 'SIGKILL'); } catch { /* gone */ }
}

function later(ms, fn) {
  setTimeout(fn, ms).unref?.();
}

function createSandbox(body) {
  const resources = ['cpu', 'gpu', 'memory', 'disk'].filter((k) => body[k] !== undefined);
  if (body.snapshot && resources.length)
    return [400, { statusCode: 400, message: 'Cannot specify Sandbox resources when using a snapshot', error: 'Bad Request' }];
  const id = randomUUID();
  const dir = path.join(ROOT, id);
  fs.mkdirSync(path.join(dir, 'home', 'daytona'), { recursive: true });
  const s = {
    id, dir, name: body.name || id, snapshot: body.snapshot || (body.buildInfo ? undefined : 'daytonaio/sandbox:latest'),
    user: body.user || 'daytona', env: body.env || {}, labels: body.labels || {},
    networkBlockAll: !!body.networkBlockAll, networkAllowList: body.networkAllowList,
    target: body.target || 'us', cpu: body.cpu ?? 1, gpu: body.gpu ?? 0, memory: body.memory ?? 1,
    disk: body.disk ?? 3, autoStopInterval: body.autoStopInterval ?? 15,
    autoDeleteInterval: body.autoDeleteInterval ?? -1, state: 'creating', desiredState: 'started',
    createdAt: now(), updatedAt: now(), sessions: new Map(), lastActivity: Date.now(),
  };
  sandboxes.set(id, s);
  const fault = s.labels['test.fault'];
  const step = Math.max(1, Math.floor(faults.startMs / 2));
  if (body.buildInfo) {
    setState(s, 'pending_build');
    later(step, () => {
      if (s.state !== 'pending_build') return;
      if (fault === 'build_failed') return setState(s, 'build_failed', 'Dockerfile build failed: no such image');
      setState(s, 'building_snapshot');
      later(step, () => s.state === 'building_snapshot' && startSandbox(s, fault));
    });
  } else {
    later(step, () => s.state === 'creating' && startSandbox(s, fault));
  }
  return [200, sandboxView(s)];
}

function startSandbox(s, fault) {
  setState(s, 'starting');
  later(Math.max(1, Math.floor(faults.startMs / 2)), () => {
    if (s.state !== 'starting') return;
    if (fault === 'error') return setState(s, 'error', 'Failed to start the sandbox: no capacity');
    setState(s, 'started');
    watchAutoStop(s);
  });
}

// Auto-stop: only toolbox calls count as activity.
function watchAutoStop(s) {
  const timer = setInterval(() => {
    if (s.state !== 'started') return clearInterval(timer);
    if (s.autoStopInterval > 0 && Date.now() - s.lastActivity > s.autoStopInterval * 60000) {
      setState(s, 'stopped');
      clearInterval(timer);
    }
  }, 1000);
  timer.unref();
}

function deleteSandbox(s) {
  if (s.state === 'destroyed' || s.state === 'destroying') return;
  s.desiredState = 'destroyed';
  setState(s, 'destroying');
  later(50, () => {
    setState(s, 'destroyed');
    fs.rmSync(s.dir, { recursive: true, force: true });
  });
}

function listSandboxes(q) {
  let labels = {};
  if (q.labels) {
    try { labels = JSON.parse(q.labels); } catch { return [400, { statusCode: 400, message: 'labels must be JSON' }]; }
  }
  const all = [...sandboxes.values()].filter((s) =>
    (q.includeErroredDeleted === 'true' || (s.state !== 'destroyed' && s.state !== 'destroying')) &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  const limit = Math.min(Number(q.limit || 100), 200);
  const start = q.cursor ? Number(q.cursor) : 0;
  const items = all.slice(start, start + limit).map(listItemView);
  return [200, { items, nextCursor: start + limit < all.length ? String(start + limit) : null }];
}

// ---- the toolbox ----

function inside(s, p) {
  return path.join(s.dir, path.resolve('/', p));
}

function runCommand(s, command, env) {
  const vars = { ...s.env, ...(env || {}), HOME: path.join(s.dir, 'home', 'daytona'), PATH: process.env.PATH };
  if (vars.DAGD_RESULT_FILE) vars.DAGD_RESULT_FILE = inside(s, vars.DAGD_RESULT_FILE);
  if (vars.DAGD_INPUTS) vars.DAGD_INPUTS = inside(s, vars.DAGD_INPUTS);
  fs.mkdirSync(path.join(s.dir, 'tmp'), { recursive: true });
  const c = { id: randomUUID(), command, output: '', stdout: '', stderr: '', exitCode: undefined };
  c.proc = spawn('/bin/sh', ['-c', command], { cwd: vars.HOME, env: vars, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  c.proc.stdout.on('data', (d) => { c.stdout += d; c.output += d; });
  c.proc.stderr.on('data', (d) => { c.stderr += d; c.output += d; });
  c.done = new Promise((resolve) => c.proc.on('close', (code, sig) => {
    c.exitCode = code ?? 128 + (os.constants.signals[sig] || 9);
    c.proc = null;
    resolve();
  }));
  if (s.labels['test.fault'] === 'die')
    later(300, () => s.state === 'started' && setState(s, 'error', 'The sandbox died: its runner is gone'));
  return c;
}

function commandView(c) {
  const v = { id: c.id, command: c.command };
  if (c.exitCode !== undefined) v.exitCode = c.exitCode;
  return v;
}

function sdkVersionAtLeast(req, want) {
  const v = req.headers['x-daytona-sdk-version'];
  if (!v) return false;
  const a = v.split('.').map(Number), b = want.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] || 0) !== b[i]) return (a[i] || 0) > b[i];
  return true;
}

async function toolbox(req, s, rest, q, body) {
  if (s.state !== 'started')
    return [502, { statusCode: 502, message: `sandbox is ${s.state}` }];
  s.lastActivity = Date.now();
  let m;
  if (req.method === 'POST' && rest === '/process/execute') {
    const c = runCommand(s, body.command, body.envs);
    await c.done;
    return [200, { exitCode: c.exitCode, result: c.output }];
  }
  if (rest === '/process/session' && req.method === 'POST') {
    if (s.sessions.has(body.sessionId)) return [409, { statusCode: 409, message: 'session already exists' }];
    s.sessions.set(body.sessionId, { commands: new Map() });
    return [201, null];
  }
  if (rest === '/process/session' && req.method === 'GET')
    return [200, [...s.sessions].map(([id, x]) => ({ sessionId: id, commands: [...x.commands.values()].map(commandView) }))];
  if ((m = rest.match(/^\/process\/session\/([^/]+)$/))) {
    const sess = s.sessions.get(decodeURIComponent(m[1]));
    if (!sess) return [404, { statusCode: 404, message: 'session not found' }];
    if (req.method === 'DELETE') { s.sessions.delete(decodeURIComponent(m[1])); return [204, null]; }
    return [200, { sessionId: decodeURIComponent(m[1]), commands: [...sess.commands.values()].map(commandView) }];
  }
  if ((m = rest.match(/^\/process\/session\/([^/]+)\/exec$/))) {
    const sess = s.sessions.get(decodeURIComponent(m[1]));
    if (!sess) return [404, { statusCode: 404, message: 'session not found' }];
    const c = runCommand(s, body.command);
    sess.commands.set(c.id, c);
    if (body.runAsync || body.async) return [202, { cmdId: c.id }];
    await c.done;
    return [200, { cmdId: c.id, output: c.output, stdout: c.stdout, stderr: c.stderr, exitCode: c.exitCode }];
  }
  if ((m = rest.match(/^\/process\/session\/([^/]+)\/command\/([^/]+)(\/logs)?$/))) {
    const sess = s.sessions.get(decodeURIComponent(m[1]));
    const c = sess && sess.commands.get(decodeURIComponent(m[2]));
    if (!c) return [404, { statusCode: 404, message: 'command not found' }];
    if (!m[3]) {
      if (faults.rate500 && ++counter500 % faults.rate500 === 0)
        return [500, { statusCode: 500, message: 'injected failure' }];
      return [200, commandView(c)];
    }
    if (sdkVersionAtLeast(req, '0.167.0')) return [200, { output: c.output, stdout: c.stdout, stderr: c.stderr }];
    return [200, c.output, 'text/plain'];
  }
  if (rest === '/files/download' && req.method === 'GET') {
    try {
      return [200, fs.readFileSync(inside(s, q.path)), 'application/octet-stream'];
    } catch {
      return [404, { statusCode: 404, message: `file not found: ${q.path}` }];
    }
  }
  if (rest === '/files/upload' && req.method === 'POST') {
    const dest = inside(s, q.path);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, body.file);
    uploads.push({ sandbox: s.id, path: q.path, size: body.file.length });
    return [200, {}];
  }
  if (rest === '/files/info' && req.method === 'GET') {
    try {
      const st = fs.statSync(inside(s, q.path));
      return [200, { name: path.basename(q.path), size: st.size, isDir: st.isDirectory(), modTime: st.mtime.toISOString(),
        mode: (st.mode & 0o777).toString(8), permissions: (st.mode & 0o777).toString(8), owner: 'daytona', group: 'daytona' }];
    } catch {
      return [404, { statusCode: 404, message: `file not found: ${q.path}` }];
    }
  }
  return [404, { statusCode: 404, message: `no such toolbox call: ${req.method} ${rest}` }];
}

// ---- the API ----

function authorized(req) {
  return req.headers.authorization === `Bearer ${KEY}`;
}

async function api(req, p, q, body) {
  let m;
  if (p === '/sandbox' && req.method === 'POST') return createSandbox(body);
  if (p === '/sandbox' && req.method === 'GET') return listSandboxes(q);
  if ((m = p.match(/^\/sandbox\/([^/]+)\/toolbox-proxy-url$/))) {
    const s = sandboxes.get(decodeURIComponent(m[1]));
    return s ? [200, { url: `${base}/toolbox-proxy` }] : [404, { statusCode: 404, message: 'Sandbox not found' }];
  }
  if ((m = p.match(/^\/sandbox\/([^/]+)$/))) {
    const id = decodeURIComponent(m[1]);
    const s = sandboxes.get(id) || [...sandboxes.values()].find((x) => x.name === id);
    if (!s || (s.state === 'destroyed' && Date.now() - Date.parse(s.updatedAt) > 2000))
      return [404, { statusCode: 404, message: `Sandbox with ID or name ${id} not found`, error: 'Not Found' }];
    if (req.method === 'DELETE') {
      deleteSandbox(s);
      return [200, sandboxView(s)];
    }
    return [200, sandboxView(s)];
  }
  return [404, { statusCode: 404, message: `Cannot ${req.method} ${p}`, error: 'Not Found' }];
}

// ---- the tests' own ----

function control(req, p, body) {
  if (p === '/_test/violations') return [200, violations];
  if (p === '/_test/requests') return [200, log];
  if (p === '/_test/uploads') return [200, uploads];
  if (p === '/_test/faults' && req.method === 'POST') {
    faults = { ...faults, ...body };
    return [200, faults];
  }
  if (p === '/_test/sandboxes')
    return [200, [...sandboxes.values()].map((s) => ({ ...sandboxView(s), commands: [...s.sessions.values()]
      .flatMap((x) => [...x.commands.values()].map(commandView)) }))];
  return [404, { message: 'no such test call' }];
}

// The parts of a multipart/form-data body: name -> Buffer; null if it is not
// one.
function formData(req, raw) {
  const m = /^multipart\/form-data;\s*boundary=("?)([^";]+)\1/i.exec(req.headers['content-type'] || '');
  if (!m) return null;
  const sep = Buffer.from(`--${m[2]}`), parts = {};
  let at = raw.indexOf(sep);
  while (at >= 0) {
    const start = at + sep.length;
    if (raw.slice(start, start + 2).toString() === '--') return parts;
    const next = raw.indexOf(sep, start);
    if (next < 0) return null;
    const part = raw.slice(start + 2, next - 2);    /* less CRLF after the separator and before the next */
    const head = part.indexOf('\r\n\r\n');
    if (head < 0) return null;
    const name = /name="([^"]*)"/.exec(part.slice(0, head).toString());
    if (!name) return null;
    parts[name[1]] = part.slice(head + 4);
    at = next;
  }
  return null;
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

function send(res, status, body, type) {
  if (body === null || body === undefined) {
    res.writeHead(status);
    return res.end();
  }
  if (type) {
    res.writeHead(status, { 'Content-Type': type });
    return res.end(body);
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(text);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  const q = Object.fromEntries(url.searchParams);
  const raw = await readBody(req);
  let body = {};
  const form = formData(req, raw);
  if (form) {
    body = form;
  } else if (raw.length) {
    try { body = JSON.parse(raw.toString()); } catch { body = undefined; }
  }
  let answer;
  if (p.startsWith('/_test/')) {
    answer = control(req, p, body || {});
    return send(res, ...answer);
  }
  // the SDK's event stream (socket.io) is not part of the REST specs: it
  // falls back to polling, as the executor always does
  if (p.startsWith('/socket.io/')) return send(res, 404, { statusCode: 404, message: 'no events here' });
  if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
  const tb = p.match(/^\/toolbox-proxy\/([^/]+)(\/.*)$/);
  const which = tb ? 'toolbox' : 'api';
  const opPath = tb ? tb[2] : p;
  const problems = body === undefined ? ['the body is not JSON'] : spec.check(which, req.method, opPath, url.searchParams, body, raw.length > 0, req.headers, !!form);
  if (!authorized(req)) {
    answer = [401, { statusCode: 401, message: 'Unauthorized' }];
  } else if (problems.length) {
    violations.push({ method: req.method, path: p, problems });
    answer = [400, { statusCode: 400, message: `not as the spec says: ${problems.join('; ')}` }];
  } else if (faults.rate429 && ++counter429 % faults.rate429 === 0) {
    answer = [429, { statusCode: 429, message: 'ThrottlerException: Too Many Requests' }];
  } else if (tb) {
    const s = sandboxes.get(decodeURIComponent(tb[1]));
    answer = s ? await toolbox(req, s, tb[2], q, body || {}) : [404, { statusCode: 404, message: 'sandbox not found' }];
  } else {
    answer = await api(req, p, q, body || {});
  }
  if (log.length < 100000) log.push({ method: req.method, path: p, status: answer[0] });
  // the server's own answers are checked too, so it cannot drift from the specs
  if (!answer[2] && answer[1] !== null) {
    const wrong = spec.checkAnswer(which, req.method, opPath, answer[0], JSON.parse(JSON.stringify(answer[1])));
    if (wrong.length) violations.push({ method: req.method, path: p, answer: answer[0], problems: wrong });
  }
  send(res, ...answer);
});

server.keepAliveTimeout = 30000;
server.listen(PORT, '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`listening ${server.address().port}\n`);
});

function shutdown() {
  for (const s of sandboxes.values()) setState(s, 'destroyed');
  fs.rmSync(ROOT, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// with --exit-with-stdin, the end of stdin (its parent gone) ends it too
if (args.includes('--exit-with-stdin')) {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}
