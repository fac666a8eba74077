"""dagd under a real systemd: a minimal Debian booted with systemd-nspawn, with
`make install` of the build tree bind-mounted on /usr/local, driven from the
host through nsenter.  The installed units are verified; the socket listens
while the service is inactive; the first dagctl connection starts dagd; a DAG
runs to the end and `systemctl status` shows the STATUS= line; the hardening
holds for dagd and its tasks; a dagd made to hang (the test-only
DAGD_TEST_HANG_SIGNAL) is killed by the watchdog and restarted, and the DAG
still completes; `systemctl stop` then a new connection loses nothing; dagd
exits when idle and the socket brings it back; the journal has its messages
with task, project and sandbox fields; the helper moves into a leaf of its
delegated cgroup, and a task with memory_max is killed at it there (cgroup
v2 with the memory controller) or refused at its start (a hybrid host); the user units work for a user
without root; dagctl finds the system's daemon for a user without one of their
own, and says what to do when they are not in group dagd.

The tree is built once by tests/systemd/rootfs and reused.  Skipped where
nspawn cannot run (not root, no systemd-nspawn, no tree and no debootstrap),
unless DAGD_REQUIRE_SYSTEMD=1: then that is a failure."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from dagdtest import DAGD, SRC, SANITIZER_RE, Skip, Timeout, expect_eq, main, skip, test

REQUIRE = os.environ.get("DAGD_REQUIRE_SYSTEMD") == "1"
SAN = "libasan" in subprocess.run(["ldd", DAGD], capture_output=True, text=True).stdout
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "TERM": "dumb", "LANG": "C.UTF-8"}
UNITS = "/usr/local/lib/systemd/system"
USER_UNITS = "/usr/local/lib/systemd/user"
DROPIN = "/etc/systemd/system/dagd.service.d"
HELPER_DROPIN = "/etc/systemd/system/dagd-helper.service.d"


def unavailable(reason):
    if REQUIRE:
        raise AssertionError(f"DAGD_REQUIRE_SYSTEMD=1, but {reason}")
    skip(reason)


def wait_until(fn, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Container:
    """A booted container and the way into it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dagd-nspawn-")
        self.name = f"dagdtest-{os.getpid()}"
        self.proc = None
        self.leader = None
        self.log = os.path.join(self.dir, "console")

    def boot(self):
        if os.geteuid() != 0:
            unavailable("systemd-nspawn needs root")
        for tool in ("systemd-nspawn", "nsenter"):
            if not shutil.which(tool):
                unavailable(f"{tool} is not installed")
        p = subprocess.run([os.path.join(SRC, "tests/systemd/rootfs")], capture_output=True,
                           text=True, timeout=840)
        if p.returncode != 0:
            unavailable(f"no Debian tree to boot: {p.stderr.strip()[-500:]}")
        rootfs = p.stdout.strip().splitlines()[-1]
        tree = os.path.join(self.dir, "tree")
        p = subprocess.run([os.path.join(SRC, "tests/systemd/install"), os.path.dirname(DAGD),
                            tree, "/usr/local"], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"make install failed:\n{p.stdout}\n{p.stderr}"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["systemd-nspawn", "-D", rootfs, "--register=no", "--keep-unit",
                 "--console=passive", "--volatile=overlay", "-M", self.name,
                 f"--bind-ro={tree}/usr/local:/usr/local", "-b"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            self.leader = wait_until(self._find_leader, 30, "the container's init")
        except Timeout:
            self.stop()
            unavailable("systemd-nspawn did not start a container: " + self.console()[-800:])
        # until its manager answers (it prints a state), then until the boot is over
        wait_until(lambda: self.run("systemctl", "is-system-running", check=False,
                                    timeout=10).stdout.strip(), 90, "systemd to answer")
        p = self.run("systemctl", "is-system-running", "--wait", check=False, timeout=120)
        assert p.stdout.strip() in ("running", "degraded"), \
            f"the container's systemd is {p.stdout.strip()!r} {p.stderr.strip()}"

    def _find_leader(self):
        if self.proc.poll() is not None:
            raise AssertionError("systemd-nspawn exited:\n" + self.console()[-2000:])
        own = os.readlink("/proc/self/ns/pid")
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid == self.proc.pid and os.readlink(f"/proc/{d}/ns/pid") != own:
                    return int(d)
            except (OSError, ValueError, IndexError):
                continue
        return None

    def console(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def run(self, *cmd, input=None, timeout=30, check=True, user=None):
        """Run cmd in the container (all its namespaces); as user (name) if given."""
        argv = ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i"]
        argv += [f"{k}={v}" for k, v in ENV.items()]
        if user:
            argv += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                     "--reset-env"]
        argv += list(cmd)
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"in the container, {' '.join(cmd)}: exit {p.returncode}\n"
                                 f"{p.stdout[-2000:]}{p.stderr[-2000:]}")
        return p

    def sh(self, script, **kw):
        return self.run("sh", "-c", script, **kw)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # nspawn: a clean shutdown of the container
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_container = None
_failure = None


def container():
    """The container of this file, booted and set up on first use; a failure
    to do so is the outcome of every test."""
    global _container, _failure
    if _failure:
        raise _failure
    if _container is None:
        c = Container()
        try:
            c.boot()
            setup(c)
        except (Skip, Exception) as e:
            c.stop()
            _failure = e
            raise
        _container = c
    return _container


def setup(c):
    """The dagd user, a short watchdog and the test-only hang for the tests,
    the socket started (not the service)."""
    c.run("systemd-sysusers")
    env = ["DAGD_TEST_HANG_SIGNAL=USR1"]
    if SAN:     # LeakSanitizer's ptrace is not among the unit's system calls
        env.append("ASAN_OPTIONS=detect_leaks=0")
    c.sh(f"mkdir -p {DROPIN} && printf '[Service]\\nWatchdogSec=5\\nEnvironment={' '.join(env)}\\n'"
         f" > {DROPIN}/test.conf")
    if SAN:
        c.sh(f"mkdir -p {HELPER_DROPIN} && printf '[Service]\\nEnvironment=ASAN_OPTIONS=detect_leaks=0\\n'"
             f" > {HELPER_DROPIN}/test.conf")
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "start", "dagd.socket")


def dagctl(c, *args, input=None, check=True, timeout=30):
    return c.run("dagctl", *args, input=input, check=check, timeout=timeout)


def dagctl_json(c, *args):
    return json.loads(dagctl(c, "--json", *args).stdout)


def apply(c, dag):
    return {t["name"]: t["id"] for t in
            json.loads(dagctl(c, "--json", "apply", "-", input=json.dumps(dag)).stdout)["tasks"]}


def tasks(c, project):
    return {t["name"]: t for t in dagctl_json(c, "task", "list", project)["tasks"]}


def wait_tasks(c, project, until, timeout=60, what="tasks"):
    def check():
        ts = tasks(c, project)
        return ts if until(ts) else None
    try:
        return wait_until(check, timeout, what, 0.3)
    except Timeout:
        raise Timeout(f"timed out waiting for {what}: "
                      + ", ".join(f"{n}={t['status']}" for n, t in tasks(c, project).items()))


def finished(ts):
    return all(t["status"] in ("completed", "failed", "upstream_failed", "cancelled")
               for t in ts.values())


def show(c, unit, *props):
    out = c.run("systemctl", "show", unit, *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def is_active(c, unit):
    return c.run("systemctl", "is-active", unit, check=False).stdout.strip()


# --- the tests, in order: each builds on the state the one before left -----------


@test(timeout=900)
def the_socket_listens_and_the_service_is_inactive_before_any_connection():
    c = container()
    expect_eq(is_active(c, "dagd.socket"), "active", "dagd.socket")
    expect_eq(is_active(c, "dagd.service"), "inactive", "dagd.service before any connection")
    expect_eq(c.run("stat", "-c", "%F %U:%G %a", "/run/dagd/dagd.sock").stdout.strip(),
              "socket root:dagd 666", "the socket file")


@test
def systemd_analyze_verify_passes_on_the_installed_units():
    c = container()
    p = c.run("systemd-analyze", "verify", f"{UNITS}/dagd.socket", f"{UNITS}/dagd.service",
              f"{UNITS}/dagd-helper.socket", f"{UNITS}/dagd-helper.service", check=False)
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), \
        f"systemd-analyze verify: exit {p.returncode}\n{p.stdout}{p.stderr}"


@test
def the_first_dagctl_connection_starts_dagd_as_its_own_user_and_gets_an_answer():
    c = container()
    st = dagctl_json(c, "status")
    expect_eq((st["socket"], st["state_dir"]), ("/run/dagd/dagd.sock", "/var/lib/dagd"),
              "socket and state directory")
    expect_eq(is_active(c, "dagd.service"), "active", "dagd.service after the first connection")
    props = show(c, "dagd.service", "MainPID", "Type", "NotifyAccess")
    expect_eq(int(props["MainPID"]), st["pid"], "the service's main pid")
    status = c.run("cat", f"/proc/{st['pid']}/status").stdout
    uid = c.run("id", "-u", "dagd").stdout.strip()
    assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), f"dagd does not run as dagd:\n{status}"
    log = c.run("journalctl", "-u", "dagd.service", "--no-pager", "-o", "cat").stdout
    assert "ready; state in /var/lib/dagd" in log, log[-2000:]


@test
def a_dag_runs_to_the_end_and_systemctl_status_shows_the_status_line():
    c = container()
    ids = apply(c, {"project": "diamond", "autonomous": True, "tasks": [
        {"name": "a", "title": "A", "command": "sleep 0.5"},
        {"name": "b", "title": "B", "command": "dagctl complete --result '{\"from\": \"b\"}'",
         "depends_on": ["a"]},
        {"name": "c", "title": "C", "command": "sleep 0.5", "depends_on": ["a"]},
        {"name": "d", "title": "D", "command": "true", "depends_on": ["b", "c"]}]})
    ts = wait_tasks(c, "diamond", finished, 60, "the diamond DAG")
    expect_eq({n: t["status"] for n, t in ts.items()}, dict.fromkeys(ids, "completed"), "tasks")
    expect_eq(ts["b"]["result"], {"from": "b"}, "the result a task reported on the socket")
    want = 'Status: "0 running, 0 ready, 0 waiting; 4 completed, 0 failed"'
    out = wait_until(lambda: (lambda o: o if want in o else None)(
        c.run("systemctl", "status", "dagd.service", "--no-pager", check=False).stdout),
        10, "the STATUS= line in systemctl status")
    assert "Active: active (running)" in out, out


@test
def the_hardening_holds_for_dagd_and_its_tasks():
    c = container()
    apply(c, {"project": "hardening", "autonomous": True, "tasks": [
        {"name": "usr", "title": "write /usr", "command": "touch /usr/local/x || touch /usr/x"},
        {"name": "etc", "title": "write /etc", "command": "touch /etc/dagd-x"},
        {"name": "home", "title": "read /root", "command": "ls /root"},
        {"name": "state", "title": "write the state dir", "command": "touch /var/lib/dagd/x"},
        {"name": "db", "title": "read the database", "command": "cat /var/lib/dagd/dagd.db > /dev/null"},
        {"name": "user", "title": "run as dagd-task", "command": "test \"$(id -un)\" = dagd-task"},
        {"name": "caps", "title": "no capability at all",
         "command": "grep -E '^Cap(Inh|Prm|Eff|Amb):' /proc/self/status | grep -vq '0000000000000000$' && exit 1; exit 0"},
        {"name": "operator", "title": "act as an operator", "command": "dagctl task list"},
        {"name": "nnp", "title": "no new privileges",
         "command": "grep -q 'NoNewPrivs:[[:space:]]*1' /proc/self/status"},
        {"name": "notroot", "title": "not root", "command": "test \"$(id -u)\" != 0"}]})
    ts = wait_tasks(c, "hardening", finished, 60, "the hardening tasks")
    expect_eq({n: t["status"] for n, t in ts.items()},
              {"usr": "failed", "etc": "failed", "home": "failed", "state": "failed", "db": "failed",
               "user": "completed", "caps": "completed", "operator": "failed",
               "nnp": "completed", "notroot": "completed"}, "what tasks may do")
    logs = dagctl(c, "task", "logs", ts["usr"]["id"]).stdout
    assert "Read-only file system" in logs, f"the /usr task's output: {logs}"
    p = c.run("test", "-e", "/usr/x", check=False)
    assert p.returncode != 0, "a task wrote /usr"
    logs = dagctl(c, "task", "logs", ts["operator"]["id"]).stdout
    assert "permission" in logs.lower(), f"the operator task's output: {logs}"
    # an operator is not the host's root: no task may ask to be someone else
    p = dagctl(c, "task", "add", "hardening", "--title", "root", "--executor-options", '{"user": "root"}',
               "--", "true", check=False)
    assert p.returncode != 0 and "run as 'dagd-task'" in p.stderr, (p.returncode, p.stderr)
    out = c.run("systemd-analyze", "security", "dagd.service", "--no-pager").stdout
    m = re.search(r"Overall exposure level for dagd.service: ([\d.]+) (\w+)", out)
    assert m, f"no exposure level in:\n{out[-2000:]}"
    print(f"# systemd-analyze security dagd.service: {m.group(1)} {m.group(2)}")
    assert float(m.group(1)) <= 2.5, f"exposure {m.group(1)} (was 1.5): hardening was lost\n{out}"


def sleepers(c, marks):
    """How many processes of the container run `sleep MARK` for these marks."""
    script = ("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done | "
              "grep -cE '^sleep (" + "|".join(marks) + ") $' || true")
    return int(c.run("sh", "-c", script).stdout.strip() or 0)


@test
def a_cancel_kills_everything_the_task_started_even_outside_its_session():
    c = container()
    ids = apply(c, {"project": "contain", "autonomous": True, "tasks": [
        {"name": "escape", "title": "escape",
         "command": "setsid sleep 1001 & (trap '' TERM; exec sleep 1002) & "
                    "trap '' TERM; echo started; while :; do sleep 0.1; done"},
        {"name": "leaves", "title": "leaves a daemon behind", "command": "setsid sleep 1003 &"}]})
    wait_tasks(c, "contain", lambda ts: ts["escape"]["status"] == "running"
               and ts["leaves"]["status"] == "completed", 30, "escape running, leaves done")
    wait_until(lambda: sleepers(c, ["1001", "1002"]) == 2, 15, "the task's two children")
    # the task that ended took what it left behind along
    wait_until(lambda: sleepers(c, ["1003"]) == 0, 15, "what a finished task left behind to be killed")
    out = dagctl(c, "executors").stdout
    assert "each task in a cgroup of its own" in out, f"containment not shown:\n{out}"
    # a pause freezes the task's cgroup (the one that left its session too);
    # the cancel that follows must still reach every process
    dagctl(c, "task", "pause", ids["escape"])
    sandbox = dagctl_json(c, "task", "show", ids["escape"])["task"]["sandbox_id"]
    # the v2 hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host
    v2 = c.run("findmnt", "-n", "-t", "cgroup2", "-o", "TARGET").stdout.split()[0]
    events = f"{v2}/system.slice/dagd-helper.service/{sandbox}/cgroup.events"
    wait_until(lambda: "frozen 1" in c.run("cat", events, check=False).stdout, 15, f"{events}: frozen 1")
    dagctl(c, "task", "cancel", ids["escape"])
    # SIGTERM is ignored by two of them: the SIGKILL at the end of the grace
    # goes to the task's cgroup, which holds the one that left its session too
    wait_until(lambda: sleepers(c, ["1001", "1002"]) == 0, 30, "everything the task started to be killed")
    ts = wait_tasks(c, "contain", finished, 30, "the cancel")
    expect_eq(ts["escape"]["status"], "cancelled", "status")


@test
def a_task_with_limits_is_held_to_them_in_the_delegated_cgroup_or_refused_at_its_start():
    c = container()
    apply(c, {"project": "limits", "autonomous": True, "executor_options": {"memory_max": "16m"}, "tasks": [
        {"name": "grows", "title": "grows", "command": 'x=aaaaaaaa; while :; do x="$x$x"; done'}]})
    ts = wait_tasks(c, "limits", finished, 60, "the limited task")
    # the helper moved into a leaf of its own: its cgroup may then hand
    # controllers to its tasks' cgroups, beside that leaf
    pid = show(c, "dagd-helper.service", "MainPID")["MainPID"]
    cg = c.run("cat", f"/proc/{pid}/cgroup").stdout
    assert "::/system.slice/dagd-helper.service/.helper\n" in cg, f"the helper's cgroups:\n{cg}"
    out = dagctl(c, "executors").stdout
    m = re.search(r"(no limits|limits by cgroup v\d)\S*(?: \S+)*", out)
    print(f"# the helper's limits: {m.group(0).strip() if m else out}")
    msg = ts["grows"]["error_message"]
    expect_eq(ts["grows"]["status"], "failed", "the limited task")
    if "limits by cgroup v2: memory_max" in out:
        assert msg.startswith("out of memory"), msg
    else:
        # a hybrid host: every controller is the v1 hierarchies', which the
        # helper (user dagd) may not write
        assert "no limits (memory_max, pids_max, cpu_max)" in out, out
        assert "memory_max needs the cgroup memory controller, which the local helper cannot use here" in msg, msg


@test
def a_hung_dagd_is_killed_by_the_watchdog_and_restarted_and_the_dag_completes():
    c = container()
    ids = apply(c, {"project": "watchdog", "autonomous": True, "tasks": [
        {"name": "slow", "title": "slow", "command": "sleep 6"},
        {"name": "after", "title": "after", "command": "true", "depends_on": ["slow"]}]})
    wait_tasks(c, "watchdog", lambda ts: ts["slow"]["status"] == "running", 30, "slow running")
    before = show(c, "dagd.service", "MainPID", "NRestarts")
    c.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGUSR1", "dagd.service")
    after = wait_until(lambda: (lambda p: p if int(p["NRestarts"]) > int(before["NRestarts"])
                                and p["MainPID"] not in ("0", before["MainPID"]) else None)(
        show(c, "dagd.service", "MainPID", "NRestarts")), 30, "the watchdog restart")
    log = c.run("journalctl", "-u", "dagd.service", "--no-pager", "-o", "cat").stdout
    assert "hanging on purpose" in log, log[-2000:]
    assert "Watchdog timeout" in log, log[-2000:]
    ts = wait_tasks(c, "watchdog", finished, 60, "the DAG after the restart")
    expect_eq({n: (t["status"], t["attempt"]) for n, t in ts.items()},
              {"slow": ("completed", 1), "after": ("completed", 1)},
              "status and attempts (the running task adopted, not run again)")
    assert after["MainPID"] != before["MainPID"]
    # the journal has the adoption, with the task's fields
    entries = [json.loads(line) for line in c.run(
        "journalctl", "-o", "json", "--no-pager", "_SYSTEMD_UNIT=dagd.service",
        f"DAGD_TASK={ids['slow']}").stdout.splitlines()]
    adopt = [e for e in entries if "adopting sandbox" in e.get("MESSAGE", "")]
    assert adopt, f"no journal entry with DAGD_TASK={ids['slow']} about its adoption: {entries}"
    project = dagctl_json(c, "project", "show", "watchdog")["project"]["id"]
    expect_eq((adopt[0].get("DAGD_PROJECT"), adopt[0].get("DAGD_SANDBOX")),
              (project, f"{ids['slow']}.1"), "DAGD_PROJECT and DAGD_SANDBOX")


@test
def systemctl_stop_then_a_new_connection_loses_nothing():
    c = container()
    apply(c, {"project": "stop", "autonomous": True, "tasks": [
        {"name": "long", "title": "long", "command": "sleep 4"},
        {"name": "next", "title": "next", "command": "true", "depends_on": ["long"]}]})
    wait_tasks(c, "stop", lambda ts: ts["long"]["status"] == "running", 30, "long running")
    before = dagctl_json(c, "status")
    c.run("systemctl", "stop", "dagd.service", timeout=60)
    expect_eq(is_active(c, "dagd.service"), "inactive", "dagd.service after systemctl stop")
    expect_eq(is_active(c, "dagd.socket"), "active", "dagd.socket after systemctl stop")
    expect_eq(show(c, "dagd.service", "ExecMainStatus")["ExecMainStatus"], "0",
              "dagd's exit status on SIGTERM")
    after = dagctl_json(c, "status")            # starts it again
    assert after["pid"] != before["pid"]
    assert after["last_event_seq"] >= before["last_event_seq"], (before, after)
    expect_eq(after["projects"], before["projects"], "projects after the restart")
    ts = wait_tasks(c, "stop", finished, 60, "the DAG after the restart")
    expect_eq({n: (t["status"], t["attempt"]) for n, t in ts.items()},
              {"long": ("completed", 1), "next": ("completed", 1)}, "status and attempts")
    for p in ("diamond", "watchdog"):
        assert all(t["status"] == "completed" for t in tasks(c, p).values()), p


@test
def dagd_exits_when_idle_and_the_socket_starts_it_again():
    c = container()
    c.sh(f"printf '[Service]\\nExecStart=\\nExecStart=/usr/local/sbin/dagd --exit-idle-after 2\\n'"
         f" > {DROPIN}/idle.conf")
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "stop", "dagd.service", timeout=60)
    before = dagctl_json(c, "status")
    wait_until(lambda: is_active(c, "dagd.service") == "inactive", 20, "dagd to exit when idle")
    props = show(c, "dagd.service", "Result", "ExecMainStatus", "NRestarts")
    expect_eq((props["Result"], props["ExecMainStatus"]), ("success", "0"), "how it exited")
    expect_eq(is_active(c, "dagd.socket"), "active", "dagd.socket")
    log = c.run("journalctl", "-u", "dagd.service", "--no-pager", "-o", "cat").stdout
    assert "idle for 2 s" in log, log[-2000:]
    after = dagctl_json(c, "status")
    assert after["pid"] != before["pid"]
    expect_eq((after["projects"], after["tasks"], after["last_event_seq"]),
              (before["projects"], before["tasks"], before["last_event_seq"]),
              "projects, tasks and events after the idle exit")
    c.run("rm", f"{DROPIN}/idle.conf")
    c.run("systemctl", "daemon-reload")


@test
def no_sanitizer_report_and_no_error_from_dagd_in_the_journal():
    c = container()
    log = c.run("journalctl", "-u", "dagd.service", "-u", "dagd-helper.service", "--no-pager", "-o", "cat").stdout
    m = SANITIZER_RE.search(log)
    assert not m, "sanitizer report in the journal:\n" + log[max(0, m.start() - 200):][:4000]
    errors = c.run("journalctl", "SYSLOG_IDENTIFIER=dagd", "--priority=err", "--no-pager",
                   "-o", "cat", "--quiet").stdout.splitlines()
    # (a plugin that cannot start here, e.g. with no Docker engine, is not dagd's error)
    errors = [e for e in errors if not e.startswith("/usr/local/lib/dagd/plugins/")]
    expect_eq(errors, [], "dagd's errors in the journal")


@test
def the_user_units_run_dagd_for_a_user_without_root():
    c = container()
    c.run("useradd", "--create-home", "--uid", "1500", "operator1")
    c.run("systemctl", "start", "user@1500.service", timeout=60)
    u = dict(user="operator1")
    env = ["env", "XDG_RUNTIME_DIR=/run/user/1500", f"PATH={ENV['PATH']}"]
    p = c.run(*env, "systemd-analyze", "--user", "verify", f"{USER_UNITS}/dagd.socket",
              f"{USER_UNITS}/dagd.service", check=False, **u)
    assert p.returncode == 0 and not (p.stdout + p.stderr).strip(), \
        f"systemd-analyze --user verify: exit {p.returncode}\n{p.stdout}{p.stderr}"
    if SAN:
        c.run(*env, "systemctl", "--user", "set-environment", "ASAN_OPTIONS=detect_leaks=0", **u)
    c.run(*env, "systemctl", "--user", "start", "dagd.socket", **u)
    expect_eq(c.run(*env, "systemctl", "--user", "is-active", "dagd.service", check=False,
                    **u).stdout.strip(), "inactive", "the user's dagd.service before a connection")
    dag = {"project": "mine", "autonomous": True, "tasks": [
        {"name": "a", "title": "A", "command": "touch $HOME/made-by-a; dagctl complete"}]}
    out = c.run(*env, "dagctl", "--json", "apply", "-", input=json.dumps(dag), **u).stdout
    assert json.loads(out)["tasks"], out
    st = json.loads(c.run(*env, "dagctl", "--json", "status", **u).stdout)
    expect_eq((st["socket"], st["state_dir"]),
              ("/run/user/1500/dagd.sock", "/home/operator1/.local/state/dagd"),
              "the user's dagd: socket and state")

    def done():
        ts = json.loads(c.run(*env, "dagctl", "--json", "task", "list", "mine", **u).stdout)
        return all(t["status"] == "completed" for t in ts["tasks"])
    wait_until(done, 30, "the user's DAG")
    c.run("test", "-e", "/home/operator1/made-by-a")
    status = c.run(*env, "systemctl", "--user", "status", "dagd.service", "--no-pager",
                   check=False, **u).stdout
    assert "1 completed" in status, status



@test
def an_operator_without_a_daemon_of_their_own_reaches_the_system_one():
    c = container()
    c.run("useradd", "--create-home", "--uid", "1501", "operator2")
    u = dict(user="operator2")
    # the socket lets anyone in (a task reports through it); only operators
    # may do more than report
    p = c.run("dagctl", "status", check=False, **u)
    expect_eq(p.returncode, 1, "dagctl status, not in group dagd")
    assert "permission_denied" in p.stderr and "for operators only" in p.stderr and \
        "are you in\ngroup dagd?" in p.stderr and "usermod -aG dagd operator2" in p.stderr, p.stderr
    c.run("usermod", "-aG", "dagd", "operator2")
    st = json.loads(c.run("dagctl", "--json", "status", **u).stdout)
    expect_eq(st["socket"], "/run/dagd/dagd.sock", "the daemon operator2 reaches")
    p = c.run("dagctl", "--user", "status", check=False, **u)
    assert p.returncode == 2 and "/run/user/1501/dagd.sock" in p.stderr and \
        "systemctl --user enable --now dagd.socket" in p.stderr, p.stderr
    # operator1 has a daemon of their own (the test before): theirs first,
    # --system for the system's, which they may not use
    env = ["env", "XDG_RUNTIME_DIR=/run/user/1500", f"PATH={ENV['PATH']}"]
    st = json.loads(c.run(*env, "dagctl", "--json", "status", user="operator1").stdout)
    expect_eq(st["socket"], "/run/user/1500/dagd.sock", "the daemon operator1 reaches")
    p = c.run(*env, "dagctl", "--system", "status", check=False, user="operator1")
    assert p.returncode == 1 and "group dagd?" in p.stderr, p.stderr

if __name__ == "__main__":
    try:
        main()
    finally:
        if _container is not None:
            _container.stop()
