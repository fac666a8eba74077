"""The docker executor, through dagd, against a real Docker engine: a DAG of
containers that report over the socket; exit codes and out of memory; a
missing image and a start the engine refuses; cancel and timeout leaving no
container; the options and the environment reaching the container; kept
failed containers; the executor's limit; orphans; a missing or too old
engine.  Without an engine the tests skip, or fail when DAGD_REQUIRE_DOCKER=1.
"""

import http.server
import json
import os
import socketserver
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docker"))

from dagdtest import (Daemon, expect_eq, expect_error, main, replay_active, select_events, test, wait_for,  # noqa: E402
                      workdir)
from dockere2e import (api, container_of, containers, daemon, docker_test, image, log_text,  # noqa: E402
                       project, sleep_until, touch, wait_no_containers)

REPORT = ('echo "hello from $DAGD_TASK_ID"; '
          'dagctl complete --result "{\\"task\\": \\"$DAGD_TASK_ID\\"}"')


def exited(d, p):
    """The SANDBOX_EXITED payloads of the project, by task id."""
    return {e["payload"]["task_id"]: e["payload"]
            for e in select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED")}


@docker_test
def a_dag_of_containers_runs_and_its_tasks_report_over_the_socket():
    d = daemon()
    p = project(d, autonomous=False)
    d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "a", "title": "a", "command": REPORT},
        {"name": "b", "title": "b", "command": REPORT, "depends_on": ["a"]},
        {"name": "c", "title": "c", "command": REPORT, "depends_on": ["a"],
         "executor_options": {"tty": True}},
        {"name": "d", "title": "d", "command": REPORT, "depends_on": ["b", "c"]},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["name"]: t for t in d.wait_done(p, timeout=90)}
    # a task reports before its container exits; its output is all in once it has
    wait_for(lambda: len(exited(d, p)) == 4, timeout=30, what="every container's exit")
    for t in tasks.values():
        expect_eq(t["result"], {"task": t["id"]}, f"result of {t['name']}")
        expect_eq(t["attempt"], 1, f"attempts of {t['name']}")
        assert f"hello from {t['id']}" in log_text(d, t["id"]), \
            f"the container's output is not in the log of {t['name']}: {log_text(d, t['id'])!r}"
    assert tasks["d"]["started_at"] >= max(tasks["b"]["finished_at"], tasks["c"]["finished_at"]), \
        "d started before its dependencies finished"
    events = d.events(0, project=p["id"])
    spawned = select_events(events, "SANDBOX_SPAWNED")
    expect_eq(sorted(e["payload"]["task_id"] for e in spawned), sorted(t["id"] for t in tasks.values()),
              "SANDBOX_SPAWNED events")
    expect_eq({e["payload"]["executor"] for e in spawned}, {"docker"}, "executors")
    unblocked = select_events(events, "TASKS_UNBLOCKED", completed_task_id=tasks["a"]["id"])
    expect_eq(sorted(unblocked[0]["payload"]["unblocked_task_ids"]),
              sorted([tasks["b"]["id"], tasks["c"]["id"]]), "tasks unblocked by a")
    wait_no_containers(d)


@docker_test
def exit_codes_are_reported_and_out_of_memory_is_told_apart():
    d = daemon()
    p = project(d)
    ok = d.add(p, "exit 0", title="ok")["id"]
    bad = d.add(p, "echo failing; exit 7", title="bad")["id"]
    oom = d.add(p, 'x=aaaaaaaa; while :; do x="$x$x"; done', title="oom",
                executor_options={"memory": "8m"})["id"]
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=90)}
    expect_eq(tasks[ok]["status"], "completed", "exit 0")
    expect_eq(tasks[bad]["status"], "failed", "exit 7")
    expect_eq(tasks[bad]["error_message"], "exited with code 7", "error of exit 7")
    expect_eq(tasks[oom]["status"], "failed", "out of memory")
    assert "out of memory" in tasks[oom]["error_message"], tasks[oom]["error_message"]
    ex = exited(d, p)
    expect_eq((ex[ok]["exit_code"], ex[ok]["reason"]), (0, "exited"), "exit 0")
    expect_eq((ex[bad]["exit_code"], ex[bad]["reason"]), (7, "failed"), "exit 7")
    expect_eq((ex[oom]["exit_code"], ex[oom]["signal"], ex[oom]["reason"]), (None, 9, "oom"), "oom")
    assert "failing" in log_text(d, bad)
    wait_no_containers(d)


@docker_test
def a_missing_image_fails_the_attempt_with_the_engines_message_and_leaves_nothing():
    d = daemon()
    p = project(d)
    t = d.add(p, "true", executor_options={"image": "dagd-test-missing:none"})["id"]
    task = d.wait_tasks(p)[0]
    expect_eq(task["status"], "failed", "status")
    assert "No such image" in task["error_message"] and "dagd-test-missing:none" in task["error_message"], \
        task["error_message"]
    expect_eq(exited(d, p)[t]["reason"], "error", "reason")
    expect_eq(containers(d, task=t), [], "containers of the task")


@docker_test
def options_are_checked_when_given_not_at_dispatch():
    d = daemon()
    p = project(d)
    for opts, word in (({"memory": "lots"}, "memory"), ({"imag": "x"}, "imag"), ({"cpus": "two"}, "cpus"),
                       ({"binds": "/x:/y"}, "binds")):
        e = expect_error(d.add, "bad_request", p, "true", executor_options=opts)
        assert word in e.message, e.message
    e = expect_error(d.project, "bad_request", executor="docker", executor_options={"memory": "lots"})
    assert "memory" in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    expect_eq(containers(d), [], "containers after the refusals")


@docker_test
def a_start_the_engine_refuses_fails_with_its_message_and_leaves_nothing():
    d = daemon()
    p = project(d)
    t = d.add(p, ["/no/such/program", "x"])["id"]
    task = d.wait_tasks(p)[0]
    expect_eq(task["status"], "failed", "status")
    assert "cannot start the container" in task["error_message"] and \
        "/no/such/program" in task["error_message"], task["error_message"]
    expect_eq(exited(d, p)[t]["reason"], "error", "reason")
    wait_no_containers(d, task=t)


@docker_test
def cancel_and_timeout_stop_the_container_and_leave_none_behind():
    d = daemon(kill_grace=1)
    p = project(d)
    plain = d.add(p, "sleep 300", title="cancelled, ignores SIGTERM as PID 1")["id"]
    init = d.add(p, "sleep 300", title="cancelled, under an init", executor_options={"init": True})["id"]
    slow = d.add(p, "sleep 300", title="times out", timeout=1)["id"]
    container_of(d, plain)
    container_of(d, init)
    # this executor cannot pause: refused, and nothing changes
    e = expect_error(d.call, "unsupported", "task.pause", task_id=plain)
    assert "cannot pause" in e.message, e.message
    expect_eq(d.task(plain)["paused"], False, "paused after a refused pause")
    d.call("task.cancel", task_id=plain)
    d.call("task.cancel", task_id=init)
    d.wait_tasks(p, timeout=60, until=lambda ts: len(exited(d, p)) == 3)
    tasks = {t["id"]: t for t in d.tasks(p)}    # (as the exits counted, not older)
    expect_eq([tasks[x]["status"] for x in (plain, init, slow)], ["cancelled", "cancelled", "failed"],
              "statuses")
    assert "timed out" in tasks[slow]["error_message"], tasks[slow]["error_message"]
    ex = exited(d, p)
    expect_eq([ex[x]["reason"] for x in (plain, init, slow)], ["cancelled", "cancelled", "timeout"], "reasons")
    # SIGTERM reached the task through the init; the bare one needed the SIGKILL
    expect_eq((ex[init]["exit_code"], ex[plain]["exit_code"]), (143, 137), "exit codes")
    wait_no_containers(d)


@docker_test
def the_environment_limits_and_options_reach_the_container():
    w = workdir()
    d = daemon()
    p = project(d, env={"FROM_OPTIONS": "o", "SHARED": "options"}, memory="64m", cpus=0.5,
                pids_limit=64, user="65534:65534", workdir="/tmp", binds=[f"{w}:/data"],
                labels={"team": "qa"})
    cmd = ("env | sort; "
           "echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
           "cat /sys/fs/cgroup/memory.max); "
           "echo uid=$(id -u) pwd=$(pwd) ifaces=$(grep -c : /proc/net/dev); "
           "if touch /data/x 2>/dev/null; then echo data=rw; else echo data=ro; fi; "
           + sleep_until("/data/go"))
    t = d.add(p, cmd, env={"SHARED": "task", "TASK_VAR": "t"})["id"]
    info = api().inspect(container_of(d, t))

    # from outside
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    for k, v in {"FROM_OPTIONS": "o", "SHARED": "task", "TASK_VAR": "t", "DAGD_TASK_ID": t,
                 "DAGD_PROJECT_ID": p["id"], "DAGD_SANDBOX_ID": f"{t}.1", "DAGD_ATTEMPT": "1",
                 "DAGD_SOCKET": "/run/dagd/s"}.items():
        expect_eq(env.get(k), v, f"${k} in the container")
    assert env.get("DAGD_TASK_TOKEN"), "no DAGD_TASK_TOKEN in the container"
    assert env.get("PATH") != os.environ.get("PATH"), "the daemon's PATH was passed into the image"
    hc = info["HostConfig"]
    expect_eq((hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"], hc["NetworkMode"]),
              (64 << 20, 64 << 20, 500000000, 64, "none"), "limits")
    expect_eq(sorted(hc["Binds"]), sorted([f"{d.dir}:/run/dagd:ro", f"{w}:/data:ro"]), "binds")
    expect_eq((info["Config"]["User"], info["Config"]["WorkingDir"]), ("65534:65534", "/tmp"), "user, dir")
    labels = info["Config"]["Labels"]
    expect_eq({k: labels.get(k) for k in ("dagd.instance", "dagd.project", "dagd.task", "dagd.attempt",
                                          "dagd.sandbox", "team")},
              {"dagd.instance": d.state_dir, "dagd.project": p["id"], "dagd.task": t,
               "dagd.attempt": "1", "dagd.sandbox": f"{t}.1", "team": "qa"}, "labels")
    assert info["Name"].startswith(f"/dagd-{t}.1-"), info["Name"]

    # from inside
    touch(os.path.join(w, "go"))
    d.wait_done(p)
    log = log_text(d, t).splitlines()
    for line in ("FROM_OPTIONS=o", "SHARED=task", "TASK_VAR=t", "DAGD_SOCKET=/run/dagd/s",
                 f"limit={64 << 20}", "uid=65534 pwd=/tmp ifaces=1", "data=ro"):
        assert line in log, f"{line!r} is not in the container's output: {log}"
    wait_no_containers(d)


@docker_test
def keep_failed_keeps_failed_containers_even_across_a_restart():
    d = daemon(keep_failed=True)
    p = project(d)
    bad = d.add(p, "exit 4", title="kept")["id"]
    good = d.add(p, "true", title="removed: it succeeded")["id"]
    gone = d.add(p, "exit 5", title="removed: its own option", executor_options={"keep_failed": False})["id"]
    d.wait_tasks(p)
    wait_no_containers(d, task=good)
    wait_no_containers(d, task=gone)
    kept = containers(d, task=bad)
    expect_eq([(c["State"], c["Labels"].get("dagd.keep-failed")) for c in kept], [("exited", "1")], "kept")
    d.restart()
    time.sleep(2)       # the first sweep of orphans runs at once
    expect_eq([c["Id"] for c in containers(d, task=bad)], [kept[0]["Id"]], "kept after a restart")


@docker_test
def the_executor_limit_caps_running_containers_and_shows_in_dagctl_executors():
    d = daemon(max_concurrency=2)
    rc, out, err = d.dagctl("executors")
    expect_eq(rc, 0, f"dagctl executors ({err})")
    row = [line.split() for line in out.splitlines() if line.startswith("docker ")]
    expect_eq(row[0][1:3], ["2", "0"], "docker's LIMIT and ACTIVE")
    p = project(d, autonomous=False)
    for i in range(4):
        d.add(p, "sleep 1", title=f"t{i}")
    d.call("project.start", project=p["id"])
    d.wait_done(p, timeout=90)
    expect_eq(replay_active(d.events(0, project=p["id"])), 2, "most tasks active at once")


@docker_test(timeout=180)
def orphans_of_this_daemon_are_removed_and_adopted_or_foreign_containers_kept():
    w = workdir()
    d = daemon()
    p = project(d, binds=[f"{w}:/data"])
    t = d.add(p, sleep_until("/data/go") + '; dagctl complete --result \'"adopted"\'')["id"]
    live = container_of(d, t)
    instance = api().inspect(live)["Config"]["Labels"]["dagd.instance"]
    d.stop()
    base = {"Image": image(), "Cmd": ["sleep", "300"], "HostConfig": {"NetworkMode": "none"}}
    created = api().create(dict(base, Labels={"dagd.instance": instance, "dagd.sandbox": "t-99.1"}))
    running = api().create(dict(base, Labels={"dagd.instance": instance, "dagd.sandbox": "t-98.1"}))
    api().start(running)
    foreign = api().create(dict(base, Labels={"dagd.instance": "/another/dagd", "dagd.sandbox": "t-1.1"}))
    try:
        d.start()
        wait_for(lambda: api().inspect(created) is None and api().inspect(running) is None, timeout=20,
                 what="the orphans to be removed")
        assert api().inspect(live)["State"]["Running"], "the adopted container was stopped"
        assert api().inspect(foreign) is not None, "another daemon's container was removed"
        assert "no sandbox of this daemon owns it" in d.stderr(), d.stderr_tail()
        touch(os.path.join(w, "go"))
        expect_eq(d.wait_done(p)[0]["result"], "adopted", "result of the adopted task")
    finally:
        api().remove(foreign)


class _OldEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _OldEngineHandler(http.server.BaseHTTPRequestHandler):
    """Docker 19.03 as far as /_ping and /version go."""

    def do_GET(self):
        body = b"OK" if self.path == "/_ping" else json.dumps(
            {"Version": "19.03.15", "ApiVersion": "1.40", "MinAPIVersion": "1.12"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "local"

    def log_message(self, *args):
        pass


def executor_error(d):
    return next(e for e in d.call("executor.list")["executors"] if e["name"] == "docker")["error"]


@test
def a_missing_or_too_old_engine_or_bad_options_leave_the_executor_unloaded_with_the_reason():
    w = workdir()
    d = Daemon(args=["--executor-options", 'docker={"socket": "/nonexistent/docker.sock"}']).start()
    err = executor_error(d) or ""
    assert "cannot reach the Docker engine at '/nonexistent/docker.sock'" in err, err
    e = expect_error(d.project, "bad_request", executor="docker", executor_options={"image": "x"})
    assert "no executor 'docker' is loaded" in e.message, e.message

    sock = os.path.join(w, "old.sock")
    server = _OldEngine(sock, _OldEngineHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        d2 = Daemon(args=["--executor-options", "docker=" + json.dumps({"socket": sock})]).start()
        err = executor_error(d2) or ""
        assert "speaks Engine API 1.40 at most" in err and "needs API 1.41" in err, err
    finally:
        server.shutdown()
        server.server_close()

    d3 = Daemon(args=["--executor-options", 'docker={"sockt": "/x"}']).start()
    err = executor_error(d3) or ""
    assert "unknown option 'sockt'" in err, err


main()
