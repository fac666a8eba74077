"""Following with dagctl: `events --follow` and `logs --follow` print every
event and every line, in order, once, across a restart of the daemon; `logs
--follow` ends with its task's attempt (exit 0 if it completed, 1 if not) and
waits for a task that has not run yet."""

import json
import os
import re
import signal
import subprocess
import time

from dagdtest import (DAGCTL, SANITIZER_RE, Daemon, expect_eq, main, test, wait_for, workdir)


class Follower:
    """dagctl running in the background, its output collected in files."""

    def __init__(self, d, *args):
        w = workdir()
        self.out_path, self.err_path = f"{w}/out", f"{w}/err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([DAGCTL, "--socket", d.sock] + [str(a) for a in args],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def out(self):
        return open(self.out_path).read()

    def err(self):
        return open(self.err_path).read()

    def wait_out(self, predicate, what, timeout=30):
        return wait_for(lambda: predicate(self.out()), timeout=timeout, what=what)

    def end(self, timeout=30):
        """Its exit status, once it ends by itself."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"dagctl did not end; stderr: {self.err()}")
        m = SANITIZER_RE.search(self.err())
        assert not m, f"sanitizer report from dagctl:\n{self.err()[:6000]}"
        return rc

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        return self.end()


@test(timeout=120)
def events_follow_sees_every_event_once_in_order_across_a_restart():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    start = d.call("daemon.status")["last_event_seq"]
    f = Follower(d, "events", "--follow", "--project", p["name"], "--since", start)
    a = d.add(p, f"while [ ! -e {w}/go ]; do sleep 0.02; done", title="a")["id"]
    d.wait_task_status(a, "running")
    f.wait_out(lambda o: f"SANDBOX_SPAWNED {a}.1" in o, "the spawn of a")
    d.restart()
    # events while the follower is away: it must get them when it is back
    b = d.add(p, "echo b", title="b", depends_on=[a])["id"]
    open(f"{w}/go", "w").close()
    d.wait_done(p)
    want = [e["seq"] for e in d.events(start, project=p["id"])]
    f.wait_out(lambda o: o.strip() and int(o.split("\n")[-2].split()[0]) == want[-1],
               "the last event")
    time.sleep(0.3)
    expect_eq(f.interrupt(), 0, "exit status after ^C")
    seqs = [int(line.split()[0]) for line in f.out().splitlines()]
    expect_eq(seqs, want, "the seqs printed")
    assert f"TASK_CREATED {b}" in f.out(), f.out()
    err = f.err()
    assert "lost dagd" in err and "reconnected" in err, f"what dagctl said: {err!r}"


@test(timeout=120)
def events_follow_json_with_a_type_filter():
    d = Daemon().start()
    p = d.project(autonomous=True)
    f = Follower(d, "--json", "events", "--follow", "--type", "TASK_COMPLETED")
    time.sleep(0.3)
    t = d.add(p, "true", title="x")["id"]
    d.wait_done(p)
    f.wait_out(lambda o: o.count("\n") >= 1, "an event")
    time.sleep(0.3)
    expect_eq(f.interrupt(), 0, "exit status after ^C")
    evs = [json.loads(line) for line in f.out().splitlines()]
    expect_eq([(e["type"], e["entity_id"]) for e in evs], [("TASK_COMPLETED", t)], "events")


@test(timeout=120)
def logs_follow_sees_every_line_once_in_order_across_a_restart():
    d = Daemon().start()
    w = workdir()
    p = d.project(autonomous=True)
    t = d.add(p, f"i=0; while [ ! -e {w}/stop ]; do i=$((i+1)); echo n$i; sleep 0.01; done; "
                 "printf 'no newline at the end'")["id"]
    d.wait_task_status(t, "running")
    f = Follower(d, "logs", t, "--follow")
    f.wait_out(lambda o: o.count("\n") >= 20, "20 lines")
    d.restart()
    f.wait_out(lambda o: o.count("\n") >= 60, "more lines after the restart")
    open(f"{w}/stop", "w").close()
    expect_eq(f.end(), 0, f"exit status of a completed task ({f.err()})")
    lines = f.out().split("\n")
    expect_eq(lines[-2:], ["no newline at the end", ""], "the end")
    numbers = [int(x[1:]) for x in lines[:-2]]
    expect_eq(numbers, list(range(1, len(numbers) + 1)), "every line once, in order")
    assert "lost dagd" in f.err() and "reconnected" in f.err(), f"what dagctl said: {f.err()!r}"
    rc, out, err = d.dagctl("logs", t)
    expect_eq(out, f.out(), "the log read at once afterwards")


@test(timeout=120)
def logs_follow_exits_1_when_the_task_fails_and_waits_for_one_not_run_yet():
    d = Daemon().start()
    w = workdir()
    p = d.project()
    t = d.add(p, f"echo started; while [ ! -e {w}/go ]; do sleep 0.02; done; echo bye; exit 4",
              title="fails")["id"]
    f = Follower(d, "logs", t, "--follow")
    time.sleep(0.5)
    assert f.proc.poll() is None, f"logs --follow of a task not run yet ended: {f.err()}"
    d.call("project.start", project=p["id"])
    f.wait_out(lambda o: "started" in o, "its first line")
    open(f"{w}/go", "w").close()
    expect_eq(f.end(), 1, "exit status of a failed task")
    expect_eq(f.out(), "started\nbye\n", "output")
    assert re.search(rf"{t} is failed", f.err()), f.err()
    # once over: the whole log, and the same exit status, at once
    rc, out, err = d.dagctl("logs", t, "--follow", timeout=20)
    expect_eq((rc, out), (1, "started\nbye\n"), "logs --follow of a finished attempt")
    rc, out, err = d.dagctl("task", "logs", t)
    expect_eq((rc, out), (0, "started\nbye\n"), "task logs")
    rc, out, err = d.dagctl("--json", "logs", t, "--follow", timeout=20)
    expect_eq([json.loads(x)["lines"] for x in out.splitlines()], [["started", "bye"]], "--json")


if __name__ == "__main__":
    main()
