"""A task's validation command runs after its work succeeded, in its own
sandbox: its dependents wait for the verdict, a failing validator fails the
task (and is retried with it), and the statuses in between are announced.
What a validator prints is its own log, read and followed with task.logs's
`validation` (dagctl logs --validation)."""

import os
import subprocess

from dagdtest import (DAGCTL, SANITIZER_RE, Daemon, expect_eq, main, select_events, test, wait_for,
                      workdir)


@test
def a_passing_validator_completes_the_task_and_only_then_unblocks_dependents():
    d, w = Daemon().start(), workdir()
    p = d.project()
    t = d.add(p, f"echo built > {w}/artifact", title="build",
              validation_command=f"grep -q built {w}/artifact")
    after = d.add(p, "true", title="after", depends_on=[t["id"]])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    changes = [(e["payload"]["old_status"], e["payload"]["new_status"])
               for e in select_events(d.events(0, project=p["id"]), "TASK_STATUS_CHANGED",
                                      task_id=t["id"])]
    expect_eq(changes, [("ready", "spawning"), ("spawning", "running"),
                        ("running", "pending_validation"), ("pending_validation", "validating"),
                        ("validating", "completed")], "the task's way to completed")
    spawned = [e["payload"]["sandbox_id"] for e in d.events(0, project=p["id"])
               if e["type"] == "SANDBOX_SPAWNED"]
    expect_eq(spawned, [f"{t['id']}.1", f"{t['id']}.1.v", f"{after['id']}.1"],
              "sandboxes: the work, its validator, then the dependent")


@test
def a_failing_validator_fails_the_task_and_is_retried_with_it():
    d, w = Daemon().start(), workdir()
    p = d.project(autonomous=True)
    # the work leaves one more line each run; the validator wants two
    t = d.add(p, f"echo run >> {w}/runs", title="flaky",
              validation_command=f"test $(wc -l < {w}/runs) -ge 2",
              max_retries=1, retry_backoff=0.1)
    dep = d.add(p, "true", title="dependent", depends_on=[t["id"]])
    d.wait_done(p)
    expect_eq(d.task(t["id"])["attempt"], 2, "attempts")
    failed = select_events(d.events(0, project=p["id"]), "TASK_FAILED", task_id=t["id"])
    expect_eq([(e["payload"]["error_message"], e["payload"]["will_retry"]) for e in failed],
              [("validation failed: exited with code 1", True)], "the failed validation")

    q = d.project(autonomous=True)
    bad = d.add(q, "true", title="never valid", validation_command="exit 3")
    dep = d.add(q, "true", title="dependent", depends_on=[bad["id"]])
    d.wait_tasks(q, until=lambda ts: all(x["status"] in ("failed", "upstream_failed") for x in ts))
    expect_eq((d.task(bad["id"])["status"], d.task(bad["id"])["error_message"]),
              ("failed", "validation failed: exited with code 3"), "a validator that never passes")
    expect_eq(d.task(dep["id"])["status"], "upstream_failed", "its dependent")


@test(timeout=120)
def logs_validation_shows_and_follows_what_the_validator_printed():
    d, w = Daemon().start(), workdir()
    p = d.project(autonomous=True)
    # the work waits for work-go, the validator of attempt N for go-N; the
    # first attempt's fails, the second's passes
    t = d.add(p, f"echo work output; while [ ! -e {w}/work-go ]; do sleep 0.02; done",
              title="checked", max_retries=1, retry_backoff=0.1,
              validation_command=f"echo checking $DAGD_ATTEMPT; "
                                 f"while [ ! -e {w}/go-$DAGD_ATTEMPT ]; do sleep 0.02; done; "
                                 "echo verdict; test $DAGD_ATTEMPT -ge 2")["id"]
    d.wait_task_status(t, "running")
    # a follower that comes while the work runs waits for the validator
    out_path, err_path = f"{w}/out", f"{w}/err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        follower = subprocess.Popen([DAGCTL, "--socket", d.sock, "logs", t, "--validation",
                                     "--follow"], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        open(f"{w}/work-go", "w").close()
        wait_for(lambda: "checking 1" in open(out_path).read(), timeout=30,
                 what="the validator's first line from the follower")
        expect_eq(d.task(t)["status"], "validating", "the task while its validator runs")
        open(f"{w}/go-1", "w").close()
        rc = follower.wait(30)
    finally:
        if follower.poll() is None:
            follower.kill()
    err = open(err_path).read()
    assert not SANITIZER_RE.search(err), err
    expect_eq((rc, open(out_path).read()), (1, "checking 1\nverdict\n"),
              f"logs --validation --follow of a failing validator ({err.strip()})")
    assert f"{t} is " in err and "validation failed: exited with code 1" in err, \
        f"how it ended: {err!r}"

    open(f"{w}/go-2", "w").close()
    d.wait_task_status(t, "completed")
    rc, out, err = d.dagctl("logs", t, "--validation")
    expect_eq((rc, out), (0, "checking 2\nverdict\n"), f"logs --validation: the latest ({err})")
    rc, out, err = d.dagctl("logs", t, "--validation", "--attempt", 1)
    expect_eq((rc, out), (0, "checking 1\nverdict\n"), f"logs --validation --attempt 1 ({err})")
    rc, out, err = d.dagctl("logs", t)
    expect_eq((rc, out), (0, "work output\n"), "logs without --validation: the work's own")
    r = d.call("task.logs", task_id=t, validation=True, attempt=2)
    expect_eq((r["validation"], r["attempt"], r["lines"]), (True, 2, ["checking 2", "verdict"]),
              "task.logs with validation")
    f = d.call("task.logs", task_id=t, validation=True, follow=True)
    expect_eq((f["following"], f["end"], f["status"]), (False, True, "completed"),
              "following the validator of a finished attempt")
    assert os.path.exists(os.path.join(d.state_dir, "logs", t, "2.validate.log"))

    # a task without a validator: asking for its validation output is an error
    plain = d.add(p, "echo plain", title="plain")["id"]
    d.wait_task_status(plain, "completed")
    with d.client() as c:
        c.send({"id": 1, "cmd": "task.logs", "args": {"task_id": plain, "validation": True}})
        reply = c.read_reply()
    expect_eq(reply["error"]["code"], "invalid_state", "task.logs validation without a validator")
    rc, out, err = d.dagctl("logs", plain, "--validation")
    expect_eq((rc, out), (1, ""), "dagctl logs --validation of a task without a validator")
    assert "no validation command" in err, err


if __name__ == "__main__":
    main()
