"""Approval gates: a task of kind approval runs no sandbox; once its
dependencies completed it is awaiting_approval (TASK_AWAITING_APPROVAL) until
an operator approves it (it completes, its result flows on) or rejects it (it
fails, its dependents become upstream_failed); a timeout decides with
on_timeout.  Autonomous mode never approves; only operators decide; it all
survives kill -9."""

import json
import os
import time

from dagdtest import (DAGCTL, Client, Daemon, daemon, expect_eq, expect_error, main, read_file,
                      run_as_nobody, select_events, test, wait_for, workdir)


def gate_dag(d, w, **gate):
    """build -> gate (approval) -> deploy, in an autonomous project."""
    p = d.project(autonomous=True)
    r = d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "build", "title": "build", "command": f"echo built >> {w}/build"},
        dict({"name": "gate", "title": "ship it?", "kind": "approval", "depends_on": ["build"]}, **gate),
        {"name": "deploy", "title": "deploy", "depends_on": ["gate"],
         "command": f"echo $DAGD_ATTEMPT >> {w}/deploy"},
    ])
    ids = {t["name"]: t["id"] for t in r["tasks"]}
    return p, ids


@test
def an_approval_waits_for_an_operator_and_approve_completes_it_with_its_result():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p, ids = gate_dag(d, w)
    g = d.wait_task_status(ids["gate"], "awaiting_approval")
    expect_eq((g["kind"], g["command"], g["sandbox_id"]), ("approval", None, None), "the gate")
    # autonomous mode runs what it can, and never approves
    time.sleep(0.5)
    expect_eq(d.task(ids["gate"])["status"], "awaiting_approval", "the gate, a while later")
    expect_eq(d.task(ids["deploy"])["status"], "waiting", "deploy")
    expect_eq(read_file(f"{w}/deploy"), None, "deploy's marker before the approval")
    rc, out, err = d.dagctl("task", "list", p["name"])
    assert rc == 0 and "awaiting_approval" in out, (rc, out, err)
    rc, out, err = d.dagctl("task", "show", ids["gate"])
    assert rc == 0 and "awaiting_approval" in out and "approval" in out, (rc, out, err)
    rc, out, err = d.dagctl("board", p["name"], "--width", "200")
    assert rc == 0 and "APPROVE?" in out and ids["gate"] in out, (rc, out, err)

    rc, out, err = d.dagctl("approve", f"{p['name']}/gate", "--result", '{"ticket": "CHG-1"}')
    assert rc == 0, err
    assert f"{ids['gate']}: completed" in out, out
    done = d.wait_done(p)
    byname = {t["name"]: t for t in done}
    expect_eq(byname["gate"]["result"], {"ticket": "CHG-1"}, "the gate's result")
    expect_eq(read_file(f"{w}/deploy"), "1\n", "deploy ran once")
    evs = d.events(since, project=p["id"])
    expect_eq(len(select_events(evs, "TASK_AWAITING_APPROVAL", task_id=ids["gate"])), 1, "asked once")
    approved = select_events(evs, "TASK_APPROVED", task_id=ids["gate"])
    expect_eq([(e["payload"]["automatic"], e["payload"]["by_uid"], e["payload"]["result"]) for e in approved],
              [(False, os.getuid(), {"ticket": "CHG-1"})], "TASK_APPROVED")
    expect_eq(select_events(evs, "SANDBOX_SPAWNED", task_id=ids["gate"]), [], "sandboxes of the gate")
    # decided once: a second decision is a conflict
    expect_error(d.call, "conflict", "task.approve", task_id=ids["gate"])
    expect_error(d.call, "conflict", "task.reject", task_id=ids["gate"], message="late")


@test
def reject_fails_it_and_its_dependents_are_upstream_failed():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    p, ids = gate_dag(d, w)
    d.wait_task_status(ids["gate"], "awaiting_approval")
    rc, out, err = d.dagctl("reject", ids["gate"], "--message", "not during the freeze")
    assert rc == 0, err
    tasks = {t["name"]: t for t in d.wait_tasks(p)}
    expect_eq({k: t["status"] for k, t in tasks.items()},
              {"build": "completed", "gate": "failed", "deploy": "upstream_failed"}, "statuses")
    assert "not during the freeze" in tasks["gate"]["error_message"], tasks["gate"]["error_message"]
    evs = d.events(since, project=p["id"])
    expect_eq([e["payload"]["message"] for e in select_events(evs, "TASK_REJECTED")],
              ["not during the freeze"], "TASK_REJECTED")
    expect_eq([(e["payload"]["will_retry"], e["payload"]["rule"]) for e in select_events(evs, "TASK_FAILED")],
              [(False, "rejected")], "TASK_FAILED")
    expect_eq(read_file(f"{w}/deploy"), None, "deploy never ran")
    # and like any failed task it can be asked again
    d.call("task.retry", task_id=ids["gate"])
    d.wait_task_status(ids["gate"], "awaiting_approval")
    expect_eq(d.task(ids["deploy"])["status"], "waiting", "deploy after the retry")
    d.call("task.approve", task_id=ids["gate"])
    d.wait_done(p)
    expect_eq(read_file(f"{w}/deploy"), "1\n", "deploy ran once")


@test
def a_timeout_rejects_by_default_and_approves_when_told():
    d, w = daemon(), workdir()
    since = d.call("daemon.status")["last_event_seq"]
    w2 = workdir()
    p1, ids1 = gate_dag(d, w, timeout=0.5)
    p2, ids2 = gate_dag(d, w2, timeout=0.5, on_timeout="approve")
    t0 = time.monotonic()
    t1 = {t["name"]: t for t in d.wait_tasks(p1)}
    t2 = {t["name"]: t for t in d.wait_tasks(p2)}
    assert time.monotonic() - t0 >= 0.5
    expect_eq((t1["gate"]["status"], t1["deploy"]["status"]), ("failed", "upstream_failed"), "on_timeout reject")
    assert "timeout" in t1["gate"]["error_message"], t1["gate"]["error_message"]
    expect_eq((t2["gate"]["status"], t2["deploy"]["status"]), ("completed", "completed"), "on_timeout approve")
    evs = d.events(since)
    expect_eq([e["payload"]["automatic"] for e in select_events(evs, "TASK_REJECTED", task_id=ids1["gate"])],
              [True], "the automatic rejection")
    expect_eq([e["payload"]["automatic"] for e in select_events(evs, "TASK_APPROVED", task_id=ids2["gate"])],
              [True], "the automatic approval")
    expect_eq(select_events(evs, "TASK_FAILED", task_id=ids1["gate"])[0]["payload"]["rule"],
              "approval_timeout", "the rule")


@test(timeout=120)
def an_approval_survives_kill_9_and_its_deadline_too():
    w = workdir()
    d = Daemon().start()
    p, ids = gate_dag(d, w)
    p2, ids2 = gate_dag(d, workdir(), timeout=3, on_timeout="approve")
    d.wait_task_status(ids["gate"], "awaiting_approval")
    g2 = d.wait_task_status(ids2["gate"], "awaiting_approval")
    deadline = g2["approval_deadline"]
    assert deadline, g2
    d.kill()
    d.start()
    expect_eq(d.task(ids["gate"])["status"], "awaiting_approval", "the gate after kill -9")
    expect_eq(d.task(ids2["gate"])["approval_deadline"], deadline, "the deadline after kill -9")
    d.call("task.approve", task_id=ids["gate"], result=[1, 2])
    d.wait_done(p)
    expect_eq(read_file(f"{w}/deploy"), "1\n", "deploy ran once")
    # the timer is armed again from the stored deadline
    done = {t["name"]: t for t in d.wait_tasks(p2, timeout=30)}
    expect_eq((done["gate"]["status"], done["deploy"]["status"]), ("completed", "completed"),
              "the timed gate after the restart")
    d.kill()
    d.start()
    expect_eq(d.task(ids["gate"])["result"], [1, 2], "the result after another kill -9")
    d.stop()


@test
def only_an_operator_decides_never_a_task_token():
    d, w = daemon(), workdir()
    p, ids = gate_dag(d, w)
    gate = ids["gate"]
    d.wait_task_status(gate, "awaiting_approval")
    e = expect_error(d.call, "permission_denied", "task.approve", task_id=gate, token="0" * 64)
    assert "operator" in e.message, e.message
    expect_error(d.call, "permission_denied", "task.reject", task_id=gate, token="0" * 64, message="x")
    # dagctl inside a task sends the task's token along: refused
    rc, out, err = d.dagctl("approve", gate, env={"DAGD_TASK_TOKEN": "f" * 64})
    assert rc != 0 and "permission_denied" in err + out, (rc, out, err)
    # a task that tries, from its sandbox
    t = d.add(p, f"{DAGCTL} --socket $DAGD_SOCKET approve {gate}"
                 f" > {w}/try.out 2>&1; echo $? > {w}/try.rc", title="sneaky")
    d.wait_task_status(t["id"], ("completed", "failed"))
    assert read_file(f"{w}/try.rc") != "0\n", read_file(f"{w}/try.out")
    assert "permission_denied" in read_file(f"{w}/try.out"), read_file(f"{w}/try.out")
    os.chmod(d.sock, 0o666)
    sock = d.sock

    def as_nobody():
        with Client(sock) as c:
            return [c.request("task.approve", {"task_id": gate}),
                    c.request("task.reject", {"task_id": gate, "message": "no"})]

    if os.geteuid() == 0:
        for reply in run_as_nobody(as_nobody):
            expect_eq((reply["ok"], reply["error"]["code"]), (False, "permission_denied"), "a non-operator")
    expect_eq(d.task(gate)["status"], "awaiting_approval", "the gate after the refusals")


@test
def an_approval_takes_no_slot():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True, max_concurrency=1)
    gate = d.call("task.add", project=p["id"], title="gate", kind="approval")["task"]
    expect_eq(gate["status"], "awaiting_approval", "a gate with no dependencies")
    t = d.add(p, f"touch {w}/ran")
    expect_eq(d.wait_task_status(t["id"], ("completed", "failed"))["status"], "completed", "the other task")
    expect_eq(d.call("project.get", project=p["id"])["project"]["active"], 0, "slots held")
    d.call("task.cancel", task_id=gate["id"])
    expect_eq(d.task(gate["id"])["status"], "cancelled", "a cancelled gate")


@test
def bad_approval_input_is_refused_and_changes_nothing():
    d, w = daemon(), workdir()
    p = d.project()
    since = d.call("daemon.status")["last_event_seq"]
    for args, word in (({"kind": "approval", "command": "true"}, "command"),
                       ({"kind": "approval", "validation_command": "true"}, "validation_command"),
                       ({"kind": "approval", "on_timeout": "maybe"}, "on_timeout"),
                       ({"kind": "approval", "retry_on_exit": [1]}, "retry_on_exit"),
                       ({"kind": "manual"}, "kind"),
                       ({"kind": 1}, "kind"),
                       ({"command": "true", "on_timeout": "approve"}, "on_timeout")):
        e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t", **args)
        assert word in e.message, f"{args}: {e.message}"
    e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t")
    assert "command" in e.message, e.message
    e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t", kind=None)
    assert "command" in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    expect_eq(d.events(since, project=p["id"]), [], "events after the refusals")

    plain = d.add(p, "true")["id"]
    e = expect_error(d.call, "bad_request", "task.approve", task_id=plain)
    assert "approval" in e.message, e.message
    a = d.add(p, "true", title="a")["id"]
    gate = d.call("task.add", project=p["id"], title="g", kind="approval", depends_on=[a])["task"]["id"]
    expect_eq(d.task(gate)["status"], "waiting", "a gate whose dependency has not run")
    e = expect_error(d.call, "invalid_state", "task.approve", task_id=gate)
    assert "waiting" in e.message, e.message
    expect_error(d.call, "bad_request", "task.reject", task_id=gate)
    expect_error(d.call, "bad_request", "task.reject", task_id=gate, message="")
    expect_error(d.call, "bad_request", "task.approve", task_id=gate, reslt=1)
    expect_error(d.call, "not_found", "task.approve", task_id="t-999999")
    expect_error(d.call, "bad_request", "task.approve", task_id=gate, result="x" * (300 * 1024))
    rc, out, err = d.dagctl("reject", gate)
    assert rc != 0 and "--message" in err, (rc, out, err)
    # an edit keeps it an approval: a title or a timeout, never a command
    expect_error(d.call, "bad_request", "task.edit", task_id=gate, command="true")
    expect_error(d.call, "bad_request", "task.edit", task_id=gate, env={"A": "b"})
    d.call("task.edit", task_id=gate, title="go live?", timeout=60)
    got = d.task(gate)
    expect_eq((got["status"], got["title"], got["timeout"], got["kind"], got["command"]),
              ("waiting", "go live?", 60, "approval", None), "the gate after the refusals and an edit")


if __name__ == "__main__":
    main()
