// contract.mjs - drives the loopback Daytona (server.mjs) with Daytona's own
// TypeScript SDK (@daytonaio/sdk), so the server cannot drift from what the
// real API answers: create a sandbox and wait for it to start, execute a
// command, a session with an asynchronous command polled to its exit code,
// its logs, a file, the list by labels, delete; and the refusals (a wrong
// key, resources with a snapshot, a build that fails).
//
//   node contract.mjs BASE_URL KEY
//
// Prints one line per check ("ok - ..." or "not ok - ..."), and the server's
// record of requests and answers that were not as the specs say; exits 1 if anything
// failed.
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(process.env.DAYTONA_NODE_DIR || here, 'package.json'));
const { Daytona } = require('@daytonaio/sdk');

const [base, key] = process.argv.slice(2);
let failed = 0;

async function check(what, fn) {
  try {
    await fn();
    console.log(`ok - ${what}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${what}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
  }
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

const daytona = new Daytona({ apiKey: key, apiUrl: base, target: 'us' });
let sandbox;

await check('create a sandbox from a snapshot and wait until it is started', async () => {
  sandbox = await daytona.create({ snapshot: 'daytonaio/sandbox:latest', envVars: { GREETING: 'hello' },
    labels: { 'contract.test': 'yes' }, autoStopInterval: 0 }, { timeout: 30 });
  expect(sandbox.id, 'no id');
  expect(sandbox.state === 'started', `state ${sandbox.state}`);
});

await check('execute a command and get its exit code and output', async () => {
  const r = await sandbox.process.executeCommand('echo "$GREETING world"; exit 4');
  expect(r.exitCode === 4, `exit code ${r.exitCode}`);
  expect(r.result.includes('hello world'), `output ${JSON.stringify(r.result)}`);
});

await check('run a command asynchronously in a session, poll it to its exit, read its logs', async () => {
  await sandbox.process.createSession('contract');
  const r = await sandbox.process.executeSessionCommand('contract', { command: 'sleep 0.3; echo out; echo err >&2; exit 2', runAsync: true });
  expect(r.cmdId, 'no cmdId');
  let cmd = await sandbox.process.getSessionCommand('contract', r.cmdId);
  expect(cmd.exitCode === undefined || cmd.exitCode === null, `exitCode while running: ${cmd.exitCode}`);
  for (let i = 0; i < 100 && (cmd.exitCode === undefined || cmd.exitCode === null); i++) {
    await new Promise((res) => setTimeout(res, 50));
    cmd = await sandbox.process.getSessionCommand('contract', r.cmdId);
  }
  expect(cmd.exitCode === 2, `exit code ${cmd.exitCode}`);
  const logs = await sandbox.process.getSessionCommandLogs('contract', r.cmdId);
  expect(logs.stdout.includes('out') && logs.stderr.includes('err'), `logs ${JSON.stringify(logs)}`);
  const session = await sandbox.process.getSession('contract');
  expect(session.commands.length === 1, `commands ${JSON.stringify(session.commands)}`);
});

await check('a synchronous session command answers with its exit code', async () => {
  const r = await sandbox.process.executeSessionCommand('contract', { command: 'echo sync' });
  expect(r.exitCode === 0, `exit code ${r.exitCode}`);
});

await check('download a file the command wrote, with the toolbox client of the SDK', async () => {
  await sandbox.process.executeCommand('mkdir -p "$HOME/x" && echo \'{"a": 1}\' > "$HOME/x/result.json"');
  // GET /files/download, as the executor fetches DAGD_RESULT_FILE
  const r = await sandbox.fs.apiClient.downloadFile('/home/daytona/x/result.json', { responseType: 'text' });
  expect(JSON.parse(r.data).a === 1, `file ${r.data}`);
});

async function listed(labels) {
  const ids = [];
  for await (const s of daytona.list({ labels })) ids.push(s.id);
  return ids;
}

await check('list sandboxes by label', async () => {
  expect((await listed({ 'contract.test': 'yes' })).includes(sandbox.id), 'the sandbox is not listed');
  expect((await listed({ 'contract.test': 'no' })).length === 0, 'a label filter that matches nothing lists something');
});

await check('delete the sandbox', async () => {
  await sandbox.delete();
  await new Promise((res) => setTimeout(res, 300));
  expect(!(await listed({ 'contract.test': 'yes' })).includes(sandbox.id), 'still listed after delete');
});

await check('a wrong key is refused', async () => {
  const bad = new Daytona({ apiKey: 'wrong', apiUrl: base, target: 'us' });
  let err;
  try { await bad.create({ snapshot: 'daytonaio/sandbox:latest' }, { timeout: 5 }); } catch (e) { err = e; }
  expect(err && /401|nauthori/i.test(`${err.message} ${err.statusCode}`), `no 401: ${err && err.message}`);
});

await check('resources with a snapshot are refused', async () => {
  let err;
  try {
    await daytona.create({ snapshot: 'daytonaio/sandbox:latest', resources: { cpu: 2 } }, { timeout: 5 });
  } catch (e) { err = e; }
  expect(err && /resources/i.test(err.message), `no refusal: ${err && err.message}`);
});

await check('a build that fails reports its reason', async () => {
  let err;
  try {
    await daytona.create({ image: 'no-such-image:1', labels: { 'test.fault': 'build_failed' } }, { timeout: 10 });
  } catch (e) { err = e; }
  expect(err && /build/i.test(err.message), `no build failure: ${err && err.message}`);
});

const violations = await (await fetch(`${base}/_test/violations`)).json();
await check('every request of the SDK, and every answer to it, was as the specs say', async () => {
  expect(violations.length === 0, JSON.stringify(violations));
});
process.exit(failed ? 1 : 0);
