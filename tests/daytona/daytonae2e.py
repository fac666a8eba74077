"""daytonae2e - what the tests of the daytona executor share.

The loopback Daytona (server.mjs) and the SDK contract test (contract.mjs)
run on Node; their npm dependencies (package.json, package-lock.json: the
YAML parser and @daytonaio/sdk) are installed with `npm ci` into
BUILD/daytona-node on first use.  Without node, or when npm cannot install
them, the tests skip (they fail instead when DAGD_REQUIRE_DAYTONA=1).

Server() starts a loopback Daytona on a free port with a key of its own;
daemon(server) a dagd whose daytona executor talks to it; project(d) a
project whose tasks run there.
"""

import fcntl
import json
import os
import shutil
import subprocess
import urllib.request

import dagdtest

HERE = os.path.dirname(os.path.abspath(__file__))
# Daytona's published specs, kept beside the project's tree (../shared/specs)
SPECS = os.environ.get("DAYTONA_SPECS", os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "specs")))
NODE_DIR = os.environ.get("DAYTONA_NODE_DIR",
                          os.path.join(os.path.dirname(os.path.abspath(dagdtest.DAGD)), "daytona-node"))

_ready = None


def _unavailable(why):
    if os.environ.get("DAGD_REQUIRE_DAYTONA") == "1":
        raise AssertionError(f"DAGD_REQUIRE_DAYTONA=1, but {why}")
    dagdtest.skip(why)


def node_env():
    """The environment for node: where the npm modules are; installs them
    (npm ci) when they are not there yet."""
    global _ready
    if _ready is None:
        if not os.path.exists(os.path.join(SPECS, "daytona-api-openapi.yaml")):
            _unavailable(f"Daytona's specs are not in {SPECS} (set DAYTONA_SPECS)")
        if not shutil.which("node") or not shutil.which("npm"):
            _unavailable("node and npm are not installed")
        want = [os.path.join(NODE_DIR, "node_modules", m, "package.json") for m in ("yaml", "@daytonaio/sdk")]
        lock = os.path.join(NODE_DIR, "package-lock.json")
        os.makedirs(NODE_DIR, exist_ok=True)
        # test programs run side by side: one installs, the others wait for it
        with open(os.path.join(NODE_DIR, ".install.lock"), "w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            current = (all(os.path.exists(p) for p in want) and os.path.exists(lock) and
                       open(lock, "rb").read() == open(os.path.join(HERE, "package-lock.json"), "rb").read())
            if not current:
                for f in ("package.json", "package-lock.json"):
                    shutil.copy(os.path.join(HERE, f), os.path.join(NODE_DIR, f))
                try:
                    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NODE_DIR,
                                       capture_output=True, text=True, timeout=240)
                except subprocess.TimeoutExpired:
                    _unavailable("npm ci took over 240 s")
                if r.returncode != 0:
                    _unavailable(f"npm ci failed: {r.stderr.strip()[-500:]}")
        _ready = dict(os.environ, DAYTONA_NODE_DIR=NODE_DIR)
    return _ready


class Server:
    """A loopback Daytona on 127.0.0.1."""

    def __init__(self, key="loopback-key"):
        self.key = key
        # it ends with its stdin: whatever becomes of the test, it leaves nothing behind
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "server.mjs"), "--key", key, "--specs", SPECS,
                                      "--exit-with-stdin"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=node_env(),
                                     text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.stop()
            raise AssertionError(f"the loopback Daytona did not start: {line}{self.proc.stdout.read()}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        _servers.append(self)

    def _call(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, **faults):
        return self._call("/_test/faults", faults)

    def sandboxes(self, **labels):
        """The sandboxes (any state) with these dagd.* labels, e.g. task="t-1"."""
        want = {f"dagd.{k}": v for k, v in labels.items()}
        return [s for s in self._call("/_test/sandboxes")
                if all(s["labels"].get(k) == v for k, v in want.items())]

    def live(self, **labels):
        return [s for s in self.sandboxes(**labels) if s["state"] not in ("destroyed", "destroying")]

    def violations(self):
        return self._call("/_test/violations")

    def requests(self):
        return self._call("/_test/requests")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


_servers = []


def stop_servers():
    while _servers:
        _servers.pop().stop()


def daytona_test(fn=None, *, timeout=120):
    """@test, then the loopback servers of the test stopped."""
    def register(f):
        def run():
            try:
                f()
            finally:
                stop_servers()
        run.__name__ = f.__name__
        return dagdtest.test(run, timeout=timeout)
    return register(fn) if fn else register


def daemon(server, start=True, args=(), key=None, **options):
    """A dagd whose daytona executor uses server (its key from the environment)."""
    opts = {"api_url": server.url, "poll_interval": 0.1, "start_timeout": 20}
    opts.update(options)
    env = dict(os.environ, DAYTONA_API_KEY=key or server.key)
    d = dagdtest.Daemon(args=["--executor-options", "daytona=" + json.dumps(opts)] + list(args), env=env)
    return d.start() if start else d


def project(d, autonomous=True, max_concurrency=8, **options):
    return d.project(executor="daytona", executor_options=options, autonomous=autonomous,
                     max_concurrency=max_concurrency)


def log_text(d, task_id, attempt=None):
    args = {"task_id": task_id}
    if attempt:
        args["attempt"] = attempt
    return "\n".join(d.call("task.logs", **args)["lines"])


def wait_no_sandboxes(server, d, timeout=15, **labels):
    dagdtest.wait_for(lambda: not server.live(instance=d.state_dir, **labels), timeout=timeout,
                      what=f"no live sandbox of the daemon with labels {labels} "
                      f"(left: {[(s['id'], s['state']) for s in server.live(instance=d.state_dir, **labels)]})")


def expect_faithful(server):
    """Every request the server had was as the specs say."""
    v = server.violations()
    assert not v, f"requests not as the specs say: {json.dumps(v, indent=1)[:3000]}"


def wait_until(predicate, timeout=30, what="condition"):
    return dagdtest.wait_for(predicate, timeout=timeout, interval=0.1, what=what)
