"""Projects, tasks and the daemon as objects: their fields and defaults,
project commands, daemon.status, task.logs, and what a sandbox is given."""

import json
import os
import pwd
import sys

from dagdtest import (DagdError, STATUSES, daemon, expect_eq, expect_error, main, parse_time,
                      read_file, select_events, test, wait_for, workdir)

TASK_KEYS = {"id", "project_id", "name", "title", "command", "env", "cwd", "executor",
             "executor_options", "priority", "timeout", "max_retries", "retry_backoff",
             "validation_command", "status", "released", "attempt", "not_before", "depends_on",
             "dependents", "unmet", "result", "error_message", "sandbox_id", "created_at",
             "updated_at", "started_at", "finished_at", "trigger", "finally"}
PROJECT_KEYS = {"id", "name", "autonomous_execution_enabled", "max_concurrency", "executor",
                "executor_options", "created_at", "updated_at", "counts", "active"}


@test
def project_create_get_update_list_delete():
    d = daemon()
    since = d.call("daemon.status")["last_event_seq"]
    name = f"crud-{since}"
    me = pwd.getpwuid(os.getuid()).pw_name
    # an option the executor does not know is refused, naming it
    err = expect_error(d.call, "bad_request", "project.create", name=name, executor_options={"k": "v"})
    assert "'k'" in err.message, err.message
    p = d.call("project.create", name=name, max_concurrency=3, autonomous=False,
               executor_options={"user": me})["project"]
    assert PROJECT_KEYS <= set(p), f"project lacks {PROJECT_KEYS - set(p)}"
    expect_eq((p["name"], p["max_concurrency"], p["autonomous_execution_enabled"],
               p["executor"], p["executor_options"], p["active"]),
              (name, 3, False, "local", {"user": me}, 0), "created project")
    expect_eq(set(p["counts"]), set(STATUSES), "keys of counts")
    assert p["id"].startswith("p-") and p["id"][2:].isdigit(), p["id"]
    parse_time(p["created_at"])
    expect_eq(d.call("project.get", project=name)["project"]["id"], p["id"], "get by name")
    expect_eq(d.call("project.get", project=p["id"])["project"]["name"], name, "get by id")
    expect_error(d.call, "conflict", "project.create", name=name)

    u = d.call("project.update", project=p["id"], name=name + "-b", max_concurrency=7)["project"]
    expect_eq((u["name"], u["max_concurrency"]), (name + "-b", 7), "updated project")
    expect_error(d.call, "not_found", "project.get", project=name)
    assert p["id"] in [x["id"] for x in d.call("project.list")["projects"]], "project.list"

    gone = d.call("project.delete", project=name + "-b")["project"]
    expect_eq((gone["id"], gone["name"]), (p["id"], name + "-b"), "deleted project")
    expect_error(d.call, "not_found", "project.get", project=p["id"])
    events = d.events(since)
    expect_eq([e["type"] for e in events if e["entity_id"] == p["id"]],
              ["PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED"], "events")
    expect_eq(events[-1]["payload"], {"project_id": p["id"], "name": name + "-b"},
              "PROJECT_DELETED payload")


@test
def project_with_a_task_holding_a_slot_cannot_be_deleted():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    t = d.add(p, f"while [ ! -f {w}/go ]; do sleep 0.05; done")["id"]
    d.wait_task_status(t, "running")
    got = d.call("project.get", project=p["id"])["project"]
    expect_eq((got["active"], got["counts"]["running"]), (1, 1), "active and counts")
    expect_error(d.call, "invalid_state", "project.delete", project=p["id"])
    open(f"{w}/go", "w").close()
    d.wait_done(p)
    d.call("project.delete", project=p["id"])
    expect_error(d.call, "not_found", "task.get", task_id=t)


@test
def task_add_fills_in_the_documented_defaults():
    d = daemon()
    p = d.project()
    t = d.add(p, "true", title="defaults")
    assert TASK_KEYS <= set(t), f"task lacks {TASK_KEYS - set(t)}"
    expect_eq({k: t[k] for k in ("project_id", "title", "command", "env", "cwd", "executor",
                                  "executor_options", "priority", "timeout", "max_retries",
                                  "retry_backoff", "validation_command", "status", "released",
                                  "attempt", "depends_on", "dependents", "unmet", "result",
                                  "error_message", "sandbox_id", "started_at", "finished_at")},
              {"project_id": p["id"], "title": "defaults", "command": "true", "env": {},
               "cwd": None, "executor": None, "executor_options": {}, "priority": "medium",
               "timeout": 0, "max_retries": 0, "retry_backoff": 1, "validation_command": None,
               "status": "ready", "released": False, "attempt": 0, "depends_on": [],
               "dependents": [], "unmet": 0, "result": None, "error_message": None,
               "sandbox_id": None, "started_at": None, "finished_at": None}, "defaults")
    assert t["id"].startswith("t-") and t["id"][2:].isdigit(), t["id"]
    expect_eq(d.task(t["id"]), t, "task.get of the new task")
    t2 = d.add(p, ["echo", "a b"], title="set", name="named", priority="critical", timeout=2.5,
               max_retries=3, retry_backoff=0.5, env={"A": "1"}, cwd="/tmp")
    expect_eq((t2["command"], t2["name"], t2["priority"], t2["timeout"], t2["max_retries"],
               t2["retry_backoff"], t2["env"], t2["cwd"]),
              (["echo", "a b"], "named", "critical", 2.5, 3, 0.5, {"A": "1"}, "/tmp"), "fields")
    expect_error(d.call, "conflict", "task.add", project=p["id"], title="x", command="true",
                 name="named")
    listed = d.call("task.list", project=p["id"], status=["ready"])["tasks"]
    expect_eq([x["id"] for x in listed], [t["id"], t2["id"]], "task.list by status")
    expect_eq(d.call("task.list", project=p["id"], status="waiting")["tasks"], [], "no waiting")


@test
def task_created_event_carries_the_task_summary_as_added():
    d = daemon()
    p = d.project()
    since = d.call("daemon.status")["last_event_seq"]
    a = d.add(p, "true", title="a")
    b = d.add(p, "true", title="b", depends_on=[a["id"]])
    created = select_events(d.events(since, project=p["id"]), "TASK_CREATED")
    expect_eq([e["payload"]["task"]["id"] for e in created], [a["id"], b["id"]], "TASK_CREATED")
    summary = {"id", "project_id", "name", "title", "kind", "priority", "status", "released", "held",
               "attempt", "depends_on", "created_at", "status_changed_at"}
    for e, t in zip(created, (a, b)):
        got = e["payload"]["task"]
        expect_eq(set(got), summary, f"TASK_CREATED of {t['id']}: the summary's fields")
        expect_eq(got, {k: t[k] for k in got}, f"TASK_CREATED of {t['id']} against task.add")


@test
def sandbox_gets_its_env_cwd_and_argv():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    script = ("import json, os, sys; open(sys.argv[1] + '.tmp', 'w').write(json.dumps("
              "{'argv': sys.argv[2:], 'cwd': os.getcwd(), 'env': dict(os.environ)})); "
              "os.rename(sys.argv[1] + '.tmp', sys.argv[1])")
    t = d.add(p, [sys.executable, "-c", script, f"{w}/out", "a b", "$HOME", "'q'"],
              env={"FOO": "bar baz"}, cwd=w)["id"]
    d.wait_done(p)
    out = json.loads(read_file(f"{w}/out"))
    expect_eq(out["argv"], ["a b", "$HOME", "'q'"], "argv")
    expect_eq(os.path.realpath(out["cwd"]), os.path.realpath(w), "cwd")
    env = out["env"]
    expect_eq({k: env.get(k) for k in ("FOO", "DAGD_TASK_ID", "DAGD_PROJECT_ID",
                                        "DAGD_SANDBOX_ID", "DAGD_ATTEMPT", "DAGD_SOCKET")},
              {"FOO": "bar baz", "DAGD_TASK_ID": t, "DAGD_PROJECT_ID": p["id"],
               "DAGD_SANDBOX_ID": f"{t}.1", "DAGD_ATTEMPT": "1", "DAGD_SOCKET": d.sock},
              "environment")
    assert len(env.get("DAGD_TASK_TOKEN", "")) >= 16, "DAGD_TASK_TOKEN is missing or short"


@test
def sandboxes_run_each_in_its_own_process_group():
    d, w = daemon(), workdir()
    p = d.project(autonomous=True)
    for i in range(2):
        d.add(p, f"echo $$ > {w}/pid{i}.tmp; mv {w}/pid{i}.tmp {w}/pid{i}; exec sleep 30")
    pids = [int(wait_for(lambda: read_file(f"{w}/pid{i}"), 15, what="the sandboxes"))
            for i in range(2)]
    groups = [os.getpgid(pid) for pid in pids]
    assert groups[0] != groups[1], f"two sandboxes share the process group {groups[0]}"
    for g in groups:
        assert g not in (os.getpgid(d.proc.pid), os.getpgid(0)), "a sandbox in the daemon's group"
        members = [int(x) for x in os.listdir("/proc") if x.isdigit() and _pgid(int(x)) == g]
        assert members and all(_pgid(m) == g for m in members), members


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@test
def task_logs_return_the_end_of_the_attempts_output():
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, "for i in $(seq 1 100); do echo line $i; done; echo to-stderr >&2")["id"]
    d.wait_done(p)
    logs = d.call("task.logs", task_id=t)
    expect_eq((logs["task_id"], logs["attempt"], logs["truncated"]), (t, 1, False), "logs")
    lines = [x.rstrip("\n") for x in logs["lines"]]
    expect_eq(lines[:100], [f"line {i}" for i in range(1, 101)], "stdout lines")
    assert "to-stderr" in lines, f"stderr is not in the log: {lines[-3:]}"
    short = d.call("task.logs", task_id=t, attempt=1, max_bytes=40)
    assert short["truncated"] is True, "max_bytes 40 of a longer log is not truncated"
    assert "".join(short["lines"]).strip().endswith("to-stderr"), short["lines"]
    assert sum(len(x.rstrip("\n")) for x in short["lines"]) <= 40, short["lines"]
    log = os.path.join(d.state_dir, "logs", t, "1.log")
    assert "line 100" in (read_file(log) or ""), f"no log at {log}"
    try:
        d.call("task.logs", task_id=t, attempt=5)
        raise AssertionError("task.logs of attempt 5 of a task run once succeeded")
    except DagdError as e:
        assert e.code in ("not_found", "bad_request"), f"task.logs of attempt 5: {e}"


@test
def daemon_status_reports_the_daemon():
    d = daemon()
    s = d.call("daemon.status")
    for key in ("version", "pid", "started_at", "uptime", "socket", "state_dir", "counts",
                "active", "global_limit", "projects", "tasks", "clients", "last_event_seq"):
        assert key in s, f"daemon.status lacks {key}"
    expect_eq((s["pid"], s["socket"]), (d.proc.pid, d.sock), "pid and socket")
    expect_eq(os.path.realpath(s["state_dir"]), os.path.realpath(d.state_dir), "state_dir")
    expect_eq(set(s["counts"]), set(STATUSES), "keys of counts")
    assert isinstance(s["uptime"], (int, float)) and s["uptime"] >= 0, s["uptime"]
    assert s["clients"] >= 1 and s["tasks"] == sum(s["counts"].values()), s
    parse_time(s["started_at"])
    p = d.project()
    d.add(p, "true")
    s2 = d.call("daemon.status")
    expect_eq((s2["projects"], s2["tasks"]), (s["projects"] + 1, s["tasks"] + 1), "after adding")
    assert s2["last_event_seq"] >= s["last_event_seq"] + 2, "last_event_seq after adding"


if __name__ == "__main__":
    main()
