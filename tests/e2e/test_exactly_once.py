"""Exactly once across crashes, checked by the commands' own marker files,
not by the daemon's view: dagd killed (-9) exactly between a sandbox's start
and the commit of its claim, exactly between an exit and its commit, and at
random moments of a DAG of a few hundred tasks while exits arrive and
sandboxes start; the local executor's helper killed; a daemon killed inside a
cancel's grace period."""

import os
import random
import signal
import time

from dagdtest import (Daemon, expect_eq, helper_pid, main, pid_alive, read_file, test, wait_for,
                      workdir)


def lines(path):
    text = read_file(path, "")
    return text.splitlines()


def marker_task(w, name, body="true", deps=(), fail_once=False):
    """A task that notes its start (and whether its dependencies had finished
    then), may fail on its first run, and notes a run that succeeded as one
    line in ok-NAME, just before it exits 0."""
    check = "".join(f"[ -e {w}/ok-{d} ] || echo {name} > {w}/early; " for d in deps)
    fail = (f"if [ ! -e {w}/failed-{name} ]; then touch {w}/failed-{name}; exit 1; fi; "
            if fail_once else "")
    return {"name": name, "title": name, "depends_on": list(deps), "max_retries": 2,
            "retry_backoff": 0.05,
            "command": f"{check}echo start >> {w}/start-{name}; {fail}{body}; echo ok >> {w}/ok-{name}"}


def run_crash_at(point):
    w = workdir()
    d = Daemon(env=dict(os.environ, DAGD_TEST_CRASH_AT=point)).start()
    p = d.project()
    t = d.add(p, f"sleep 0.3; echo ok >> {w}/ok")
    try:
        d.call("project.set_autonomous", project=p["id"], enabled=True)
    except (AssertionError, OSError):
        pass            # it may die before it answers
    # the daemon kills itself at that point; the task goes on meanwhile
    wait_for(lambda: d.proc.poll() is not None, timeout=20, what=f"dagd to die at '{point}'")
    assert f"DAGD_TEST_CRASH_AT={point}" in d.stderr(), d.stderr_tail()
    d.kill()
    d.env = dict(os.environ)
    d.start()
    done = d.wait_task_status(t["id"], ("completed", "failed"))
    expect_eq(done["status"], "completed", "status after the crash")
    expect_eq(done["attempt"], 1, "attempts")
    wait_for(lambda: os.path.exists(f"{w}/ok"), what="the task's marker")
    time.sleep(0.5)
    expect_eq(lines(f"{w}/ok"), ["ok"], "runs that succeeded, by the task's own marker")
    events = d.events(0)
    for typ in ("SANDBOX_SPAWNED", "SANDBOX_EXITED"):
        expect_eq(len([e for e in events if e["type"] == typ]), 1, f"{typ} events")
    ran = [e["payload"]["new_status"] for e in events if e["type"] == "TASK_STATUS_CHANGED"]
    assert "running" in ran, f"the task was never recorded running: {ran}"
    return d


def helper_holds(d):
    """The sandbox ids the daemon's local helper still holds (its L answer)."""
    import socket
    import struct
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(d.state_dir, "local", "helper.sock"))
    s.sendall(struct.pack("=I", 1) + b"L")
    f, held = s.makefile("rb"), []
    while True:
        n = struct.unpack("=I", f.read(4))[0]
        msg = f.read(n)
        if msg[:1] == b"D":
            return held
        if msg[:1] == b"E":         # (H, its hello, comes first)
            held.append(msg[1:].split(b"\0")[0].decode())


@test(timeout=90)
def a_crash_between_a_start_and_its_commit_runs_the_task_once():
    run_crash_at("spawned").stop()


def run_crash_at_reserved_start(add, **project):
    """Tasks add(d, p, w) made (the second's attempt reserved ahead), dagd
    killed at the second start, which goes before its claim's commit; the
    next daemon adopts that sandbox by its reserved id.  Returns the daemon,
    the tasks and the work directory, each task completed as attempt 1."""
    w = workdir()
    d = Daemon(env=dict(os.environ, DAGD_TEST_CRASH_AT="spawned:2")).start()
    p = d.project(**project)
    tasks = add(d, p, w)
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    wait_for(lambda: d.proc.poll() is not None, timeout=20, what="dagd to die at the second start")
    assert "DAGD_TEST_CRASH_AT=spawned:2" in d.stderr(), d.stderr_tail()
    d.kill()
    d.env = dict(os.environ)
    d.start()
    for t in tasks:
        done = d.wait_task_status(t["id"], ("completed", "failed"))
        expect_eq((done["status"], done["attempt"]), ("completed", 1), f"{t['title']} after the crash")
    assert "reserved attempt" in d.stderr() and "adopting it" in d.stderr(), d.stderr_tail()
    time.sleep(0.5)
    expect_eq(lines(f"{w}/start-second"), ["start"], "starts of the second, by its own marker")
    expect_eq(lines(f"{w}/ok-second"), ["ok"], "runs of the second that succeeded")
    return d, tasks, w


@test(timeout=90)
def a_crash_between_a_reserved_start_and_its_commit_adopts_the_sandbox():
    """One slot, two tasks: the second's attempt is reserved (and committed)
    while the first runs, so when the first exits the second starts in that
    same turn, before its claim is committed."""
    def add(d, p, w):
        return [d.add(p, f"sleep 0.5; echo ok >> {w}/ok-first", title="first"),
                d.add(p, f"echo start >> {w}/start-second; sleep 0.3; echo ok >> {w}/ok-second",
                      title="second", priority="low")]
    d, tasks, _ = run_crash_at_reserved_start(add, max_concurrency=1)
    spawned = [e for e in d.events(0) if e["type"] == "SANDBOX_SPAWNED"]
    expect_eq(sorted(e["entity_id"] for e in spawned), sorted(f"{t['id']}.1" for t in tasks),
              "sandboxes spawned")
    d.stop()


@test(timeout=90)
def a_crash_after_a_dependents_start_before_its_dependencys_exit_is_committed():
    """A chain of two: the dependent's attempt is reserved as the first
    starts, so the first's exit starts the dependent in that same turn,
    before the exit or the claim is committed.  The next daemon judges the
    first's exit again (the helper kept it) and adopts the dependent: each
    ran once, the dependent after the first."""
    def add(d, p, w):
        first = d.add(p, f"sleep 0.3; echo ok >> {w}/ok-first", title="first")
        return [first, d.add(p, f"[ -e {w}/ok-first ] || echo early > {w}/early; echo start >> {w}/start-second; "
                                f"sleep 0.3; echo ok >> {w}/ok-second", title="second", depends_on=[first["id"]])]
    d, _, w = run_crash_at_reserved_start(add)
    expect_eq(lines(f"{w}/ok-first"), ["ok"], "runs of the first that succeeded")
    assert not os.path.exists(f"{w}/early"), "the dependent started before the first succeeded"
    d.stop()


@test(timeout=90)
def a_crash_between_an_exit_and_its_commit_judges_it_once():
    run_crash_at("exited").stop()


@test(timeout=90)
def a_crash_between_an_exits_commit_and_its_forget_judges_it_once_and_forgets_it():
    d = run_crash_at("committed")
    # the helper was told to forget the exit the dead daemon had committed
    expect_eq(helper_holds(d), [], "what the helper still holds")
    d.stop()


@test(timeout=90)
def a_killed_helper_fails_its_tasks_as_lost_and_leaves_nothing_running():
    w = workdir()
    d = Daemon().start()
    p = d.project(autonomous=True)
    t = d.add(p, f"echo $$ > {w}/pid; sleep 60 & echo $! > {w}/child; wait", max_lost_retries=0)
    d.wait_task_status(t["id"], "running")
    wait_for(lambda: read_file(f"{w}/child"), what="the task's child")
    task, child = int(read_file(f"{w}/pid")), int(read_file(f"{w}/child"))
    helper = helper_pid(d.state_dir)
    assert helper, "no helper runs for the daemon"
    os.kill(helper, signal.SIGKILL)
    done = d.wait_task_status(t["id"], ("failed", "completed"))
    expect_eq(done["status"], "failed", "status")
    assert "helper" in done["error_message"], done["error_message"]
    wait_for(lambda: not pid_alive(task) and not pid_alive(child), timeout=10,
             what="the task and its child to be gone")
    # and the next task gets a new helper
    t2 = d.add(p, "true")
    expect_eq(d.wait_task_status(t2["id"], ("completed", "failed"))["status"], "completed", "next task")
    d.stop()


@test(timeout=90)
def a_daemon_killed_inside_a_cancels_grace_still_kills_the_task():
    w = workdir()
    d = Daemon(args=["--kill-grace", "1"]).start()
    p = d.project(autonomous=True)
    t = d.add(p, f"trap '' TERM; echo $$ > {w}/pid; while :; do sleep 0.05; done")
    d.wait_task_status(t["id"], "running")
    wait_for(lambda: read_file(f"{w}/pid"), what="the task's pid")
    pid = int(read_file(f"{w}/pid"))
    d.call("task.cancel", task_id=t["id"])
    d.kill()
    # nobody restarts the daemon: the helper holds the SIGKILL due at the
    # end of the grace
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the stubborn task to be killed")
    d.start()
    expect_eq(d.task(t["id"])["status"], "cancelled", "status")
    d.stop()


def soak_dag(w, rng, n):
    """Chains, diamonds and fan-outs over n tasks; about 5% fail once."""
    tasks = []
    for i in range(n):
        name = f"n{i}"
        deps = []
        if i > 0:
            shape = rng.random()
            if shape < 0.35:
                deps = [f"n{i - 1}"]                              # a chain
            elif shape < 0.6 and i > 3:
                deps = [f"n{j}" for j in rng.sample(range(max(0, i - 12), i), 2)]   # a diamond's foot
            elif shape < 0.75:
                deps = [f"n{rng.randrange(max(0, i - 40), i)}"]  # a fan-out
        body = f"sleep 0.{rng.randrange(5, 20):02d}"
        tasks.append(marker_task(w, name, body, deps, fail_once=rng.random() < 0.05))
    return tasks


@test(timeout=280)
def random_kills_during_a_dag_run_every_command_exactly_once():
    rng = random.Random(int(os.environ.get("DAGD_SOAK_SEED", "42")))
    n, kills = int(os.environ.get("DAGD_SOAK_TASKS", "300")), int(os.environ.get("DAGD_SOAK_KILLS", "30"))
    w = workdir()
    d = Daemon(args=["--max-concurrency", "4"]).start()
    dag = soak_dag(w, rng, n)
    made = d.call("task.add_batch", project="soak", tasks=dag,
                  create_project={"autonomous": True, "max_concurrency": 4})["tasks"]
    ids = {t["name"]: t["id"] for t in made}
    killed = 0
    deadline = time.monotonic() + 200
    while killed < kills and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.05, 0.4))
        d.kill()
        killed += 1
        d.start()
        if all(t["status"] in ("completed", "failed") for t in d.tasks("soak")):
            break
    tasks = d.wait_tasks("soak", timeout=200)
    bad = [f"{t['name']}={t['status']}" for t in tasks if t["status"] != "completed"]
    assert not bad, "tasks not completed: " + ", ".join(bad[:20])
    time.sleep(0.3)
    twice = [name for name in ids if len(lines(f"{w}/ok-{name}")) != 1]
    assert not twice, (f"after {killed} kills, commands that did not succeed exactly once "
                       f"(by their own markers): " + ", ".join(
                           f"{name}:{len(lines(f'{w}/ok-{name}'))}" for name in twice[:20]))
    expect_eq(read_file(f"{w}/early"), None, "a task that started before its dependencies finished")
    # a run that failed on purpose was retried once; nothing else ran twice
    for name in ids:
        starts = len(lines(f"{w}/start-{name}"))
        want = 2 if os.path.exists(f"{w}/failed-{name}") else 1
        assert starts == want, f"{name} started {starts} times, expected {want}"
    print(f"# soak: {n} tasks, {killed} kills of dagd, every command succeeded exactly once")
    d.stop()


if __name__ == "__main__":
    main()
