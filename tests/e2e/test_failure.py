"""Failures: dependents become upstream_failed and come back with task.retry;
retries with exponential backoff; timeouts; cancellation."""

from dagdtest import (daemon, expect_eq, main, parse_time, pid_alive, read_file,
                      select_events, test, wait_for, workdir)


@test
def failure_in_the_middle_fails_dependents_transitively_and_retry_recovers():
    d, w = daemon(), workdir()
    p = d.project()
    a = d.add(p, "true", title="a")["id"]
    b = d.add(p, f"test -f {w}/fixed", title="b (fails until fixed)", depends_on=[a])["id"]
    c = d.add(p, "true", title="c", depends_on=[b])["id"]
    last = d.add(p, "true", title="d", depends_on=[c])["id"]
    side = d.add(p, "true", title="side", depends_on=[a])["id"]
    since = d.call("daemon.status")["last_event_seq"]

    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["id"]: t for t in d.wait_tasks(p)}
    expect_eq({k: t["status"] for k, t in tasks.items()},
              {a: "completed", b: "failed", c: "upstream_failed", last: "upstream_failed",
               side: "completed"}, "statuses after the failure")
    assert tasks[b]["error_message"], "a failed task has an error_message"
    events = d.events(since, project=p["id"])
    failed = select_events(events, "TASK_FAILED", task_id=b)
    expect_eq([(x["payload"]["attempt"], x["payload"]["will_retry"]) for x in failed],
              [(1, False)], "TASK_FAILED events of b")
    for t in (c, last):
        expect_eq(len(select_events(events, "TASK_STATUS_CHANGED", task_id=t,
                                    new_status="upstream_failed")), 1,
                  f"events making {t} upstream_failed")
    expect_eq(select_events(events, "SANDBOX_SPAWNED", task_id=c), [], "sandboxes of c")

    open(f"{w}/fixed", "w").close()
    since = d.call("daemon.status")["last_event_seq"]
    r = d.call("task.retry", task_id=b)["task"]
    assert r["status"] not in ("failed", "waiting"), f"b after task.retry: {r['status']}"
    tasks = d.wait_done(p)
    expect_eq({t["id"]: t["attempt"] for t in tasks}, {a: 1, b: 2, c: 1, last: 1, side: 1},
              "attempts")
    events = d.events(since, project=p["id"], types=["TASK_STATUS_CHANGED"])
    for t in (c, last):
        back = select_events(events, task_id=t, old_status="upstream_failed")
        expect_eq([x["payload"]["new_status"] for x in back], ["waiting"],
                  f"{t} after the retry")


@test
def failed_attempts_retry_with_growing_backoff_until_one_succeeds():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    # Fails on attempts 1-3 (each leaves a mark), succeeds on the 4th.
    cmd = (f"date +%s.%N >> {w}/starts; n=$(wc -l < {w}/starts); "
           f"echo $DAGD_ATTEMPT >> {w}/attempts; test $n -ge 4")
    backoff = 0.4
    t = d.add(p, cmd, max_retries=3, retry_backoff=backoff)["id"]
    done = d.wait_done(p, timeout=60)[0]

    expect_eq(done["attempt"], 4, "attempts")
    expect_eq(read_file(f"{w}/attempts"), "1\n2\n3\n4\n", "DAGD_ATTEMPT of each run")
    events = d.events(0, project=p["id"])
    failed = select_events(events, "TASK_FAILED", task_id=t)
    expect_eq([(x["payload"]["attempt"], x["payload"]["will_retry"]) for x in failed],
              [(1, True), (2, True), (3, True)], "TASK_FAILED (attempt, will_retry)")
    for x in failed:
        assert x["payload"]["retry_at"], f"TASK_FAILED with will_retry has no retry_at: {x}"
        assert x["payload"]["error_message"], f"TASK_FAILED without error_message: {x}"
    completed = select_events(events, "TASK_COMPLETED", task_id=t)
    expect_eq([x["payload"]["attempt"] for x in completed], [4], "TASK_COMPLETED attempts")

    starts = [float(x) for x in read_file(f"{w}/starts").split()]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    for n, gap in enumerate(gaps, 1):
        nominal = backoff * 2 ** (n - 1)
        assert 0.5 * nominal - 0.05 <= gap <= 1.5 * nominal + 1.5, \
            f"gap before attempt {n + 1} is {gap:.3f}s; backoff {nominal}s +-50%"
    assert gaps[2] > gaps[0], f"backoff does not grow: gaps {gaps}"


@test
def failure_with_no_retries_left_fails_the_task_with_the_exit_code():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "exit 7", max_retries=2, retry_backoff=0.1)["id"]
    done = d.wait_tasks(p, timeout=30)[0]
    expect_eq((done["status"], done["attempt"]), ("failed", 3), "status and attempts")
    assert "7" in done["error_message"], f"error_message lacks the exit code: {done}"
    failed = select_events(d.events(0, project=p["id"]), "TASK_FAILED", task_id=t)
    expect_eq([x["payload"]["will_retry"] for x in failed], [True, True, False], "will_retry")
    expect_eq(failed[-1]["payload"]["retry_at"], None, "retry_at of the last failure")


@test
def timeout_fails_the_task_and_kills_its_sandbox():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    t = d.add(p, f"sleep 30 & echo $! > {w}/pid; wait", timeout=1)["id"]
    pid = int(wait_for(lambda: (read_file(f"{w}/pid") or "").strip(), 15, what="the sandbox"))
    done = d.wait_tasks(p, timeout=20)[0]
    expect_eq(done["status"], "failed", "status")
    assert "time" in (done["error_message"] or "").lower(), \
        f"error_message does not mention the timeout: {done['error_message']!r}"
    took = parse_time(done["finished_at"]) - parse_time(done["started_at"])
    assert 0.9 <= took <= 15, f"timed out after {took:.2f}s with timeout 1"
    wait_for(lambda: not pid_alive(pid), 10, what="the sandbox's child to be killed")
    exited = select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED", task_id=t)
    expect_eq(len(exited), 1, "SANDBOX_EXITED events")


@test
def cancel_stops_the_sandbox_and_fails_dependents():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    a = d.add(p, f"echo $$ > {w}/pid; exec sleep 30", title="long")["id"]
    b = d.add(p, "true", title="after", depends_on=[a])["id"]
    pid = int(wait_for(lambda: (read_file(f"{w}/pid") or "").strip(), 15, what="the sandbox"))
    d.wait_task_status(a, "running")

    d.call("task.cancel", task_id=a)
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=20)}
    expect_eq((tasks[a]["status"], tasks[b]["status"]), ("cancelled", "upstream_failed"),
              "statuses after cancel")
    wait_for(lambda: not pid_alive(pid), 10, what="the cancelled sandbox to die")


if __name__ == "__main__":
    main()
