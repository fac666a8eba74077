"""`dagctl board --watch` in a real terminal: tmux runs it in a pane of a
private server, and what the pane shows is read with capture-pane.  The lanes
and the header follow a running DAG at two sizes; the keys a and s do what
they say; ^C, q and SIGTERM give the terminal back as it was; a restart of the
daemon is said and survived; colour only without NO_COLOR.  Skipped if tmux
cannot be found."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import time

from dagdtest import DAGCTL, SANITIZER_RE, Daemon, expect_eq, main, skip, test, wait_for, workdir

TMUX = shutil.which("tmux")
LANES = ("WAITING", "READY", "RUNNING", "VALIDATING", "DONE", "FAILED")
LANE_RE = re.compile(r"\b(" + "|".join(LANES) + r") (\d+)\b")


class Pane:
    """One tmux server of our own with one pane, cols x rows, running `shell`."""

    def __init__(self, cols, rows, shell, env=None):
        if not TMUX:
            skip("tmux is not installed")
        self.sock = os.path.join(workdir(), "tmux")
        e = {k: v for k, v in os.environ.items() if k not in ("TMUX", "NO_COLOR")}
        e.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color",
                  "SHELL": "/bin/sh"})
        e.update(env or {})
        self.run("-f", "/dev/null", "new-session", "-d", "-x", str(cols), "-y", str(rows),
                 shell, env=e)
        self.run("set-option", "-g", "status", "off")

    def run(self, *args, env=None):
        p = subprocess.run([TMUX, "-S", self.sock] + list(args), env=env, capture_output=True,
                           text=True, timeout=20)
        assert p.returncode == 0, f"tmux {' '.join(args)}: {p.stderr}"
        return p.stdout

    def screen(self, escapes=False):
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "0")

    def show(self, fmt):
        return self.run("display-message", "-p", "-t", "0", fmt).strip()

    def keys(self, *keys):
        self.run("send-keys", "-t", "0", *keys)

    def resize(self, cols, rows):
        self.run("resize-window", "-t", "0", "-x", str(cols), "-y", str(rows))

    def wait(self, predicate, what, timeout=20):
        last = [""]

        def check():
            last[0] = self.screen()
            return last[0] if predicate(last[0]) else None
        try:
            return wait_for(check, timeout=timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; the pane shows:\n{last[0]}")

    def wait_text(self, text, timeout=20):
        return self.wait(lambda s: text in s, f"{text!r} on the screen", timeout)

    def dagctl_pid(self):
        """The pid of the dagctl the pane's shell runs."""
        sh = int(self.show("#{pane_pid}"))

        def find():
            with open(f"/proc/{sh}/task/{sh}/children") as f:
                kids = [int(x) for x in f.read().split()]
            return next((k for k in kids if "dagctl" in open(f"/proc/{k}/cmdline").read()), None)
        return wait_for(find, what="dagctl in the pane")

    def close(self):
        subprocess.run([TMUX, "-S", self.sock, "kill-server"], capture_output=True, timeout=20)


def board(d, project, cols, rows, env=None, after="sleep 600"):
    """A pane running board --watch; when it ends, the shell writes its exit
    status and `stty -a` to files, then waits."""
    w = workdir()
    # (the shell lives on after a ^C, as an interactive one would)
    cmd = (f"trap : INT; {shlex.quote(DAGCTL)} --socket {shlex.quote(d.sock)} board "
           f"{shlex.quote(project)} --watch; echo $? > {w}/rc; stty -a > {w}/stty; "
           f"echo BOARD-ENDED; {after}")
    pane = Pane(cols, rows, cmd, env)
    pane.files = w
    return pane


def lanes(screen):
    """{lane: (count, [task ids on its cards])}, read by column from the screen."""
    lines = screen.splitlines()
    out, heads = {}, []         # heads: (line, col, lane)
    for i, line in enumerate(lines):
        for m in LANE_RE.finditer(line):
            out[m.group(1)] = (int(m.group(2)), [])
            heads.append((i, m.start(), m.group(1)))
    for i, line in enumerate(lines):
        for m in re.finditer(r"\bt-\d+\b", line):
            above = [h for h in heads if h[0] < i]
            if not above:
                continue
            row = max(h[0] for h in above)
            cols = sorted(h for h in above if h[0] == row)
            lane = [h for h in cols if h[1] <= m.start()]
            if lane:
                out[lane[-1][2]][1].append(m.group(0))
    return out


def lane_rows(screen):
    """How many lanes side by side: the most lane titles on one line."""
    return max((len(LANE_RE.findall(line)) for line in screen.splitlines()), default=0)


def card_in(screen, task_id, lane):
    got = lanes(screen)
    return lane in got and task_id in got[lane][1]


def gate(w, name):
    return f"while [ ! -e {w}/{name} ]; do sleep 0.05; done"


def check_restored(pane):
    """The board has left: the normal screen, the cursor shown, the terminal
    in its cooked mode with echo, and dagctl's exit status."""
    s = pane.wait_text("BOARD-ENDED")
    assert not SANITIZER_RE.search(s), f"sanitizer report from dagctl:\n{s}"
    expect_eq(pane.show("#{alternate_on}"), "0", "alternate screen after the board")
    expect_eq(pane.show("#{cursor_flag}"), "1", "cursor shown after the board")
    stty = open(f"{pane.files}/stty").read()
    for flag in ("icanon", "echo", "isig"):
        assert re.search(rf"(?<![-\w]){flag}\b", stty), f"{flag} is off after the board: {stty}"
    return int(open(f"{pane.files}/rc").read())


@test(timeout=180)
def the_board_follows_a_running_dag_and_fits_two_sizes():
    d = Daemon().start()
    w = workdir()
    p = d.project(max_concurrency=3)
    a = d.add(p, gate(w, "a"), title="Fetch")["id"]
    b = d.add(p, gate(w, "b"), title="Build a thing with a rather long title", depends_on=[a])["id"]
    c = d.add(p, gate(w, "c"), title="Check", depends_on=[a])["id"]
    e = d.add(p, "exit 2", title="Explode", depends_on=[a])["id"]
    f = d.add(p, "true", title="Finish", depends_on=[b, c])["id"]
    pane = board(d, p["name"], 120, 30)
    try:
        s = pane.wait_text("Start Processing · 1 ready")
        expect_eq(lane_rows(s), 6, f"lanes side by side at 120 columns:\n{s}")
        expect_eq({k: v[0] for k, v in lanes(s).items()},
                  {"WAITING": 4, "READY": 1, "RUNNING": 0, "VALIDATING": 0, "DONE": 0, "FAILED": 0},
                  "counts at first")
        assert card_in(s, a, "READY") and card_in(s, f, "WAITING"), s
        expect_eq(pane.show("#{alternate_on}"), "1", "the board is in the alternate screen")

        pane.keys("s")                  # start processing: a runs
        s = pane.wait(lambda s: card_in(s, a, "RUNNING"), "a in RUNNING")
        expect_eq(d.task(a)["status"], "running", "a after s")
        assert "released 1 ready task" in s, s
        assert d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"] \
            is False, "s turned autonomous mode on"

        pane.keys("a")                  # autonomous: b, c and e run as a completes
        pane.wait_text("Autonomous: ON · 1 running")
        expect_eq(d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"],
                  True, "autonomous mode after a")
        open(f"{w}/a", "w").close()
        s = pane.wait(lambda s: card_in(s, a, "DONE") and card_in(s, e, "FAILED")
                      and card_in(s, b, "RUNNING") and card_in(s, c, "RUNNING"),
                      "a done, e failed, b and c running")
        assert "Autonomous: ON · 2 running" in s, s
        assert re.search(rf"{b} Build a[^\n]*…", s) and "long title" not in s, \
            f"the long title is not cut:\n{s}"

        pane.resize(60, 24)             # narrow: three lanes a row
        s = pane.wait(lambda s: lane_rows(s) == 3, "three lanes a row at 60 columns")
        assert max(len(line) for line in s.splitlines()) <= 60, s
        assert card_in(s, b, "RUNNING") and card_in(s, e, "FAILED"), s
        open(f"{w}/b", "w").close()
        open(f"{w}/c", "w").close()
        s = pane.wait(lambda s: lanes(s).get("DONE", (0,))[0] == 4, "four tasks done")
        assert card_in(s, f, "DONE"), s
        assert "wait 0 ready 0 run 0 val 0 done 4 fail 1" in s, s

        pane.resize(60, 16)             # too short for the done lane: +N more
        s = pane.wait_text("+3 more")
        pane.keys("a")
        pane.wait_text("Start Processing · 0 ready")
        expect_eq(d.call("project.get", project=p["id"])["project"]["autonomous_execution_enabled"],
                  False, "autonomous mode after a again")
        pane.keys("q")
        expect_eq(check_restored(pane), 0, "exit status after q")
    finally:
        pane.close()


@test(timeout=120)
def ctrl_c_and_sigterm_give_the_terminal_back():
    d = Daemon().start()
    p = d.project()
    d.add(p, "true", title="one")
    pane = board(d, p["name"], 80, 20)
    try:
        pane.wait_text("Start Processing · 1 ready")
        pane.keys("C-c")
        expect_eq(check_restored(pane), 0, "exit status after ^C")
    finally:
        pane.close()
    pane = board(d, p["name"], 80, 20)
    try:
        pane.wait_text("Start Processing · 1 ready")
        os.kill(pane.dagctl_pid(), signal.SIGTERM)
        expect_eq(check_restored(pane), 0, "exit status after SIGTERM")
    finally:
        pane.close()


@test(timeout=120)
def a_restart_of_the_daemon_is_said_and_survived():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    a = d.add(p, gate(w, "a"), title="long")["id"]
    d.wait_task_status(a, "running")
    pane = board(d, p["name"], 100, 24)
    try:
        s = pane.wait(lambda s: card_in(s, a, "RUNNING"), "a running")
        d.stop()
        s = pane.wait_text("lost dagd")
        assert card_in(s, a, "RUNNING"), f"the board forgot what it knew:\n{s}"
        d.start()
        pane.wait_text("reconnected to dagd")
        b = d.add(p, "true", title="added after the restart")["id"]
        open(f"{w}/a", "w").close()
        s = pane.wait(lambda s: card_in(s, a, "DONE") and card_in(s, b, "DONE"),
                      "both done after the restart")
        assert "Autonomous: ON · 0 running" in s, s
        pane.keys("q")
        expect_eq(check_restored(pane), 0, "exit status")
    finally:
        pane.close()


@test(timeout=120)
def a_task_that_fails_while_watched_counts_down_to_its_retry_on_its_card():
    d = Daemon().start()
    p = d.project(autonomous=True)
    pane = board(d, p["name"], 160, 24)
    try:
        pane.wait_text("Autonomous: ON · 0 running")
        # the retry comes 30 to 90 s later: the board learns when from the event
        t = d.add(p, "exit 1", title="flaky", max_retries=1, retry_backoff=60)["id"]
        retry_re = re.compile(rf"#1 · retry in (\d+)s\b|#1 · retry in 1m(\d\d)s\b")

        def left(screen):
            m = retry_re.search(screen)
            return None if not m else int(m.group(1)) if m.group(1) else 60 + int(m.group(2))
        s = pane.wait(lambda s: card_in(s, t, "READY") and left(s) is not None,
                      "the countdown on the card")
        first = left(s)
        assert 25 <= first <= 91, f"the countdown starts at {first}s:\n{s}"
        s = pane.wait(lambda s: left(s) is not None and left(s) <= first - 2,
                      "the countdown going down", timeout=10)
        d.call("task.cancel", task_id=t)
        s = pane.wait(lambda s: card_in(s, t, "FAILED"), "the cancelled task in FAILED")
        assert "retry in" not in s, f"a cancelled task counts down still:\n{s}"
        pane.keys("q")
        expect_eq(check_restored(pane), 0, "exit status")
    finally:
        pane.close()


@test(timeout=120)
def colour_on_a_terminal_and_none_with_no_color():
    d = Daemon().start()
    p = d.project()
    d.add(p, "true", title="one")
    for env, coloured in (({}, True), ({"NO_COLOR": "1"}, False)):
        pane = board(d, p["name"], 80, 20, env=env)
        try:
            pane.wait_text("Start Processing · 1 ready")
            s = pane.screen(escapes=True)
            expect_eq(bool(re.search(r"\x1b\[[0-9;]*3[1-7]m", s)), coloured,
                      f"colour with {env or 'no NO_COLOR'}")
            pane.keys("q")
            expect_eq(check_restored(pane), 0, "exit status")
        finally:
            pane.close()


if __name__ == "__main__":
    main()
