// browser.mjs - a headless Chromium that the web tests drive, one JSON
// command a line on stdin, one JSON answer a line on stdout.
//
//   DAGD_WEB_NODE_DIR=BUILD/web-node node browser.mjs --chromium /usr/bin/chromium
//
// Commands ({"op": ..., ...}): page (a new page, closing the old: width,
// height), goto (url), eval (js: an expression or async function body;
// its value), wait (js: until truthy; timeout ms), click (selector),
// key (key: pressed on the focused element), focus (selector), screenshot
// (path, fullPage), cookies, console (the page's errors so far), close.
// Answers are {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
// The browser ends with stdin, whatever happens to the test.
import { createInterface } from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

// the npm modules are installed beside the build, not in the source tree
const require = createRequire(path.join(process.env.DAGD_WEB_NODE_DIR || '.', 'package.json'));
const puppeteer = require('puppeteer-core');

const args = process.argv.slice(2);
const chromium = args[args.indexOf('--chromium') + 1] || '/usr/bin/chromium';
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'dagd-web-chromium-'));

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir: profile,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--disable-renderer-backgrounding',
    '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows'],
});

let page = null;
let problems = [];

async function newPage(width, height) {
  if (page) await page.close().catch(() => {});
  page = await browser.newPage();
  problems = [];
  await page.setViewport({ width: width || 1280, height: height || 800, isMobile: (width || 1280) < 600 });
  page.on('console', m => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', e => problems.push('pageerror: ' + e.message));
  page.setDefaultTimeout(15000);
}

function fn(js) {
  // an expression, or a function body when it has a return
  return /\breturn\b/.test(js) ? `(async () => { ${js} })()` : js;
}

async function run(cmd) {
  switch (cmd.op) {
    case 'page':
      await newPage(cmd.width, cmd.height);
      return null;
    case 'goto': {
      const r = await page.goto(cmd.url, { waitUntil: 'domcontentloaded' });
      return r ? r.status() : null;
    }
    case 'eval':
      return await page.evaluate(fn(cmd.js));
    case 'wait':
      await page.waitForFunction(fn(cmd.js), { timeout: cmd.timeout || 15000, polling: 50 });
      return await page.evaluate(fn(cmd.js));
    case 'click': {
      // a page that draws itself again (a live update) may replace the
      // element between its finding and its click, before anything was
      // clicked: it is found again, for a while
      const until = Date.now() + 5000;
      for (;;) {
        try {
          await page.click(cmd.selector);
          return null;
        } catch (e) {
          if (!/detached from document/.test(String(e)) || Date.now() > until)
            throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    case 'focus':
      await page.focus(cmd.selector);
      return null;
    case 'key':
      await page.keyboard.press(cmd.key);
      return null;
    case 'screenshot':
      await page.screenshot({ path: cmd.path, fullPage: !!cmd.fullPage });
      return cmd.path;
    case 'cookies':
      return await page.cookies();
    case 'console':
      return problems;
    case 'close':
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
      process.exit(0);
  }
  throw new Error('unknown op ' + cmd.op);
}

await newPage();
process.stdout.write(JSON.stringify({ ok: true, value: 'ready ' + (await browser.version()) }) + '\n');

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  let out;
  try {
    out = { ok: true, value: await run(JSON.parse(line)) };
  } catch (e) {
    out = { ok: false, error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(out === undefined ? null : out) + '\n');
}
await browser.close().catch(() => {});
fs.rmSync(profile, { recursive: true, force: true });
process.exit(0);
