"""dagd under an emulated systemd: socket activation (systemd-socket-activate),
the notify protocol on a fake NOTIFY_SOCKET (READY=1 once the database is
open, STATUS= when the counts change, WATCHDOG=1 from the loop, STOPPING=1),
the test-only hang, exit when idle and activation again with nothing lost,
journal logging with structured fields on a fake journal socket, and
`make install`.  The same under a real systemd is test_systemd_nspawn.py."""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import dagdtest
from dagdtest import (DAGD, Daemon, Timeout, expect_eq, main, make_install, skip,
                      test, wait_for, workdir)

ACTIVATE = shutil.which("systemd-socket-activate")


class NotifySocket:
    """A fake NOTIFY_SOCKET: an AF_UNIX datagram socket read by a thread (as
    systemd reads it at once: a sender never waits for room), keeping each
    message as a dict, in order."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.seen = 0                   # msgs[:seen] were looked at by wait()
        self.marked = 0
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.cond:
                self.msgs.append(msg)
                self.cond.notify_all()

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()

    def mark(self):
        """Remember where the messages are now, for since_mark()."""
        with self.cond:
            self.seen = self.marked = len(self.msgs)

    def since_mark(self):
        with self.cond:
            return self.msgs[self.marked:]

    def wait(self, predicate, timeout=10, what="notify message"):
        """The first message after the ones already waited for that satisfies
        predicate."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                while self.seen < len(self.msgs):
                    m = self.msgs[self.seen]
                    self.seen += 1
                    if predicate(m):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(f"timed out after {timeout}s waiting for {what}; "
                                  f"got {self.msgs[-8:]}")
                self.cond.wait(remaining)

    def statuses(self):
        with self.cond:
            return [m["STATUS"] for m in self.msgs if "STATUS" in m]


class ActivatedDaemon(Daemon):
    """A dagd behind systemd-socket-activate: the socket is bound first, the
    daemon is executed (in the activator's place) on the first connection."""

    def __init__(self, args=(), setenv=None, directory=None):
        super().__init__(args=args)
        if directory:           # the socket and state of an earlier daemon
            shutil.rmtree(self.dir)
            self.dir = directory
            self.sock = os.path.join(directory, "s")
            self.state_dir = os.path.join(directory, "state")
        self.setenv = dict(setenv or {})

    def start(self, timeout=30):
        if not ACTIVATE:
            skip("systemd-socket-activate is not installed")
        self.starts += 1
        self.stderr_path = os.path.join(self.dir, f"stderr.{self.starts}")
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        setenv = {"UBSAN_OPTIONS": env["UBSAN_OPTIONS"], **self.setenv}
        cmd = [ACTIVATE, "-l", self.sock, "--fdname=dagd"]
        for k, v in setenv.items():
            cmd += ["-E", f"{k}={v}"]
        cmd += [DAGD, "--state-dir", self.state_dir, "--plugin-dir", self.plugin_dir] + self.args
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, cwd=self.dir)
        wait_for(lambda: self.proc.poll() is not None or "Listening on" in self.stderr(), timeout,
                 what="systemd-socket-activate to listen")
        assert self.proc.poll() is None, "systemd-socket-activate exited:\n" + self.stderr_tail()
        return self

    def exe(self):
        try:
            return os.readlink(f"/proc/{self.proc.pid}/exe")
        except OSError:
            return None

    def wait_exit(self, timeout):
        """Wait for the daemon to leave by itself; its exit status."""
        self._drop_client()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"dagd did not exit within {timeout}s:\n" + self.stderr_tail())
        self.proc = None
        self.check_stderr()
        return rc


def shell_dag(d, w, autonomous=True):
    """A diamond of four shell tasks that log their runs to w/log."""
    p = d.project(autonomous=autonomous)
    cmd = f'echo "$DAGD_TASK_ID" >> {w}/log; sleep 0.3'
    a = d.add(p, cmd, title="a")["id"]
    b = d.add(p, cmd, title="b", depends_on=[a])["id"]
    c = d.add(p, cmd, title="c", depends_on=[a])["id"]
    d.add(p, cmd, title="d", depends_on=[b, c])
    return p


# --- socket activation ------------------------------------------------------


@test
def socket_activation_starts_dagd_on_the_first_connection_and_it_takes_the_socket():
    d = ActivatedDaemon().start()
    time.sleep(0.3)
    assert d.exe() != os.path.realpath(DAGD), "dagd started before any connection"
    assert not os.path.exists(d.state_dir), "dagd made its state before any connection"
    rc, out, err = d.dagctl("status")
    assert rc == 0, f"dagctl status: {rc} {err}"
    expect_eq(d.exe(), os.path.realpath(DAGD), "the activator's process after the connection")
    st = d.call("daemon.status")
    expect_eq(st["socket"], d.sock, "the socket dagd names (its sandboxes report there)")
    expect_eq(st["pid"], d.proc.pid, "dagd runs in the activator's place")
    assert "listening on the socket passed by systemd (dagd)" in d.stderr(), d.stderr_tail()
    w = workdir()
    p = shell_dag(d, w)
    d.wait_done(p, timeout=30)
    d.stop()


# --- the notify protocol ------------------------------------------------------


@test
def ready_is_sent_once_the_database_is_open_and_the_socket_answers():
    w = workdir()
    n = NotifySocket(w)
    d = Daemon(env={**os.environ, "NOTIFY_SOCKET": n.path})
    d.starts += 1
    d.stderr_path = os.path.join(d.dir, "stderr.1")
    with open(d.stderr_path, "wb") as err:
        d.proc = subprocess.Popen([DAGD, "--socket", d.sock, "--state-dir", d.state_dir,
                                   "--plugin-dir", d.plugin_dir], stdin=subprocess.DEVNULL,
                                  stdout=err, stderr=err, env=d.env, cwd=d.dir)
    first = n.wait(lambda m: True, 30, "the first notify message")
    assert first.get("READY") == "1", f"the first message is not READY=1: {first}"
    # the moment READY=1 is read: the database is open and held (no one
    # else reads it), and the socket answers
    db = sqlite3.connect(f"file:{d.state_dir}/dagd.db?mode=ro", uri=True, timeout=0)
    try:
        db.execute("select name from sqlite_master").fetchall()
        raise AssertionError("the database could be read by another process at READY=1")
    except sqlite3.OperationalError as e:
        assert "locked" in str(e), f"reading the database at READY=1: {e}"
    db.close()
    with d.client(timeout=5) as c:
        expect_eq(c.call("daemon.status")["pid"], d.proc.pid, "daemon.status right at READY=1")
    d.stop()
    # once it stopped: the schema was in place
    db = sqlite3.connect(f"file:{d.state_dir}/dagd.db?mode=ro", uri=True)
    tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
    db.close()
    assert {"projects", "tasks", "event_chunks"} <= tables, f"tables at READY=1: {tables}"
    stopping = n.wait(lambda m: m.get("STOPPING") == "1", 5, "STOPPING=1")
    assert stopping.get("STATUS"), f"STOPPING=1 without a STATUS: {stopping}"
    n.close()


@test
def status_counts_running_ready_and_waiting_tasks_and_changes_only_when_they_do():
    w = workdir()
    n = NotifySocket(w)
    d = Daemon(env={**os.environ, "NOTIFY_SOCKET": n.path}).start()
    n.wait(lambda m: m.get("READY") == "1", 10, "READY=1")
    p = d.project(autonomous=True)
    a = d.add(p, f"touch {w}/a.started; sleep 1.5", title="a")["id"]
    d.add(p, "true", title="b", depends_on=[a])
    n.wait(lambda m: m.get("STATUS", "").startswith("1 running, 0 ready, 1 waiting;"), 10,
           "STATUS: 1 running, 1 waiting")
    d.wait_done(p, timeout=30)
    n.wait(lambda m: m.get("STATUS") == "0 running, 0 ready, 0 waiting; 2 completed, 0 failed",
           10, "STATUS: 2 completed")
    m = d.project()                     # manual: its task stays ready
    d.add(m, "true", title="c")
    n.wait(lambda x: x.get("STATUS") == "0 running, 1 ready, 0 waiting; 2 completed, 0 failed",
           10, "STATUS: 1 ready")
    for _ in range(20):                 # requests that change no count
        d.call("daemon.status")
    time.sleep(0.3)
    st = n.statuses()
    repeats = [s for prev, s in zip(st, st[1:]) if prev == s]
    assert not repeats, f"STATUS sent again unchanged: {st}"
    d.stop()
    n.close()


@test
def the_watchdog_is_pinged_from_the_loop():
    w = workdir()
    n = NotifySocket(w)
    d = Daemon(env={**os.environ, "NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"}).start()
    t0 = time.monotonic()
    for _ in range(4):
        n.wait(lambda m: m.get("WATCHDOG") == "1", 2, "WATCHDOG=1")
    assert time.monotonic() - t0 < 2, "fewer than 4 pings in 2 s with a 0.4 s watchdog"
    assert "watchdog on" in d.stderr(), d.stderr_tail()
    d.stop()
    n.wait(lambda m: m.get("STOPPING") == "1", 5, "STOPPING=1")
    n.close()


@test
def the_test_hang_signal_stops_the_loop_and_its_watchdog_pings():
    w = workdir()
    n = NotifySocket(w)
    env = {**os.environ, "NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000",
           "DAGD_TEST_HANG_SIGNAL": "USR1"}
    d = Daemon(env=env).start()
    n.wait(lambda m: m.get("WATCHDOG") == "1", 2, "WATCHDOG=1")
    d.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: "hanging on purpose" in d.stderr(), 5, what="the hang")
    time.sleep(0.3)
    n.mark()
    time.sleep(1.2)
    pings = [m for m in n.since_mark() if m.get("WATCHDOG") == "1"]
    assert not pings, f"a hung dagd still pinged the watchdog: {n.since_mark()}"
    try:
        with d.client(timeout=1) as c:
            c.call("daemon.status")
        raise AssertionError("a hung dagd answered")
    except (Timeout, OSError):
        pass
    assert d.running()
    d.kill()
    n.close()


@test
def a_hang_signal_dagd_needs_is_refused_and_none_is_honoured_without_the_variable():
    d = Daemon(env={**os.environ, "DAGD_TEST_HANG_SIGNAL": "TERM"})
    d.starts += 1
    d.stderr_path = os.path.join(d.dir, "stderr.1")
    p = subprocess.run([DAGD, "--socket", d.sock, "--state-dir", d.state_dir], env=d.env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, "dagd started with DAGD_TEST_HANG_SIGNAL=TERM"
    assert "DAGD_TEST_HANG_SIGNAL" in p.stderr, p.stderr
    # without the variable nothing hangs: SIGUSR1 keeps its default meaning
    d2 = Daemon().start()
    d2.proc.send_signal(signal.SIGUSR1)
    d2.proc.wait(10)
    expect_eq(d2.proc.returncode, -signal.SIGUSR1, "dagd's end on SIGUSR1 without the variable")
    d2.proc = None
    assert "hanging" not in d2.stderr()


# --- idle exit ------------------------------------------------------------------


@test(timeout=120)
def idle_exit_waits_for_clients_tasks_and_retries_then_exits_0_and_activation_brings_everything_back():
    w = workdir()
    n = NotifySocket(w)
    d = ActivatedDaemon(args=["--exit-idle-after", "1"], setenv={"NOTIFY_SOCKET": n.path}).start()
    # a DAG that runs for about 1.5 s, a task that fails once and is retried
    # after 2.5 s, a manual project with a ready task (not due: it waits for
    # an operator), all made on one connection held open for 1.5 s more
    with d.client() as c:
        c.call("daemon.status")
        p = shell_dag(d, w)
        r = d.project(autonomous=True)
        flaky = d.add(r, f"test -e {w}/flaky || {{ touch {w}/flaky; exit 1; }}", title="flaky",
                      max_retries=1, retry_backoff=2.5)["id"]
        m = d.project()
        ready = d.add(m, f"touch {w}/manual", title="manual")["id"]
        d._drop_client()
        time.sleep(1.5)
        assert d.running(), "dagd exited with a client connected:\n" + d.stderr_tail()
    d.wait_done(p, timeout=30)
    d._drop_client()
    t0 = time.monotonic()
    rc = d.wait_exit(20)
    expect_eq(rc, 0, "dagd's exit status when idle")
    waited = time.monotonic() - t0
    log = d.stderr()
    assert "idle for 1 s" in log, d.stderr_tail()
    # (counted from its last turn of work, which came just before the client left)
    assert waited >= 0.8, f"exited {waited:.2f}s after the last client left; idle time is 1 s"
    n.wait(lambda x: x.get("STOPPING") == "1", 2, "STOPPING=1 at the idle exit")
    n.close()

    # the next connection starts it again: every task and event is there
    d2 = ActivatedDaemon(args=["--exit-idle-after", "5"], directory=d.dir).start()
    _started_remove(d)
    tasks = {t["id"]: t for t in d2.call("task.list")["tasks"]}
    for t in d2.tasks(p) + d2.tasks(r):
        expect_eq(t["status"], "completed", f"task {t['id']} after activation")
    expect_eq(tasks[flaky]["attempt"], 2, "attempts of the retried task")
    expect_eq(tasks[ready]["status"], "ready", "the manual project's task")
    runs = open(f"{w}/log").read().split()
    expect_eq(sorted(runs), sorted(t["id"] for t in d2.tasks(p)), "runs of the DAG (one each)")
    d2.call("task.start", task_id=ready)
    d2.wait_done(m, timeout=30)
    d2.stop()


def _started_remove(d):
    """d's directory now belongs to the daemon that follows it."""
    if d in dagdtest._started:
        dagdtest._started.remove(d)


# --- the journal ------------------------------------------------------------------


class FakeJournal:
    """A datagram socket where a private mount namespace will have
    /run/systemd/journal/socket, read all the time as journald reads (a
    sender blocks once a few datagrams wait unread), into entries."""

    def __init__(self, jdir):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(os.path.join(jdir, "socket"))
        os.chmod(os.path.join(jdir, "socket"), 0o666)
        self.entries, self.lock = [], threading.Lock()
        self.sock.settimeout(0.1)
        self.open = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.open:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            entry = {}
            for line in data.split(b"\n"):
                if b"=" in line:
                    k, v = line.split(b"=", 1)
                    entry[k.decode()] = v.decode(errors="replace")
            with self.lock:
                self.entries.append(entry)

    def close(self):
        self.open = False
        self.thread.join()
        self.sock.close()


def fake_journal(w):
    """A FakeJournal and its directory."""
    jdir = os.path.join(w, "journal")
    os.mkdir(jdir)
    return FakeJournal(jdir), jdir


def journal_entries(j, timeout=0.5):
    """What came since the last call (native journal protocol, simple fields
    as dicts), once nothing more came for a moment (at most timeout)."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        with j.lock:
            n = len(j.entries)
        if n == seen and n:
            break
        seen = n
        time.sleep(0.2)
    with j.lock:
        out, j.entries = j.entries, []
    return out


class JournalDaemon(Daemon):
    """A dagd in a private mount namespace whose journal socket is ours; with
    journal_stream, its stderr is named by JOURNAL_STREAM as under systemd."""

    def __init__(self, jdir, args=(), journal_stream=False):
        super().__init__(args=args)
        self.jdir = jdir
        self.journal_stream = journal_stream

    def start(self, timeout=30):
        if os.geteuid() != 0 or not shutil.which("unshare"):
            skip("needs root and unshare for a private mount namespace")
        self.starts += 1
        self.stderr_path = os.path.join(self.dir, f"stderr.{self.starts}")
        script = ('mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
                  'mount --bind "$0" /run/systemd/journal && exec "$@"')
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, self.jdir,
               DAGD, "--socket", self.sock, "--state-dir", self.state_dir, "--plugin-dir",
               self.plugin_dir] + self.args
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        with open(self.stderr_path, "wb") as err:
            if self.journal_stream:
                st = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, cwd=self.dir)
        wait_for(lambda: self._answers() or self.proc.poll() is not None, timeout,
                 what="dagd to answer")
        assert self.proc.poll() is None, "dagd exited at start:\n" + self.stderr_tail()
        return self

    def _answers(self):
        try:
            with self.client(timeout=2) as c:
                c.call("daemon.status")
            return True
        except (OSError, AssertionError, Timeout):
            return False


def check_journal_fields(d, s):
    p = d.project(autonomous=True)
    t = d.add(p, "sleep 30", title="slow", timeout=0.5)
    d.wait_done(p, timeout=30, status="failed")
    entries = journal_entries(s)
    assert entries, "nothing was sent to the journal"
    assert all(e.get("SYSLOG_IDENTIFIER") == "dagd" and e.get("PRIORITY", "").isdigit()
               for e in entries), f"entries without identifier or priority: {entries[:3]}"
    about = [e for e in entries if e.get("DAGD_TASK") == t["id"]]
    assert about, f"no entry with DAGD_TASK={t['id']}: {entries}"
    e = about[0]
    expect_eq(e.get("DAGD_PROJECT"), p["id"], "DAGD_PROJECT")
    expect_eq(e.get("DAGD_SANDBOX"), f"{t['id']}.1", "DAGD_SANDBOX")
    assert "timed out" in e.get("MESSAGE", ""), e
    assert "timed out" not in d.stderr(), "journal messages also went to stderr"


@test
def under_systemd_messages_go_to_the_journal_with_task_project_and_sandbox_fields():
    w = workdir()
    s, jdir = fake_journal(w)
    d = JournalDaemon(jdir, journal_stream=True).start()
    check_journal_fields(d, s)
    d.stop()
    s.close()


@test
def log_target_journal_forces_the_journal_and_stderr_stays_the_default():
    w = workdir()
    s, jdir = fake_journal(w)
    d = JournalDaemon(jdir, args=["--log-target", "journal"]).start()
    check_journal_fields(d, s)
    d.stop()
    journal_entries(s, 0.2)             # what it said as it stopped
    plain = JournalDaemon(jdir).start()
    assert "ready" in plain.stderr(), plain.stderr_tail()
    plain.stop()
    expect_eq(journal_entries(s, 0.2), [], "journal entries of a dagd not under systemd")
    s.close()
    rc = subprocess.run([DAGD, "--log-target", "syslog"], capture_output=True, timeout=10).returncode
    expect_eq(rc, 2, "exit status for an unknown --log-target")


# --- make install ---------------------------------------------------------------------


OUT_OF_TREE = r"""
#include <errno.h>
#include <dagd/executor.h>

static int x_init(const struct dagd_host *h, const char *o, void **s, char **e) { *s = 0; return 0; }
static void x_shutdown(void *s) { }
static int x_spawn(void *s, struct dagd_sandbox *sb, const struct dagd_spawn *spec, void **d,
		   char **e) { return -EOPNOTSUPP; }
static int x_cancel(void *s, struct dagd_sandbox *sb, void *d, uint64_t g) { return 0; }
static int x_adopt(void *s, struct dagd_sandbox *sb, const struct dagd_spawn *spec,
		   const char *handle, void **d, char **e) { return -EOPNOTSUPP; }

const struct dagd_executor dagd_executor = {
	.abi_version = DAGD_EXECUTOR_ABI_VERSION, .size = sizeof(struct dagd_executor),
	.name = "outoftree", .description = "built with pkg-config against the installed header",
	.init = x_init, .shutdown = x_shutdown, .spawn = x_spawn, .cancel = x_cancel,
	.adopt = x_adopt,
};
"""


@test(timeout=600)
def make_install_puts_everything_in_place_and_a_plugin_builds_out_of_tree_with_pkg_config():
    w = workdir()
    prefix = os.path.join(w, "prefix")
    make_install("", prefix)
    for f in ("sbin/dagd", "bin/dagctl", "lib/dagd/plugins/local.so", "include/dagd/executor.h",
              "lib/pkgconfig/dagd.pc", "lib/systemd/system/dagd.socket",
              "lib/systemd/system/dagd.service", "lib/systemd/user/dagd.socket",
              "lib/systemd/user/dagd.service", "lib/sysusers.d/dagd.conf"):
        assert os.path.exists(os.path.join(prefix, f)), f"make install did not install {f}"
    unit = open(os.path.join(prefix, "lib/systemd/system/dagd.service")).read()
    assert f"ExecStart={prefix}/sbin/dagd " in unit, "the unit does not name the installed dagd"
    env = {**os.environ, "PKG_CONFIG_PATH": os.path.join(prefix, "lib/pkgconfig")}
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "dagd"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert flags.returncode == 0, flags.stderr
    plugindir = subprocess.run(["pkg-config", "--variable=plugindir", "dagd"], env=env,
                               capture_output=True, text=True, timeout=30).stdout.strip()
    expect_eq(plugindir, os.path.join(prefix, "lib/dagd/plugins"), "pkg-config plugindir")
    src = os.path.join(w, "x.c")
    with open(src, "w") as f:
        f.write(OUT_OF_TREE)
    pdir = os.path.join(w, "plugins")
    os.mkdir(pdir)
    cc = subprocess.run(f"cc -shared -fPIC -Wall -Werror -Wno-unused-parameter -o {pdir}/x.so "
                        f"{src} {flags.stdout.strip()}", shell=True, capture_output=True,
                        text=True, timeout=120)
    assert cc.returncode == 0, f"out-of-tree plugin: {cc.stderr}"
    d = Daemon(plugin_dir=pdir).start()
    ex = d.call("executor.list")["executors"]
    expect_eq([(e["name"], e["error"]) for e in ex], [("outoftree", None)], "executors")
    d.stop()
    # the installed daemon looks for its plugins where this PREFIX put them
    d = Daemon(env={k: v for k, v in os.environ.items() if k != "DAGD_PLUGIN_DIR"})
    d.start_installed(os.path.join(prefix, "sbin/dagd"))
    ex = {e["name"]: e["path"] for e in d.call("executor.list")["executors"]}
    expect_eq(ex.get("local"), os.path.join(prefix, "lib/dagd/plugins/local.so"), "the installed local.so")
    d.stop()


if __name__ == "__main__":
    main()
