"""The plugin loader: broken plugins are reported by file and reason while the
daemon runs on with the good ones; executor.reload and SIGHUP reload."""

import os
import re
import shutil
import signal

from dagdtest import (BROKEN_DIR, DAGD, PLUGIN_DIR, Daemon, expect_eq, main, skip, test, wait_for,
                     workdir)

# file -> what its error must say (besides naming the file)
BROKEN = {
    "notso.so": r"ELF|too short|shared object|cannot load|invalid",
    "nosym.so": r"dagd_executor|symbol",
    "badabi.so": r"999",
    "smallsize.so": r"size|bytes|small",
    "initfail.so": r"init failed on purpose",
    "missing.so": r"No such file|missing|cannot open|not found",   # a dangling symlink
}


def copy_local(w):
    """The local executor: its .so and the helper program beside it."""
    for f in ("local.so", "local-helper"):
        shutil.copy(os.path.join(PLUGIN_DIR, f), w)


def plugin_dir_with_broken_ones():
    if not BROKEN_DIR:
        skip("DAGD_TEST_BROKEN_DIR is not set")
    w = workdir()
    copy_local(w)
    for name in BROKEN:
        if name == "missing.so":
            os.symlink(os.path.join(w, "no-such-file.so"), os.path.join(w, name))
        else:
            src = os.path.join(BROKEN_DIR, name)
            assert os.path.exists(src), f"the broken plugin {src} was not built"
            shutil.copy(src, w)
    return w


def by_file(executors):
    return {os.path.basename(e["path"]): e for e in executors}


def check_listed(d):
    execs = by_file(d.call("executor.list")["executors"])
    expect_eq(set(execs), set(BROKEN) | {"local.so"}, "executors listed, by file")
    local = execs["local.so"]
    expect_eq((local["name"], local["error"]), ("local", None), "the local executor")
    assert isinstance(local["description"], str) and isinstance(local["active"], int), local
    for name, reason in BROKEN.items():
        err = execs[name]["error"]
        assert isinstance(err, str) and name in err, f"{name}'s error does not name it: {err!r}"
        assert re.search(reason, err, re.I), f"{name}'s error gives no reason: {err!r}"


@test
def broken_plugins_are_reported_and_the_good_one_still_runs_tasks():
    d = Daemon(plugin_dir=plugin_dir_with_broken_ones()).start()
    check_listed(d)
    p = d.project(autonomous=True)
    d.add(p, "true")
    d.wait_done(p)
    d.call("executor.reload")
    check_listed(d)
    d.proc.send_signal(signal.SIGHUP)
    d.call("daemon.status")
    check_listed(d)
    p2 = d.project(autonomous=True)
    d.add(p2, "true")
    d.wait_done(p2)


@test
def reload_picks_up_plugins_added_and_removed():
    w = workdir()
    copy_local(w)
    d = Daemon(plugin_dir=w).start()
    expect_eq(list(by_file(d.call("executor.list")["executors"])), ["local.so"], "at start")
    if BROKEN_DIR:
        shutil.copy(os.path.join(BROKEN_DIR, "nosym.so"), w)
        listed = by_file(d.call("executor.reload")["executors"])
        expect_eq(sorted(listed), ["local.so", "nosym.so"], "after adding nosym.so")
        assert listed["nosym.so"]["error"], "nosym.so loaded without an error"
        os.unlink(os.path.join(w, "nosym.so"))
    os.unlink(os.path.join(w, "local.so"))
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: not d.call("executor.list")["executors"], 10, what="SIGHUP to reload")
    copy_local(w)
    d.call("executor.reload")
    p = d.project(autonomous=True)
    d.add(p, "true")
    d.wait_done(p)


@test
def dagd_run_from_its_build_tree_loads_the_plugins_built_with_it():
    env = {k: v for k, v in os.environ.items() if k != "DAGD_PLUGIN_DIR"}
    d = Daemon(env=env)
    d.start_installed(DAGD)             # no --plugin-dir, no DAGD_PLUGIN_DIR
    ex = {e["name"]: (e["path"], e["error"]) for e in d.call("executor.list")["executors"]}
    expect_eq(ex.get("local"), (os.path.join(os.path.dirname(DAGD), "plugins", "local.so"), None),
              "the build tree's local.so")
    d.stop()


@test
def a_daemon_with_no_executor_says_so_loudly():
    w = workdir()                       # a plugin directory with nothing loadable
    open(os.path.join(w, "broken.so"), "w").write("not a shared object\n")
    d = Daemon(plugin_dir=w).start()
    ex = d.call("daemon.status")["executors"]
    expect_eq((ex["loaded"], ex["failed"]), (0, 1), "daemon.status: executors loaded and failed")
    expect_eq([(e["loaded"], "not a shared object" in (e["error"] or "") or bool(e["error"])) for e in ex["each"]],
              [(False, True)], "daemon.status: each executor")
    rc, out, err = d.dagctl("status")
    assert rc == 0 and "NONE LOADED" in out, f"dagctl status: {rc} {out!r}"
    rc, out, err = d.dagctl("executors")
    assert rc == 0 and "no executor is loaded" in err, f"dagctl executors: {rc} {err!r}"
    d.stop()
    d = Daemon().start()                # and the usual daemon says nothing of the kind
    rc, out, err = d.dagctl("status")
    assert "NONE LOADED" not in out and "loaded" in out, out
    d.stop()


@test(timeout=90)
def a_version_1_plugin_still_loads_and_runs_tasks():
    if not BROKEN_DIR:
        skip("DAGD_TEST_BROKEN_DIR is not set")
    w = workdir()
    copy_local(w)
    shutil.copy(os.path.join(BROKEN_DIR, "noop-v1.so"), os.path.join(w, "noop.so"))
    d = Daemon(plugin_dir=w).start()
    execs = by_file(d.call("executor.list")["executors"])
    expect_eq((execs["noop.so"]["name"], execs["noop.so"]["error"]), ("noop", None), "the version-1 plugin")
    p = d.project(executor="noop", autonomous=True)
    made = d.call("task.add_batch", project=p["id"],
                  tasks=[{"name": f"n{i}", "title": "n", "command": ["true"],
                          "depends_on": [f"n{i - 1}"] if i % 10 else []} for i in range(100)])["tasks"]
    expect_eq(len(made), 100, "tasks added")
    d.wait_done(p)
    d.restart()                          # and after a restart with nothing to list
    expect_eq({t["status"] for t in d.tasks(p)}, {"completed"}, "statuses after a restart")
    d.stop()


@test(timeout=90)
def a_linger_task_runs_until_reported_with_the_token_it_wrote():
    if not BROKEN_DIR:
        skip("DAGD_TEST_BROKEN_DIR is not set")
    w = workdir()
    shutil.copy(os.path.join(BROKEN_DIR, "linger.so"), w)
    d = Daemon(plugin_dir=w).start()
    p = d.project(executor="linger", autonomous=True)
    a, b = d.add(p, ["true"]), d.add(p, ["true"])
    d.wait_tasks(p, until=lambda ts: all(t["status"] == "running" for t in ts))
    with open(os.path.join(d.state_dir, "linger.tokens")) as f:
        tokens = dict(line.split() for line in f)
    expect_eq(sorted(tokens), sorted([a["id"], b["id"]]), "a token line for each task")
    r = d.call("task.complete", task_id=a["id"], token=tokens[a["id"]])
    expect_eq(r["new_status"], "completed", "reported with its token")
    expect_eq(d.task(b["id"])["status"], "running", "the other still runs")
    d.call("task.cancel", task_id=b["id"])
    wait_for(lambda: any(e["type"] == "SANDBOX_EXITED" and e["payload"]["task_id"] == b["id"]
                         for e in d.call("events.subscribe", since=0, follow=False)["events"]),
             what="the cancelled task's sandbox ended")
    d.stop()


if __name__ == "__main__":
    main()
