"""The daytona executor, through dagd, against the loopback Daytona of
tests/daytona: a DAG of sandboxes that unblock each other, with their output
and result files; a failing command; a build that fails; a sandbox that dies
mid-run; cancel and timeout deleting the sandbox; resources with a snapshot
refused before anything is sent; a wrong key; 429 and 500 answers retried;
orphans deleted.  Every request the executor sends is checked against
Daytona's specs by the server.  Without node and npm the tests skip.
"""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "daytona"))

from dagdtest import Daemon, expect_eq, expect_error, main, select_events, workdir  # noqa: E402
from daytonae2e import (Server, daemon, daytona_test, expect_faithful, log_text, project,  # noqa: E402
                        wait_no_sandboxes, wait_until)

REPORT = ('echo "hello from $DAGD_TASK_ID"; '
          'printf \'{"task": "%s"}\' "$DAGD_TASK_ID" > "$DAGD_RESULT_FILE"')


def result_of(d, task):
    """The result file the executor wrote next to the attempt's log; the
    task's result is the same."""
    path = os.path.join(d.state_dir, "logs", task["id"], f"{task['attempt']}.result.json")
    with open(path) as f:
        result = json.load(f)
    assert d.task(task["id"])["result"] == result, (d.task(task["id"])["result"], result)
    return result


@daytona_test
def a_dag_of_sandboxes_runs_and_unblocks_its_tasks():
    s = Server()
    d = daemon(s)
    p = project(d, autonomous=False, snapshot="daytonaio/sandbox:latest")
    d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "a", "title": "a", "command": REPORT},
        {"name": "b", "title": "b", "command": REPORT, "depends_on": ["a"]},
        {"name": "c", "title": "c", "command": REPORT, "depends_on": ["a"],
         "executor_options": {"snapshot": None, "image": "debian:12", "cpu": 2, "memory": 2}},
        {"name": "d", "title": "d", "command": REPORT, "depends_on": ["b", "c"]},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["name"]: t for t in d.wait_done(p, timeout=60)}
    for t in tasks.values():
        expect_eq(t["attempt"], 1, f"attempts of {t['name']}")
        assert f"hello from {t['id']}" in log_text(d, t["id"]), \
            f"the sandbox's output is not in the log of {t['name']}: {log_text(d, t['id'])!r}"
        expect_eq(result_of(d, t), {"task": t["id"]}, f"result file of {t['name']}")
    assert tasks["d"]["started_at"] >= max(tasks["b"]["finished_at"], tasks["c"]["finished_at"]), \
        "d started before its dependencies finished"
    events = d.events(0, project=p["id"])
    expect_eq({e["payload"]["executor"] for e in select_events(events, "SANDBOX_SPAWNED")}, {"daytona"},
              "executors")
    unblocked = select_events(events, "TASKS_UNBLOCKED", completed_task_id=tasks["a"]["id"])
    expect_eq(sorted(unblocked[0]["payload"]["unblocked_task_ids"]),
              sorted([tasks["b"]["id"], tasks["c"]["id"]]), "tasks unblocked by a")
    # what was created: labels, env, no key, auto-stop off
    made = {x["labels"]["dagd.task"]: x for x in s.sandboxes(instance=d.state_dir)}
    expect_eq(sorted(made), sorted(t["id"] for t in tasks.values()), "a sandbox per task")
    a = made[tasks["a"]["id"]]
    expect_eq(a["autoStopInterval"], 0, "autoStopInterval")
    expect_eq(a["env"]["DAGD_TASK_ID"], tasks["a"]["id"], "DAGD_TASK_ID in the sandbox")
    for name in ("DAYTONA_API_KEY", "DAGD_SOCKET", "DAGD_TASK_TOKEN"):
        assert name not in a["env"], f"{name} was passed into the sandbox"
    expect_eq((made[tasks["c"]["id"]]["cpu"], made[tasks["c"]["id"]]["memory"]), (2, 2), "resources of c")
    wait_no_sandboxes(s, d)
    expect_faithful(s)
    assert s.key not in open(d.stderr_path).read(), "the API key is in the daemon's log"


@daytona_test
def a_failing_command_fails_its_task_with_its_exit_code():
    s = Server()
    d = daemon(s)
    p = project(d)
    bad = d.add(p, "echo failing; exit 7", title="bad")["id"]
    t = d.wait_tasks(p, timeout=30)[0]
    expect_eq(t["status"], "failed", "status")
    expect_eq(t["error_message"], "exited with code 7", "error")
    assert "failing" in log_text(d, bad), log_text(d, bad)
    wait_no_sandboxes(s, d)
    expect_faithful(s)


@daytona_test
def output_reaches_the_log_while_the_command_runs_and_only_once():
    s = Server()
    d = daemon(s)
    w = workdir()
    go = os.path.join(w, "go")
    p = project(d)
    t = d.add(p, f"echo early; while [ ! -e {go} ]; do sleep 0.1; done; echo late", title="talks")
    wait_until(lambda: "early" in log_text(d, t["id"]), what="the first line in the log while it runs")
    open(go, "w").close()
    d.wait_done(p, timeout=30)
    expect_eq(log_text(d, t["id"]).split("\n"), ["early", "late"], "the log")
    wait_no_sandboxes(s, d)
    expect_faithful(s)


@daytona_test
def a_build_that_fails_and_a_sandbox_that_errors_fail_with_the_reason():
    s = Server()
    d = daemon(s)
    p = project(d)
    build = d.add(p, "true", title="build", executor_options={"image": "nope:1", "labels": {"test.fault": "build_failed"}})
    start = d.add(p, "true", title="start", executor_options={"labels": {"test.fault": "error"}})
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=30)}
    for t, words in ((build, "failed to build: Dockerfile build failed"), (start, "failed to start: Failed to start")):
        t = tasks[t["id"]]
        expect_eq(t["status"], "failed", f"status of {t['title']}")
        assert words in (t["error_message"] or ""), f"{t['title']}: {t['error_message']}"
    wait_no_sandboxes(s, d)
    expect_faithful(s)


@daytona_test
def a_sandbox_that_dies_mid_run_fails_its_task_as_lost():
    s = Server()
    d = daemon(s)
    p = project(d, labels={"test.fault": "die"})
    t = d.add(p, "sleep 30", title="dies")
    t = d.wait_tasks(p, timeout=30)[0]
    expect_eq(t["status"], "failed", "status")
    assert "died" in (t["error_message"] or ""), t["error_message"]
    wait_no_sandboxes(s, d)
    expect_faithful(s)


@daytona_test
def cancel_and_timeout_delete_the_sandbox():
    s = Server()
    d = daemon(s)
    p = project(d)
    slow = d.add(p, "echo started; sleep 60", title="cancelled")
    timed = d.add(p, "sleep 60", title="timed out", timeout=2)
    wait_until(lambda: [x for x in s.live(task=slow["id"]) if x["commands"]] and
               [x for x in s.live(task=timed["id"]) if x["commands"]], what="the commands running")
    d.call("task.cancel", task_id=slow["id"])
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=30)}
    expect_eq(tasks[slow["id"]]["status"], "cancelled", "cancelled task")
    assert "started" in log_text(d, slow["id"]), f"the output so far is not in the log: {log_text(d, slow['id'])!r}"
    assert tasks[timed["id"]]["status"] in ("failed", "timed_out"), tasks[timed["id"]]
    wait_no_sandboxes(s, d, timeout=10)
    expect_faithful(s)


@daytona_test
def resources_with_a_snapshot_are_refused_before_anything_is_sent():
    s = Server()
    d = daemon(s)
    # refused when given, with the executor's own words, before any sandbox exists
    e = expect_error(project, "bad_request", d, snapshot="daytonaio/sandbox:latest", cpu=4)
    assert "cannot go with a snapshot" in e.message, e.message
    p = project(d)
    e = expect_error(d.add, "bad_request", p, "true", executor_options={"snapshot": "x", "cpu": 4})
    assert "cannot go with a snapshot" in e.message, e.message
    # an executor-wide option given per task, and a typo, are refused by name
    e = expect_error(d.add, "bad_request", p, "true", executor_options={"api_url": "http://x"})
    assert "api_url" in e.message, e.message
    e = expect_error(d.add, "bad_request", p, "true", executor_options={"snapshott": "x"})
    assert "snapshott" in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    assert not [r for r in s.requests() if r["method"] == "POST" and r["path"] == "/sandbox"], \
        "a create was sent"


@daytona_test
def a_wrong_key_fails_the_attempt_with_401():
    s = Server()
    d = daemon(s, key="not-the-key")
    p = project(d)
    d.add(p, "true", title="unauthorized")
    t = d.wait_tasks(p, timeout=30)[0]
    expect_eq(t["status"], "failed", "status")
    assert "401" in t["error_message"], t["error_message"]


@daytona_test
def throttling_and_server_errors_are_retried():
    s = Server()
    s.faults(rate429=3, rate500=2)
    d = daemon(s)
    p = project(d)
    for i in range(4):
        d.add(p, f"sleep 0.5; echo task {i}", title=f"t{i}")
    d.wait_done(p, timeout=60)
    codes = {r["status"] for r in s.requests()}
    assert 429 in codes and 500 in codes, f"no fault was injected: {codes}"
    wait_no_sandboxes(s, d)
    expect_faithful(s)


@daytona_test
def orphans_of_this_daemon_are_deleted_and_others_left_alone():
    s = Server()
    d = daemon(s, start=False, orphan_sweep=0.5)
    d.start()
    # an orphan: this daemon's label, no sandbox of the daemon owns it
    def create(labels):
        req = urllib.request.Request(s.url + "/sandbox", method="POST",
                                     data=json.dumps({"labels": labels}).encode(),
                                     headers={"Authorization": f"Bearer {s.key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["id"]
    orphan = create({"dagd.instance": d.state_dir, "dagd.sandbox": "t-99.1"})
    other = create({"dagd.instance": "/some/other/daemon"})
    wait_until(lambda: not [x for x in s.live() if x["id"] == orphan], what="the orphan deleted")
    assert [x for x in s.live() if x["id"] == other], "another daemon's sandbox was deleted"
    expect_faithful(s)


@daytona_test
def without_a_key_the_executor_stays_unloaded_and_says_why():
    env = {k: v for k, v in os.environ.items() if k != "DAYTONA_API_KEY"}
    d = Daemon(args=["--executor-options", 'daytona={"api_url": "http://127.0.0.1:9"}'], env=env).start()
    err = next(e for e in d.call("executor.list")["executors"] if e["name"] == "daytona")["error"] or ""
    assert "no API key: set DAYTONA_API_KEY" in err, err
    d2 = Daemon(args=["--executor-options", 'daytona={"api_key": "k", "api_url": "ftp://x"}']).start()
    err = next(e for e in d2.call("executor.list")["executors"] if e["name"] == "daytona")["error"] or ""
    assert "option 'api_url' must be an http:// or https:// URL" in err, err


@daytona_test
def the_key_is_in_no_log_and_not_in_the_database():
    s = Server(key="k-9f3e1d-secret")
    d = daemon(s)
    p = project(d)
    d.add(p, "echo hi", title="one")
    d.wait_done(p, timeout=30)
    d.stop()
    for root, _, files in os.walk(d.dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert s.key.encode() not in fh.read(), f"the key is in {os.path.join(root, f)}"


if __name__ == "__main__":
    main()
