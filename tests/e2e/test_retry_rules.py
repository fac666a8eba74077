"""Retries that know why: retry_on_exit and no_retry_on_exit choose which
exit codes are retried under max_retries; a sandbox the executor lost is
retried under max_lost_retries, which does not use up max_retries;
max_retry_duration caps the time spent retrying.  TASK_FAILED names the rule
that decided; the rules and the lost count survive a restart."""

import os
import signal
import time

from dagdtest import (Daemon, daemon, expect_eq, expect_error, helper_pid, main, parse_time, read_file,
                      select_events, test, wait_for, workdir)


def by_attempt(w, codes):
    """A command that appends its attempt to w/runs and exits with
    codes[attempt - 1] (the last one after that)."""
    case = " ".join(f"{i + 1}) exit {c};;" for i, c in enumerate(codes[:-1]))
    return (f"echo $DAGD_ATTEMPT >> {w}/runs; case $DAGD_ATTEMPT in {case} *) exit {codes[-1]};; esac")


def failures(d, since, task_id):
    return [(e["payload"]["attempt"], e["payload"]["will_retry"], e["payload"]["rule"])
            for e in select_events(d.events(since), "TASK_FAILED", task_id=task_id)]


def runs(w):
    return (read_file(f"{w}/runs") or "").split()


@test
def retry_on_exit_retries_only_the_codes_it_lists():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, by_attempt(w, [75, 75, 3]), max_retries=5, retry_backoff=0.05,
              retry_on_exit=[75, 76])
    done = d.wait_task_status(t["id"], ("failed", "completed"))
    expect_eq((done["status"], done["attempt"]), ("failed", 3), "status and attempts")
    expect_eq(runs(w), ["1", "2", "3"], "runs (marker file)")
    expect_eq(failures(d, since, t["id"]),
              [(1, True, "retry_on_exit"), (2, True, "retry_on_exit"), (3, False, "retry_on_exit")],
              "TASK_FAILED events")
    expect_eq(done["retry_on_exit"], [75, 76], "retry_on_exit as the task shows it")


@test
def retry_on_exit_still_counts_max_retries():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, by_attempt(w, [75]), max_retries=1, retry_backoff=0.05, retry_on_exit=[75])
    done = d.wait_task_status(t["id"], ("failed", "completed"))
    expect_eq(runs(w), ["1", "2"], "runs")
    expect_eq(failures(d, since, t["id"]), [(1, True, "retry_on_exit"), (2, False, "max_retries")],
              "TASK_FAILED events")
    expect_eq(done["status"], "failed", "status")


@test
def no_retry_on_exit_stops_at_a_listed_code():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, by_attempt(w, [1, 1, 2, 0]), max_retries=5, retry_backoff=0.05,
              no_retry_on_exit=[2])
    done = d.wait_task_status(t["id"], ("failed", "completed"))
    expect_eq((done["status"], done["attempt"]), ("failed", 3), "status and attempts")
    expect_eq(runs(w), ["1", "2", "3"], "runs")
    expect_eq(failures(d, since, t["id"]),
              [(1, True, "max_retries"), (2, True, "max_retries"), (3, False, "no_retry_on_exit")],
              "TASK_FAILED events")
    assert "code 2" in done["error_message"], done["error_message"]


@test
def max_retries_alone_names_its_rule():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, by_attempt(w, [1]), max_retries=2, retry_backoff=0.05)
    d.wait_task_status(t["id"], ("failed", "completed"))
    expect_eq(runs(w), ["1", "2", "3"], "runs")
    expect_eq(failures(d, since, t["id"]),
              [(1, True, "max_retries"), (2, True, "max_retries"), (3, False, "max_retries")],
              "TASK_FAILED events")


def kill_helper_while_running(d, w, n):
    """Wait for the n-th run to be under way, then kill the local helper:
    the sandbox is lost."""
    wait_for(lambda: len(runs(w)) >= n and os.path.exists(f"{w}/up.{n}"), what=f"run {n}")
    helper = helper_pid(d.state_dir)
    assert helper, "no helper"
    os.kill(helper, signal.SIGKILL)


LOST_CMD = ("echo $DAGD_ATTEMPT >> {w}/runs; n=$(wc -l < {w}/runs); touch {w}/up.$n; "
            "if [ $n -le {hang} ]; then sleep 60; fi; exit {last}")


@test(timeout=120)
def a_lost_sandbox_is_retried_without_using_up_max_retries():
    w = workdir()
    d = Daemon().start()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, LOST_CMD.format(w=w, hang=2, last=0), max_retries=0, retry_backoff=0.05)
    kill_helper_while_running(d, w, 1)
    kill_helper_while_running(d, w, 2)
    done = d.wait_task_status(t["id"], ("failed", "completed"), timeout=60)
    expect_eq((done["status"], done["attempt"], done["lost_retries"]), ("completed", 3, 2),
              "status, attempts, lost retries")
    expect_eq(runs(w), ["1", "2", "3"], "runs")
    expect_eq(failures(d, since, t["id"]),
              [(1, True, "max_lost_retries"), (2, True, "max_lost_retries")], "TASK_FAILED events")
    d.stop()


@test(timeout=120)
def max_lost_retries_runs_out_and_says_so_and_max_retries_is_still_whole():
    w = workdir()
    d = Daemon().start()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    # lost twice (budget 1), so it fails as lost; max_retries 1 was not used
    t = d.add(p, LOST_CMD.format(w=w, hang=2, last=0), max_retries=1, retry_backoff=0.05,
              max_lost_retries=1)
    kill_helper_while_running(d, w, 1)
    kill_helper_while_running(d, w, 2)
    done = d.wait_task_status(t["id"], ("failed", "completed"), timeout=60)
    expect_eq((done["status"], done["attempt"]), ("failed", 2), "status and attempts")
    expect_eq(failures(d, since, t["id"]),
              [(1, True, "max_lost_retries"), (2, False, "max_lost_retries")], "TASK_FAILED events")
    expect_eq(runs(w), ["1", "2"], "runs")
    d.stop()


@test(timeout=120)
def a_lost_retry_count_survives_a_kill_9():
    w = workdir()
    d = Daemon().start()
    p = d.project(autonomous=True)
    t = d.add(p, LOST_CMD.format(w=w, hang=3, last=0), max_retries=0, retry_backoff=0.05,
              max_lost_retries=1)
    kill_helper_while_running(d, w, 1)
    wait_for(lambda: d.task(t["id"])["lost_retries"] == 1, what="the lost retry")
    wait_for(lambda: os.path.exists(f"{w}/up.2"), what="run 2")
    d.kill()
    helper = helper_pid(d.state_dir)
    if helper:
        os.kill(helper, signal.SIGKILL)
    d.start()
    # the second loss (whether found at start-up or after) uses up the budget of 1
    done = d.wait_task_status(t["id"], ("failed", "completed"), timeout=60)
    expect_eq((done["status"], done["lost_retries"], done["max_lost_retries"]), ("failed", 1, 1),
              "after the restart")
    d.stop()


@test(timeout=90)
def max_retry_duration_caps_the_time_spent_retrying():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, f"echo $DAGD_ATTEMPT >> {w}/runs; sleep 0.4; exit 1", max_retries=100,
              retry_backoff=0.05, max_retry_duration=1.2)
    start = time.monotonic()
    done = d.wait_task_status(t["id"], ("failed", "completed"), timeout=60)
    took = time.monotonic() - start
    n = len(runs(w))
    assert 2 <= n <= 5, f"{n} runs within a 1.2 s retry duration"
    assert took >= 1.2, f"gave up after {took:.2f}s"
    evs = failures(d, since, t["id"])
    expect_eq(evs[-1], (n, False, "max_retry_duration"), "the last TASK_FAILED")
    assert all(e[1] for e in evs[:-1]), evs
    expect_eq((done["status"], done["attempt"]), ("failed", n), "status and attempts")


@test(timeout=90)
def max_retry_duration_counts_from_the_first_attempt_across_a_kill_9():
    w = workdir()
    d = Daemon().start()
    since = d.call("daemon.status")["last_event_seq"]
    p = d.project(autonomous=True)
    t = d.add(p, f"echo $DAGD_ATTEMPT >> {w}/runs; exit 1", max_retries=1000, retry_backoff=0.3,
              max_retry_duration=4)
    wait_for(lambda: len(runs(w)) >= 2, what="two runs")
    first = d.task(t["id"])["first_started_at"]
    assert first, d.task(t["id"])
    d.kill()
    d.start()
    expect_eq(d.task(t["id"])["first_started_at"], first, "first_started_at after kill -9")
    done = d.wait_task_status(t["id"], "failed", timeout=60)
    expect_eq(done["first_started_at"], first, "first_started_at at the end")
    last = select_events(d.events(since), "TASK_FAILED", task_id=t["id"])[-1]
    expect_eq((last["payload"]["will_retry"], last["payload"]["rule"]), (False, "max_retry_duration"),
              "the last TASK_FAILED")
    elapsed = parse_time(last["time"]) - parse_time(first)
    assert 4 <= elapsed < 30, f"gave up {elapsed:.1f}s after the first start"
    # task.retry starts the clock again
    d.call("task.retry", task_id=t["id"])
    wait_for(lambda: (d.task(t["id"])["first_started_at"] or first) != first, what="a new first start")
    d.call("task.cancel", task_id=t["id"])
    d.stop()


@test(timeout=90)
def the_rules_survive_a_restart():
    w = workdir()
    d = Daemon().start()
    p = d.project()
    a = d.add(p, "exit 3", retry_on_exit=[3, 200], max_lost_retries=7, max_retry_duration=30)
    b = d.add(p, "exit 3", no_retry_on_exit=[0, 255])
    c = d.add(p, "true")
    d.kill()
    d.start()
    for t, want in ((a, {"retry_on_exit": [3, 200], "no_retry_on_exit": None, "max_lost_retries": 7,
                         "max_retry_duration": 30}),
                    (b, {"retry_on_exit": None, "no_retry_on_exit": [0, 255], "max_lost_retries": 3,
                         "max_retry_duration": None}),
                    (c, {"retry_on_exit": None, "no_retry_on_exit": None, "max_lost_retries": 3,
                         "max_retry_duration": None})):
        got = d.task(t["id"])
        expect_eq({k: got[k] for k in want}, want, f"{t['id']} after a restart")
    d.stop()


@test
def bad_rules_are_refused_and_change_nothing():
    d = daemon()
    p = d.project()
    since = d.call("daemon.status")["last_event_seq"]
    for args, word in (({"retry_on_exit": [1], "no_retry_on_exit": [2]}, "at most one"),
                       ({"retry_on_exit": [256]}, "retry_on_exit"),
                       ({"retry_on_exit": [-1]}, "retry_on_exit"),
                       ({"retry_on_exit": ["3"]}, "retry_on_exit"),
                       ({"retry_on_exit": [1.5]}, "retry_on_exit"),
                       ({"retry_on_exit": []}, "retry_on_exit"),
                       ({"retry_on_exit": 3}, "retry_on_exit"),
                       ({"no_retry_on_exit": [300]}, "no_retry_on_exit"),
                       ({"max_lost_retries": -1}, "max_lost_retries"),
                       ({"max_lost_retries": "3"}, "max_lost_retries"),
                       ({"max_retry_duration": "1h"}, "max_retry_duration"),
                       ({"max_retry_duration": -5}, "max_retry_duration"),
                       ({"max_retry_durations": 5}, "max_retry_duration"),
                       ({"on_timeout": "approve"}, "on_timeout")):
        e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t",
                         command=["true"], **args)
        assert word in e.message, f"{args}: {e.message}"
    e = expect_error(d.call, "bad_request", "task.add_batch", project=p["id"],
                     tasks=[{"name": "ok", "title": "t", "command": "true"},
                            {"name": "bad", "title": "t", "command": "true", "retry_on_exit": [999]}])
    assert "tasks[1]" in e.message and "retry_on_exit" in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    expect_eq(d.events(since, project=p["id"]), [], "events after the refusals")


if __name__ == "__main__":
    main()
