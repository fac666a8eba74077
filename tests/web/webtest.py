"""webtest - what the tests of `dagctl web` share.

Web(d) starts `dagctl web` on a free loopback port for the daemon d and
reads the URL with its secret; http() makes a request to it (urllib, no
redirects followed).  Browser() is Debian's Chromium, headless, driven by
browser.mjs (puppeteer-core, installed with `npm ci` into BUILD/web-node on
first use; never a downloaded browser).  Without chromium, node or the npm
modules the browser tests skip; with DAGD_REQUIRE_WEB=1 they fail instead.
Screenshots go into BUILD/web-artifacts/.
"""

import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import dagdtest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.dirname(os.path.abspath(dagdtest.DAGD))
NODE_DIR = os.environ.get("DAGD_WEB_NODE_DIR", os.path.join(BUILD, "web-node"))
ARTIFACTS = os.path.join(BUILD, "web-artifacts")
CHROMIUM = os.environ.get("DAGD_CHROMIUM", "/usr/bin/chromium")

_ready = None
_webs = []


def _unavailable(why):
    if os.environ.get("DAGD_REQUIRE_WEB") == "1":
        raise AssertionError(f"DAGD_REQUIRE_WEB=1, but {why}")
    dagdtest.skip(why)


def node_env():
    """The environment for node, with puppeteer-core installed (npm ci)."""
    global _ready
    if _ready is None:
        if not os.access(CHROMIUM, os.X_OK):
            _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        if not shutil.which("node") or not shutil.which("npm"):
            _unavailable("node and npm are not installed")
        want = os.path.join(NODE_DIR, "node_modules", "puppeteer-core", "package.json")
        lock = os.path.join(NODE_DIR, "package-lock.json")
        os.makedirs(NODE_DIR, exist_ok=True)
        # test programs run side by side: one installs, the others wait for it
        with open(os.path.join(NODE_DIR, ".install.lock"), "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            current = (os.path.exists(want) and os.path.exists(lock) and
                       open(lock, "rb").read() == open(os.path.join(HERE, "package-lock.json"), "rb").read())
            if not current:
                for f in ("package.json", "package-lock.json"):
                    shutil.copy(os.path.join(HERE, f), os.path.join(NODE_DIR, f))
                env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1")
                try:
                    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                                       cwd=NODE_DIR, capture_output=True, text=True, timeout=240, env=env)
                except subprocess.TimeoutExpired:
                    _unavailable("npm ci took over 240 s")
                if r.returncode != 0:
                    _unavailable(f"npm ci failed: {r.stderr.strip()[-500:]}")
        _ready = dict(os.environ, DAGD_WEB_NODE_DIR=NODE_DIR)
    return _ready


class Web:
    """`dagctl web` on 127.0.0.1 for the daemon d."""

    def __init__(self, d, listen="127.0.0.1:0"):
        env = dict(os.environ, DAGD_SOCKET=d.sock)
        self.proc = subprocess.Popen([dagdtest.DAGCTL, "web", "--listen", listen],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("dagctl web: http://"):
            self.stop()
            raise AssertionError(f"dagctl web did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[2]
        self.base, self.token = self.url.split("?token=")
        self.origin = self.base.rstrip("/")
        _webs.append(self)

    def stop(self):
        """SIGTERM: it must end in time, cleanly, with no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("dagctl web did not stop within 15 s of SIGTERM")
        err = self.proc.stderr.read()
        m = dagdtest.SANITIZER_RE.search(err)
        assert not m, "sanitizer report from dagctl web:\n" + err[max(0, m.start() - 200):][:6000]
        assert self.proc.returncode == 0, f"dagctl web exited {self.proc.returncode}: {err[-2000:]}"
        if self in _webs:
            _webs.remove(self)

    def http(self, method, path, body=None, headers=None, cookie=True, raw=None):
        """(status, headers, parsed JSON or text) of one request."""
        h = dict(headers or {})
        if cookie:
            h["Cookie"] = f"dagctl_web={self.token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base.rstrip("/") + path, data=data, method=method, headers=h)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(req, timeout=15) as r:
                status, hdrs, text = r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            status, hdrs, text = e.code, e.headers, e.read().decode()
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def stop_webs():
    """Stops what a test left running (its failure is the test's)."""
    while _webs:
        w = _webs.pop()
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


class Browser:
    """A headless Chromium; each call is one command of browser.mjs."""

    def __init__(self):
        env = node_env()
        # it ends with its stdin: whatever becomes of the test, it leaves nothing behind
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "browser.mjs"), "--chromium", CHROMIUM],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=NODE_DIR)
        first = self.proc.stdout.readline()
        if not first:
            err = self.proc.stderr.read()
            if os.environ.get("DAGD_REQUIRE_WEB") != "1" and "Failed to launch" in err:
                dagdtest.skip("Chromium does not start: " + err[-300:])
            raise AssertionError("the browser did not start: " + err[-2000:])
        self.version = json.loads(first)["value"]

    def do(self, op, **args):
        self.proc.stdin.write(json.dumps(dict(args, op=op)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the browser died: " + self.proc.stderr.read()[-2000:])
        out = json.loads(line)
        if not out["ok"]:
            raise AssertionError(f"browser {op} {args}: {out['error'][:1500]}")
        return out.get("value")

    def page(self, width=1280, height=800):
        return self.do("page", width=width, height=height)

    def goto(self, url):
        return self.do("goto", url=url)

    def eval(self, js):
        return self.do("eval", js=js)

    def wait(self, js, timeout=15000, what=None):
        try:
            return self.do("wait", js=js, timeout=timeout)
        except AssertionError as e:
            state = self.eval("document.querySelector('main') ? document.querySelector('main').innerText.slice(0, 800) : ''")
            raise AssertionError(f"waiting for {what or js}: {e}\npage: {state}")

    def click(self, selector):
        return self.do("click", selector=selector)

    def screenshot(self, name, full_page=False):
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        self.do("screenshot", path=path, fullPage=full_page)
        return path

    def problems(self):
        return self.do("console")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.do("close")
            except (AssertionError, BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_browser = None


def browser():
    """The browser shared by the tests of a file, started on first use."""
    global _browser
    if _browser is None:
        _browser = Browser()
    return _browser


def close_browser():
    global _browser
    if _browser is not None:
        _browser.close()
        _browser = None


def wait_until(fn, timeout=15, what="condition"):
    return dagdtest.wait_for(fn, timeout=timeout, what=what)
