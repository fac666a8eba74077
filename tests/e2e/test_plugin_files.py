"""What happens to a plugin's file after it is loaded touches nothing that
runs (dagd loads a private copy): a file rewritten in place with cp, with
another plugin, garbage or a truncated copy, and reloaded, leaves the daemon
up and the executors that remain running tasks.  Two files naming one
executor: the incumbent stays, the newcomer is refused naming both."""

import os
import shutil
import subprocess

from dagdtest import BROKEN_DIR, PLUGIN_DIR, Daemon, expect_eq, main, skip, test, wait_for, workdir


def plugin_dir(*extra):
    """The local executor (its .so and helper) and test plugins by name."""
    if not BROKEN_DIR:
        skip("DAGD_TEST_BROKEN_DIR is not set")
    w = workdir()
    for f in ("local.so", "local-helper"):
        shutil.copy(os.path.join(PLUGIN_DIR, f), w)
    for f in extra:
        shutil.copy(os.path.join(BROKEN_DIR, f), w)
    return w


def cp(src, dst):
    """cp(1) over an existing file rewrites it in place (same inode)."""
    ino = os.stat(dst).st_ino
    subprocess.run(["cp", src, dst], check=True)
    expect_eq(os.stat(dst).st_ino, ino, f"{dst}'s inode after cp")


def listed(d, reply=None):
    execs = (reply or d.call("executor.list"))["executors"]
    return {os.path.basename(e["path"]): (e["name"], e["error"]) for e in execs}


def run_task(d, executor, command=("true",)):
    p = d.project(executor=executor, autonomous=True)
    d.add(p, list(command))
    d.wait_done(p)


@test(timeout=180)
def a_plugin_rewritten_in_place_and_reloaded_leaves_the_daemon_running():
    w = plugin_dir("noop.so")
    noop, local = os.path.join(w, "noop.so"), os.path.join(w, "local.so")
    saved = workdir()
    shutil.copy(noop, saved)
    d = Daemon(plugin_dir=w).start()
    expect_eq(listed(d), {"local.so": ("local", None), "noop.so": ("noop", None)}, "at start")
    run_task(d, "noop")
    # a local task that runs across every reload below
    p = d.project(executor="local", autonomous=True)
    flag = os.path.join(d.dir, "go")
    t = d.add(p, ["sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.1; done"])
    d.wait_task_status(t["id"], {"running"})

    # the loaded noop.so rewritten with local.so's bytes: its old code would
    # be the new file's; it now names 'local', which stays where it was
    cp(os.path.join(PLUGIN_DIR, "local.so"), noop)
    got = listed(d, d.call("executor.reload"))
    expect_eq(got["local.so"], ("local", None), "local.so after noop.so became a second local")
    name, err = got["noop.so"]
    assert err and noop in err and local in err and "'local'" in err, \
        f"the refusal does not name both files and the executor: {err!r}"
    assert noop in d.stderr() and "refused" in d.stderr(), "the refusal is not logged"
    run_task(d, "local")

    # garbage, then a truncated copy of a plugin, over the same file
    with open(os.path.join(saved, "garbage"), "wb") as f:
        f.write(b"\x7fELF" + os.urandom(4096))
    cp(os.path.join(saved, "garbage"), noop)
    d.call("executor.reload")
    assert listed(d)["noop.so"][1], "garbage loaded without an error"
    data = open(os.path.join(saved, "noop.so"), "rb").read()
    with open(os.path.join(saved, "half.so"), "wb") as f:
        f.write(data[:len(data) // 2])
    cp(os.path.join(saved, "half.so"), noop)
    d.call("executor.reload")
    err = listed(d)["noop.so"][1]
    assert err and noop in err and "truncated" in err, f"a truncated plugin: {err!r}"
    st = d.call("daemon.status")["executors"]
    expect_eq((st["loaded"], st["failed"]), (1, 1), "daemon.status: executors loaded and failed")

    # local.so itself rewritten in place (with itself): the local executor
    # still finds its helper beside the file, and adopts its running task
    cp(os.path.join(PLUGIN_DIR, "local.so"), local)
    d.call("executor.reload")
    cp(os.path.join(saved, "noop.so"), noop)
    d.proc.send_signal(1)                       # SIGHUP
    wait_for(lambda: listed(d).get("noop.so") == ("noop", None), 10, what="SIGHUP to reload noop.so")
    run_task(d, "noop")
    open(flag, "w").close()
    d.wait_done(p)
    run_task(d, "local", ["sh", "-c", "echo hi"])
    d.stop()


@test
def a_second_file_naming_a_loaded_executor_does_not_shadow_it():
    w = plugin_dir()
    local = os.path.join(w, "local.so")
    first = os.path.join(w, "a-local.so")       # loaded before local.so by name
    shutil.copy(local, first)
    d = Daemon(plugin_dir=w).start()
    got = listed(d)
    expect_eq(got["local.so"], ("local", None), "the stock local.so")
    err = got["a-local.so"][1]
    assert err and first in err and local in err, f"the refusal names both files: {err!r}"
    assert f"{first}: refused: {local} names executor 'local' too, and keeps it" in d.stderr(), \
        d.stderr_tail()
    run_task(d, "local")
    d.stop()


@test
def an_incumbent_stays_when_the_stock_file_arrives_later():
    w = plugin_dir()
    local = os.path.join(w, "local.so")
    other = os.path.join(w, "my-local.so")
    os.rename(local, other)
    d = Daemon(plugin_dir=w).start()
    expect_eq(listed(d), {"my-local.so": ("local", None)}, "at start")
    shutil.copy(os.path.join(PLUGIN_DIR, "local.so"), local)
    got = listed(d, d.call("executor.reload"))
    expect_eq(got["my-local.so"], ("local", None), "the incumbent after a reload")
    err = got["local.so"][1]
    assert err and local in err and other in err, f"the newcomer's refusal: {err!r}"
    run_task(d, "local")
    d.restart()                                  # a new daemon: the stock file wins
    got = listed(d)
    expect_eq(got["local.so"], ("local", None), "after a restart")
    assert other in got["my-local.so"][1], got
    d.stop()


if __name__ == "__main__":
    main()
