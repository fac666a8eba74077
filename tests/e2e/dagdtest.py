"""dagdtest - a small harness for dagd's end-to-end tests (stdlib only).

A test file registers its tests with @test and ends with `dagdtest.main()`;
main() runs them in order and prints TAP (`ok N - name`, `not ok N - name`
with `# ` diagnostics, the plan line last).  Each test runs under a time limit.

Daemon starts a real dagd on a private temporary directory (socket DIR/s,
state DIR/state) and can stop it (SIGTERM: it must exit 0 with no sanitizer
report on stderr), restart it on the same state dir, or kill -9 it.  Daemons a
test starts are stopped and checked when the test ends, and their directories
and leftover sandbox processes removed.  `daemon()` is one daemon shared by the
tests of a file (each test then uses its own project); it is checked when the
file ends, as one more test.

Client speaks the protocol's raw lines: call() a command, send raw bytes,
follow events.  Everything that waits takes a timeout.

Run one file alone with `python3 tests/e2e/test_x.py [SUBSTRING]` (only the
tests whose name contains SUBSTRING).  Environment: DAGD_BIN, DAGCTL_BIN, DAGD_PLUGIN_DIR, DAGD_TEST_BROKEN_DIR;
without them the binaries of build/ in the source tree are used.
"""

import calendar
import collections
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAGD = os.path.abspath(os.environ.get("DAGD_BIN", os.path.join(SRC, "build/dagd")))
DAGCTL = os.path.abspath(os.environ.get("DAGCTL_BIN", os.path.join(SRC, "build/dagctl")))
PLUGIN_DIR = os.path.abspath(os.environ.get("DAGD_PLUGIN_DIR", os.path.join(SRC, "build/plugins")))
BROKEN_DIR = os.environ.get("DAGD_TEST_BROKEN_DIR")

ACTIVE = ("spawning", "running", "validating")
FINISHED = ("completed", "failed", "upstream_failed", "cancelled", "skipped")
STATUSES = ("waiting", "ready", "spawning", "running", "pending_validation", "validating",
            "completed", "failed", "upstream_failed", "cancelled", "skipped", "awaiting_approval")
ERROR_CODES = ("bad_request", "not_found", "conflict", "invalid_state", "permission_denied",
               "unavailable", "unsupported", "internal")
SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|UndefinedBehaviorSanitizer|"
                          r"runtime error:|SUMMARY: \w+Sanitizer")


class Skip(Exception):
    """Raised by a test that cannot run here."""


class TestTimeout(Exception):
    """Raised in a test that ran over its time limit."""


class Timeout(AssertionError):
    """A bounded wait ran out."""


class DagdError(Exception):
    """The daemon answered ok: false."""

    def __init__(self, reply):
        self.reply = reply
        err = reply.get("error") or {}
        self.code = err.get("code")
        self.message = err.get("message")
        super().__init__(f"{self.code}: {self.message}")


def skip(reason):
    raise Skip(reason)


# --- small helpers ---------------------------------------------------------


def wait_for(predicate, timeout=10, interval=0.05, what="condition"):
    """Poll predicate() until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def expect_eq(actual, expected, what="value"):
    assert actual == expected, f"{what}: expected {expected!r}, got {actual!r}"


def expect_error(fn, code, *args, **kwargs):
    """fn(*args, **kwargs) must raise DagdError with this code; returns it."""
    try:
        result = fn(*args, **kwargs)
    except DagdError as e:
        assert e.code == code, f"expected error {code}, got {e.code} ({e.message})"
        assert isinstance(e.message, str) and e.message, f"error {code} has no message"
        return e
    raise AssertionError(f"expected error {code}, got success: {result!r}")


def select_events(events, type=None, **payload):
    """The events of this type whose payload has these values."""
    return [ev for ev in events if (type is None or ev["type"] == type)
            and all(ev["payload"].get(k) == v for k, v in payload.items())]


def parse_time(s):
    """RFC 3339 UTC with a fraction of a second -> seconds since the epoch."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", s or "")
    assert m, f"not an RFC 3339 UTC time: {s!r}"
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]))
    return secs + float(m.group(7) or 0)


def replay_active(events, key=lambda ev: True):
    """Replay TASK_STATUS_CHANGED events; the largest number of tasks (among
    those for which key(event) is true) that were at once in a status that
    holds a slot."""
    status, peak = {}, 0
    for ev in events:
        if ev["type"] != "TASK_STATUS_CHANGED" or not key(ev):
            continue
        p = ev["payload"]
        status[p["task_id"]] = p["new_status"]
        peak = max(peak, sum(1 for s in status.values() if s in ACTIVE))
    return peak


def sandbox_pids(sock):
    """Processes whose environment names this socket: the daemon's sandboxes."""
    needle = b"\0DAGD_SOCKET=" + sock.encode() + b"\0"
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if needle in b"\0" + f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def helper_pid(state_dir):
    """The local executor's helper of this state directory, or None."""
    want = b"local-helper\0" + os.path.join(state_dir, "local", "helper.sock").encode() + b"\0"
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read() == want:
                        return int(pid)
            except OSError:
                pass
    return None


def cpu_seconds(pid):
    """User and system CPU time used so far by a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_during(pid, seconds):
    """The share of one CPU a process used over the next `seconds`."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_as_nobody(fn):
    """Run fn() in a forked child as user nobody; return what it returned
    (JSON-able), or raise what it raised as an AssertionError."""
    if os.geteuid() != 0:
        skip("needs root to switch to user nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            out = {"value": fn()}
        except BaseException as e:
            out = {"error": f"{type(e).__name__}: {e}"}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    out = json.loads(data or b'{"error": "child died"}')
    if "error" in out:
        raise AssertionError(f"as nobody: {out['error']}")
    return out["value"]


# --- the client ------------------------------------------------------------


class Client:
    """One connection to the daemon, speaking the line protocol."""

    def __init__(self, path, timeout=10):
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.ids = itertools.count(1)
        self.events = collections.deque()   # events read while waiting for a reply
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def read_line(self, timeout=None):
        """The next line (bytes, without the newline); None at end of file."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout(f"no line from the daemon within {timeout or self.timeout}s"
                              f" (have {self.buf[:200]!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read_msg(self, timeout=None):
        """The next message as a dict; None at end of file."""
        line = self.read_line(timeout)
        if line is None:
            return None
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"the daemon sent a line that is not JSON: {line[:300]!r}")

    def read_reply(self, timeout=None):
        """The next reply; events read on the way are kept for next_event()."""
        while True:
            msg = self.read_msg(timeout)
            if msg is None:
                raise AssertionError("the daemon closed the connection instead of replying")
            if "event" in msg and "ok" not in msg:
                self.events.append(msg["event"])
                continue
            return msg

    def request(self, cmd, args=None, timeout=None):
        """Send a command, return the whole reply (checked to echo our id)."""
        rid = next(self.ids)
        req = {"id": rid, "cmd": cmd}
        if args is not None:
            req["args"] = args
        self.send(req)
        reply = self.read_reply(timeout)
        assert reply.get("id") == rid, f"reply to request {rid} carries id {reply.get('id')!r}"
        assert isinstance(reply.get("ok"), bool), f"reply without a boolean ok: {reply!r}"
        return reply

    def call(self, cmd, **args):
        """Send a command with these args; its result, or DagdError."""
        reply = self.request(cmd, args)
        if not reply["ok"]:
            err = reply.get("error")
            assert isinstance(err, dict) and err.get("code") in ERROR_CODES, \
                f"malformed error reply: {reply!r}"
            raise DagdError(reply)
        assert isinstance(reply.get("result"), dict), f"reply without a result object: {reply!r}"
        return reply["result"]

    def subscribe(self, **args):
        """events.subscribe (following); returns its result."""
        r = self.call("events.subscribe", **args)
        assert r.get("subscribed") is True, f"events.subscribe answered {r!r}"
        return r

    def next_event(self, timeout=None):
        """The next event of a subscription on this connection."""
        if self.events:
            return self.events.popleft()
        msg = self.read_msg(timeout)
        if msg is None:
            raise AssertionError("the daemon closed a subscription")
        assert "event" in msg, f"expected an event line, got {msg!r}"
        return msg["event"]

    def wait_event(self, predicate, timeout=10, what="event"):
        """Read events until one satisfies predicate; return it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not self.events:
                raise Timeout(f"timed out after {timeout}s waiting for {what}")
            try:
                ev = self.next_event(max(remaining, 0.001))
            except Timeout:
                raise Timeout(f"timed out after {timeout}s waiting for {what}")
            if predicate(ev):
                return ev

    def no_event(self, predicate, within):
        """Assert no event satisfying predicate arrives within `within` seconds."""
        try:
            ev = self.wait_event(predicate, timeout=within)
        except Timeout:
            return
        raise AssertionError(f"unexpected event: {ev!r}")


# --- the daemon ------------------------------------------------------------


_started = []       # daemons started during the current test
_workdirs = []      # scratch directories of the current test


def workdir():
    """A scratch directory for the current test, removed when it ends."""
    w = tempfile.mkdtemp(prefix="dagd-work-")
    os.chmod(w, 0o755)
    _workdirs.append(w)
    return w


def make_install(destdir, prefix):
    """`make install` of the build tree of DAGD_BIN; skips if it is not one."""
    build = os.path.dirname(DAGD)
    if not os.path.realpath(build).startswith(os.path.join(SRC, "build")):
        skip(f"{DAGD} is not from this source tree's build directory")
    p = subprocess.run([os.path.join(SRC, "tests/systemd/install"), build, destdir, prefix],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"make install failed:\n{p.stdout}\n{p.stderr}"


def read_file(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def read_env(path):
    """A file written by `env` in a sandbox, as a dict (None if absent or partial)."""
    text = read_file(path)
    if not text or "DAGD_TASK_TOKEN=" not in text or not text.endswith("\n"):
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Daemon:
    """A dagd on a private directory."""

    def __init__(self, args=(), plugin_dir=None, env=None, shared=False, prefix=(), root_tasks=True):
        self.dir = tempfile.mkdtemp(prefix="dagd-e2e-")
        os.chmod(self.dir, 0o711)       # lets user nobody reach the socket
        self.sock = os.path.join(self.dir, "s")
        self.state_dir = os.path.join(self.dir, "state")
        self.plugin_dir = plugin_dir or PLUGIN_DIR
        self.args = list(args)
        # as root, the local executor runs tasks as nobody unless told:
        # these tests' tasks write into the test's own (root) directories
        if os.geteuid() == 0 and root_tasks and not any(
                str(a).startswith("local=") for a in self.args):
            self.args += ["--executor-options", 'local={"user": "root"}']
        self.prefix = list(prefix)     # a command that execs dagd (prlimit, unshare)
        self.env = env
        self.proc = None
        self.starts = 0
        self.stderr_path = None
        self.names = itertools.count(1)
        self._client = None
        if not shared:
            _started.append(self)

    # life

    def start_installed(self, binary):
        """Start an installed dagd, with no --plugin-dir: its own."""
        self.binary, self.plugin_dir = binary, None
        return self.start()

    def start(self, timeout=30):
        binary = getattr(self, "binary", DAGD)
        assert os.path.exists(binary), f"no daemon binary at {binary}"
        self.starts += 1
        self.stderr_path = os.path.join(self.dir, f"stderr.{self.starts}")
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        cmd = self.prefix + [binary, "--socket", self.sock, "--state-dir", self.state_dir] + \
            (["--plugin-dir", self.plugin_dir] if self.plugin_dir else []) + self.args
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dagd exited with {self.proc.returncode} at start:\n"
                                     + self.stderr_tail())
            try:
                with Client(self.sock, timeout=2) as c:
                    c.call("daemon.status")
                break
            except (OSError, AssertionError, Timeout, DagdError):
                if time.monotonic() >= deadline:
                    raise AssertionError(f"dagd did not answer daemon.status within {timeout}s:\n"
                                         + self.stderr_tail())
                time.sleep(0.02)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM; it must exit 0 in time with no sanitizer report."""
        self._drop_client()
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"dagd did not exit within {timeout}s of SIGTERM:\n"
                                     + self.stderr_tail())
        self.check_stderr()
        assert proc.returncode == 0, \
            f"dagd exited with {proc.returncode} after SIGTERM:\n" + self.stderr_tail()

    def kill(self):
        """kill -9."""
        self._drop_client()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.check_stderr()

    def restart(self):
        self.stop()
        return self.start()

    def check_stderr(self):
        text = self.stderr()
        m = SANITIZER_RE.search(text)
        assert not m, "sanitizer report on dagd's stderr:\n" + text[max(0, m.start() - 200):][:6000]

    def stderr(self):
        if not self.stderr_path or not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr_tail(self, n=30):
        lines = self.stderr().splitlines()[-n:]
        return "\n".join("dagd: " + line for line in lines)

    def cleanup(self):
        """Kill whatever is left (daemon, sandboxes) and remove the directory."""
        self._drop_client()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        helper = helper_pid(self.state_dir)
        for pid in sandbox_pids(self.sock) + ([helper] if helper else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    # talking to it

    def client(self, timeout=10):
        return Client(self.sock, timeout)

    def _drop_client(self):
        if self._client:
            self._client.close()
            self._client = None

    def call(self, cmd, **args):
        """One command on a connection kept for the purpose."""
        if self._client is None:
            self._client = self.client()
        return self._client.call(cmd, **args)

    def subscribe(self, **args):
        """A new connection following events (args of events.subscribe)."""
        c = self.client()
        c.subscribe(**args)
        return c

    def events(self, since=0, **filters):
        """Every event after `since` matching the filters (follow: false, paged)."""
        out = []
        while True:
            r = self.call("events.subscribe", since=since, follow=False, limit=500, **filters)
            assert isinstance(r.get("events"), list) and isinstance(r.get("last_seq"), int), \
                f"events.subscribe (follow: false) answered {r!r}"
            out += r["events"]
            if len(r["events"]) < 500:
                return out
            since = r["events"][-1]["seq"]

    def dagctl(self, *args, env=None, timeout=30, input=None):
        """Run dagctl against this daemon: (exit status, stdout, stderr)."""
        e = dict(os.environ)
        e["DAGD_SOCKET"] = self.sock
        e.update(env or {})
        return dagctl(*args, env=e, timeout=timeout, input=input)

    # projects and tasks

    def project(self, name=None, **args):
        """Create a project with a fresh name; returns it."""
        if name is None:
            name = f"{current_test or 'proj'}-{next(self.names)}"[-64:].lstrip("-_.") or "proj"
        return self.call("project.create", name=name, **args)["project"]

    def add(self, project, command, title=None, **args):
        """task.add; returns the task."""
        pid = project["id"] if isinstance(project, dict) else project
        return self.call("task.add", project=pid, title=title or "task", command=command,
                         **args)["task"]

    def task(self, task_id):
        return self.call("task.get", task_id=task_id)["task"]

    def tasks(self, project):
        pid = project["id"] if isinstance(project, dict) else project
        return self.call("task.list", project=pid)["tasks"]

    def _wait(self, pid, read, done, timeout, describe):
        """read(client) again after each burst of the project's events until
        done(what it read); returns it, or raises Timeout with describe(it)."""
        deadline = time.monotonic() + timeout
        with self.client() as c:
            c.subscribe(project=pid)
            while True:
                got = read(c)
                if done(got):
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(f"timed out after {timeout}s; {describe(got)}")
                try:
                    c.next_event(min(remaining, 2.0))
                    while c.events:
                        c.events.popleft()
                except Timeout:
                    pass

    def wait_tasks(self, project, until=None, timeout=60):
        """Wait until until(tasks) is true for the project's tasks (default:
        every task finished), reading the event stream and looking at the task
        list after each burst of events.  Returns the tasks."""
        pid = project["id"] if isinstance(project, dict) else project
        until = until or (lambda ts: all(t["status"] in FINISHED for t in ts))
        return self._wait(pid, lambda c: c.call("task.list", project=pid)["tasks"], until, timeout,
                          lambda ts: "tasks: " + ", ".join(f"{t['id']}={t['status']}" for t in ts))

    def wait_done(self, project, timeout=60, status="completed"):
        """Wait until every task of the project finished; assert they all
        ended with `status`.  Returns the tasks."""
        tasks = self.wait_tasks(project, timeout=timeout)
        bad = [f"{t['id']}={t['status']} ({t['error_message']})" for t in tasks
               if t["status"] != status]
        assert not bad, f"tasks not {status}: " + ", ".join(bad)
        return tasks

    def wait_task_status(self, task_id, statuses, timeout=30):
        """Wait until the task is in one of statuses; returns the task."""
        if isinstance(statuses, str):
            statuses = (statuses,)
        t = self.task(task_id)
        # the task alone is read again after each burst of its project's
        # events: not the whole project, which may be large
        return self._wait(t["project_id"], lambda c: c.call("task.get", task_id=task_id)["task"],
                          lambda x: x["status"] in statuses, timeout,
                          lambda x: f"{task_id} is {x['status']}")


def wait_task_status(d, task_id, statuses, timeout=30):
    return d.wait_task_status(task_id, statuses, timeout)


def dagctl(*args, env=None, timeout=30, input=None):
    """Run dagctl: (exit status, stdout, stderr); a sanitizer report fails."""
    assert os.path.exists(DAGCTL), f"no dagctl binary at {DAGCTL}"
    p = subprocess.run([DAGCTL] + [str(a) for a in args], env=env, timeout=timeout,
                       input=input, capture_output=True, text=True)
    m = SANITIZER_RE.search(p.stderr)
    assert not m, f"sanitizer report from dagctl {' '.join(args)}:\n{p.stderr[:6000]}"
    return p.returncode, p.stdout, p.stderr


# --- shared daemon ----------------------------------------------------------


_shared = None


def daemon():
    """The daemon shared by the tests of this file, started on first use."""
    global _shared
    if _shared is None:
        _shared = Daemon(shared=True)
        try:
            _shared.start()
        except BaseException:
            d, _shared = _shared, None
            d.cleanup()
            raise
    return _shared


def _discard_shared():
    global _shared
    if _shared is not None:
        _shared.cleanup()
        _shared = None


# --- tests and TAP -----------------------------------------------------------

_tests = []
current_test = None


def test(fn=None, *, timeout=120):
    """Register a test; its name is the function's."""
    def register(f):
        f.timeout = timeout
        _tests.append(f)
        return f
    return register(fn) if fn else register


def _diag(text):
    for line in str(text).rstrip("\n").splitlines():
        print("# " + line)


def _on_alarm(signum, frame):
    raise TestTimeout("the test ran over its time limit")


def _on_term(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _run(fn):
    """Run one test; returns (ok, skip reason, diagnostics)."""
    global current_test
    current_test = fn.__name__
    _started.clear()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(fn.timeout)
    error = None
    skipped = None
    try:
        fn()
    except Skip as e:
        skipped = str(e)
    except Exception:                   # TestTimeout included
        error = traceback.format_exc()
    finally:
        signal.alarm(0)
    diags = []
    for d in _started:
        if error is None and skipped is None:
            try:
                d.stop()
            except Exception:
                error = traceback.format_exc()
        elif d.proc is not None or d.starts:
            diags.append(d.stderr_tail())
        d.cleanup()
    _started.clear()
    for w in _workdirs:
        shutil.rmtree(w, ignore_errors=True)
    _workdirs.clear()
    if _shared is not None:
        for pid in sandbox_pids(_shared.sock):    # what this test left running
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not _shared.running():
            error = (error or "") + f"the shared daemon died:\n{_shared.stderr_tail()}"
            _discard_shared()           # the next test starts a new one
        elif error is not None:
            diags.append(_shared.stderr_tail(15))
    if error:
        return False, None, error + "\n".join(x for x in diags if x)
    return True, skipped, None


def main():
    """Run the registered tests (those whose name contains argv[1], if given)
    and print TAP; exit 1 if any failed."""
    signal.signal(signal.SIGTERM, _on_term)
    only = sys.argv[1] if len(sys.argv) > 1 else None
    n = failed = 0
    try:
        for fn in _tests:
            if only and only not in fn.__name__:
                continue
            n += 1
            ok, skipped, error = _run(fn)
            if ok:
                print(f"ok {n} - {fn.__name__}" + (f" # SKIP {skipped}" if skipped else ""))
            else:
                failed += 1
                print(f"not ok {n} - {fn.__name__}")
                _diag(error)
            sys.stdout.flush()
        if _shared is not None:
            n += 1
            name = "shared daemon exits 0 on SIGTERM without sanitizer reports"
            try:
                _shared.stop()
                print(f"ok {n} - {name}")
            except Exception:
                failed += 1
                print(f"not ok {n} - {name}")
                _diag(traceback.format_exc())
    finally:
        for d in _started:
            d.cleanup()
        for w in _workdirs:
            shutil.rmtree(w, ignore_errors=True)
        _discard_shared()
    print(f"1..{n}")
    sys.exit(1 if failed else 0)
