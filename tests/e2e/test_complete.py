"""task.complete: the response, reports from inside a sandbox (dagctl and a
raw line), idempotency, conflicts, and who may report."""

import json
import os
import sys

from dagdtest import (DAGCTL, Client, daemon, expect_eq, expect_error, main, read_env,
                      read_file, run_as_nobody, select_events, skip, test, wait_for, workdir)


def running_task(d, w, project=None, name="env", **args):
    """Start a task that writes its environment to w/name and sleeps; wait
    until it runs; return (task id, its environment)."""
    p = project or d.project(autonomous=True)
    t = d.add(p, f"env > {w}/{name}.tmp && mv {w}/{name}.tmp {w}/{name}; exec sleep 30",
              **args)["id"]
    env = wait_for(lambda: read_env(f"{w}/{name}"), 20, what=f"{t}'s sandbox")
    d.wait_task_status(t, "running")
    return t, env


def accepted(r, task_id, new_status, unblocked=()):
    expect_eq(r.get("status"), "accepted", "status")
    expect_eq(r.get("task_id"), task_id, "task_id")
    expect_eq(r.get("new_status"), new_status, "new_status")
    expect_eq(sorted(r.get("unblocked_tasks")), sorted(unblocked), "unblocked_tasks")


@test
def dagctl_complete_in_a_sandbox_reports_result_and_unblocked_tasks():
    d, w = daemon(), workdir()
    p = d.project()
    a = d.add(p, f"{DAGCTL} --json complete --result '{{\"answer\": 42}}' > {w}/reply.tmp"
                 f" && mv {w}/reply.tmp {w}/reply", title="reports")["id"]
    other = d.add(p, "true", title="not started")["id"]
    b = d.add(p, "true", title="b", depends_on=[a])["id"]
    c = d.add(p, "true", title="c", depends_on=[a])["id"]
    d.add(p, "true", title="needs other too", depends_on=[a, other])

    d.call("task.start", task_id=a)
    t = d.wait_task_status(a, ("completed", "failed"))
    expect_eq(t["status"], "completed", f"status (error: {t['error_message']})")
    expect_eq(t["result"], {"answer": 42}, "result stored on the task")
    reply = wait_for(lambda: read_file(f"{w}/reply"), 10, what="dagctl's output")
    accepted(json.loads(reply), a, "completed", [b, c])
    events = d.events(0, project=p["id"])
    done = select_events(events, "TASK_COMPLETED", task_id=a)
    expect_eq([(x["payload"]["result"], x["payload"]["attempt"]) for x in done],
              [({"answer": 42}, 1)], "TASK_COMPLETED events (the exit after the report adds none)")


@test
def raw_task_complete_line_from_a_sandbox_is_accepted():
    d, w = daemon(), workdir()
    script = f"""
import json, os, socket
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["DAGD_SOCKET"])
s.sendall(json.dumps({{"id": "r", "cmd": "task.complete", "args": {{
    "task_id": os.environ["DAGD_TASK_ID"], "token": os.environ["DAGD_TASK_TOKEN"],
    "result": [1, "two", None]}}}}).encode() + b"\\n")
reply = s.makefile().readline()
open("{w}/reply.tmp", "w").write(reply); os.rename("{w}/reply.tmp", "{w}/reply")
"""
    with open(f"{w}/report.py", "w") as f:
        f.write(script)
    p = d.project(autonomous=True)
    a = d.add(p, [sys.executable, f"{w}/report.py"])["id"]
    reply = json.loads(wait_for(lambda: read_file(f"{w}/reply"), 20, what="the reply"))
    expect_eq((reply.get("id"), reply.get("ok")), ("r", True), "id and ok")
    accepted(reply["result"], a, "completed")
    expect_eq(d.wait_task_status(a, "completed")["result"], [1, "two", None], "stored result")


@test
def same_report_twice_gets_the_same_answer_and_a_different_one_a_conflict():
    d, w = daemon(), workdir()
    t, env = running_task(d, w)
    token = env["DAGD_TASK_TOKEN"]
    with d.client() as c:
        first = c.call("task.complete", task_id=t, token=token, result={"v": 1})
        accepted(first, t, "completed")
        seq = c.call("daemon.status")["last_event_seq"]
        again = c.call("task.complete", task_id=t, token=token, result={"v": 1})
        expect_eq(again, first, "the answer to the same report")
        expect_eq(c.call("daemon.status")["last_event_seq"], seq, "events after the repeat")
        expect_error(c.call, "conflict", "task.complete", task_id=t, token=token,
                     result={"v": 2})
        expect_error(c.call, "conflict", "task.complete", task_id=t, token=token,
                     success=False, error_message="no")
        expect_eq(c.call("daemon.status")["last_event_seq"], seq, "events after conflicts")
    expect_eq(d.task(t)["result"], {"v": 1}, "stored result")


@test
def failed_report_fails_the_task_and_its_dependents():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    t, env = running_task(d, w, project=p)
    after = d.add(p, "true", depends_on=[t])["id"]
    r = d.call("task.complete", task_id=t, token=env["DAGD_TASK_TOKEN"], success=False,
               error_message="broken by the test")
    accepted(r, t, "failed")
    task = d.task(t)
    expect_eq((task["status"], task["error_message"]), ("failed", "broken by the test"), "task")
    expect_eq(d.task(after)["status"], "upstream_failed", "dependent")


@test
def token_of_another_task_or_a_forged_one_is_denied():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    a, env_a = running_task(d, w, project=p, name="a")
    b, env_b = running_task(d, w, project=p, name="b")
    seq = d.call("daemon.status")["last_event_seq"]
    expect_error(d.call, "permission_denied", "task.complete", task_id=b,
                 token=env_a["DAGD_TASK_TOKEN"])
    expect_error(d.call, "permission_denied", "task.complete", task_id=a,
                 token=env_a["DAGD_TASK_TOKEN"] + "x")
    expect_error(d.call, "permission_denied", "task.complete", task_id=a, token="")
    expect_eq(d.call("daemon.status")["last_event_seq"], seq, "events after denied reports")
    expect_eq((d.task(a)["status"], d.task(b)["status"]), ("running", "running"), "statuses")
    accepted(d.call("task.complete", task_id=b, token=env_b["DAGD_TASK_TOKEN"]), b, "completed")


@test
def token_of_a_previous_attempt_is_denied():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    t = d.add(p, f'env > {w}/env.tmp; mv {w}/env.tmp {w}/env.$DAGD_ATTEMPT; '
                 f'test "$DAGD_ATTEMPT" = 2 && exec sleep 30; exit 1',
              max_retries=1, retry_backoff=0.1)["id"]
    old = wait_for(lambda: read_env(f"{w}/env.1"), 20, what="attempt 1")
    new = wait_for(lambda: read_env(f"{w}/env.2"), 20, what="attempt 2")
    d.wait_task_status(t, "running")
    assert old["DAGD_TASK_TOKEN"] != new["DAGD_TASK_TOKEN"], "two attempts share a token"
    expect_eq((old["DAGD_SANDBOX_ID"], new["DAGD_SANDBOX_ID"]), (f"{t}.1", f"{t}.2"),
              "DAGD_SANDBOX_ID")
    expect_error(d.call, "permission_denied", "task.complete", task_id=t,
                 token=old["DAGD_TASK_TOKEN"])
    accepted(d.call("task.complete", task_id=t, token=new["DAGD_TASK_TOKEN"]), t, "completed")


@test
def non_operator_may_only_complete_with_the_right_token():
    if os.geteuid() != 0:
        skip("needs root to run a client as user nobody")
    d, w = daemon(), workdir()
    t, env = running_task(d, w)
    token = env["DAGD_TASK_TOKEN"]
    os.chmod(d.sock, 0o666)
    sock = d.sock

    def as_nobody():
        out = {}
        with Client(sock) as c:
            for name, cmd, args in [
                    ("list", "project.list", {}),
                    ("status", "daemon.status", {}),
                    ("no token", "task.complete", {"task_id": t}),
                    ("bad token", "task.complete", {"task_id": t, "token": token[::-1]}),
                    ("token", "task.complete", {"task_id": t, "token": token})]:
                out[name] = c.request(cmd, args)
        return out

    out = run_as_nobody(as_nobody)
    for name in ("list", "status", "no token", "bad token"):
        expect_eq((out[name]["ok"], out[name]["error"]["code"]), (False, "permission_denied"),
                  f"reply to a non-operator's {name}")
    assert out["token"]["ok"], f"a non-operator with the token was refused: {out['token']}"
    accepted(out["token"]["result"], t, "completed")


@test
def report_for_an_unknown_task_is_not_found():
    d = daemon()
    expect_error(d.call, "not_found", "task.complete", task_id="t-999999")
    expect_error(d.call, "not_found", "task.complete", task_id="t-999999", token="0" * 32)


@test
def report_for_a_task_that_is_not_running_is_invalid_state():
    d = daemon()
    p = d.project()
    ready = d.add(p, "true", title="ready")["id"]
    waiting = d.add(p, "true", title="waiting", depends_on=[ready])["id"]
    seq = d.call("daemon.status")["last_event_seq"]
    expect_error(d.call, "invalid_state", "task.complete", task_id=ready)
    expect_error(d.call, "invalid_state", "task.complete", task_id=waiting, success=False)
    expect_eq(d.call("daemon.status")["last_event_seq"], seq, "events after refused reports")
    expect_eq((d.task(ready)["status"], d.task(waiting)["status"]), ("ready", "waiting"),
              "statuses")


@test
def operator_may_complete_a_running_task_without_a_token():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    t, _ = running_task(d, w, project=p)
    after = d.add(p, "true", depends_on=[t])["id"]
    accepted(d.call("task.complete", task_id=t, result="by hand"), t, "completed", [after])
    d.wait_done(p)
    expect_eq(d.task(t)["result"], "by hand", "result")


@test
def a_result_file_beside_the_log_counts_only_when_the_executor_says_it_left_one():
    """A plugin whose sandboxes cannot reach the socket leaves the result
    beside the log and says so (slurm, daytona); the local executor never
    does, so a file there (here written by the task itself) is not read."""
    d = daemon()
    p = d.project(autonomous=True)
    logs = os.path.join(d.state_dir, "logs")
    t = d.add(p, "mkdir -p " + logs + "/t-$(echo $DAGD_TASK_ID | cut -d- -f2) && "
              "echo '{\"forged\": 1}' > " + logs + "/t-$(echo $DAGD_TASK_ID | cut -d- -f2)/1.result.json")["id"]
    done = d.wait_task_status(t, ("completed", "failed"))
    expect_eq(done["status"], "completed", "status")
    assert os.path.exists(os.path.join(logs, t, "1.result.json")), "the task wrote no file"
    expect_eq(done["result"], None, "the result of a task that reported none")


if __name__ == "__main__":
    main()
