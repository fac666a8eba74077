"""Resource limits of local tasks (memory_max, pids_max, cpu_max), on a host
whose memory, pids and cpu controllers are cgroup v1 hierarchies that root
may write, as on the machines these tests run on: a task that grows without
bound is killed at its memory_max and fails with the reason oom; one that
starts process after process never has more than its pids_max at once; one
that spins gets the quota of its cpu_max (executor-wide here) and no more;
bad values are refused when given, and nothing is added; and where the
helper cannot set a limit (a dagd that is not root), a task that asks for
one fails at its start instead of running without it.

Needs root and those hierarchies: without them it fails, it does not skip.
"""

import os

from dagdtest import (Daemon, cpu_during, daemon, expect_eq, expect_error, main, sandbox_pids,
                      select_events, test, wait_for)

CONTROLLERS = ("memory", "pids", "cpu")


def v1_mounts():
    """The mount point of each v1 hierarchy, by controller."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _, options = right.split()[:3]
            if fstype == "cgroup":
                for c in options.split(","):
                    found.setdefault(c, left.split()[4])
    return found


def require_v1():
    assert os.geteuid() == 0, "these tests need root (the helper makes cgroups for the tasks)"
    mounts = v1_mounts()
    for c in CONTROLLERS:
        assert c in mounts, f"no cgroup v1 hierarchy of the {c} controller is mounted"
        assert os.access(mounts[c], os.W_OK), f"{mounts[c]} cannot be written"
    return mounts


def task_cgroup(pid, controller):
    """The directory of pid's cgroup in the controller's v1 hierarchy."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return v1_mounts()[controller] + (path if path != "/" else "")
    raise AssertionError(f"pid {pid} is in no {controller} cgroup")


def read(path):
    with open(path) as f:
        return f.read().strip()


def exited(d, p):
    """The SANDBOX_EXITED payloads of the project, by task id."""
    return {e["payload"]["task_id"]: e["payload"]
            for e in select_events(d.events(0, project=p["id"]), "SANDBOX_EXITED")}


def log(d, task_id):
    try:
        return read(os.path.join(d.state_dir, "logs", task_id, "1.log"))
    except FileNotFoundError:
        return ""


def leftover_cgroups(mounts, sandbox):
    """The v1 cgroups still there for the sandbox, in any of the hierarchies."""
    left = []
    for c in CONTROLLERS:
        for root, dirs, _ in os.walk(mounts[c]):
            left += [os.path.join(root, x) for x in dirs if x.startswith("dagd-") and x.endswith("-" + sandbox)]
    return left


GROW = "a = []\nwhile True: a.append(b'x' * (1 << 20))"


@test(timeout=60)
def a_task_over_its_memory_max_is_killed_and_fails_with_reason_oom():
    mounts = require_v1()
    d = daemon()
    # the project's options: every task of it is limited
    p = d.project(autonomous=True, executor_options={"memory_max": "32m"})
    grows = d.add(p, ["python3", "-c", GROW], title="grows")["id"]
    # killed in a child: the task itself fails with its own exit code
    child = d.add(p, ["sh", "-c", f"python3 -c \"{GROW}\"; exit 3"], title="child grows")["id"]
    small = d.add(p, ["python3", "-c", "print(len(b'x' * (4 << 20)))"], title="small")["id"]
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=40)}
    expect_eq({k: tasks[k]["status"] for k in (grows, child, small)},
              {grows: "failed", child: "failed", small: "completed"}, "statuses")
    ex = exited(d, p)
    expect_eq((ex[grows]["signal"], ex[grows]["reason"]), (9, "oom"), "the exit of the task that grew")
    msg = tasks[grows]["error_message"]
    assert msg.startswith("out of memory") and "memory limit of 33554432 bytes" in msg, msg
    expect_eq((ex[child]["exit_code"], ex[child]["reason"]), (3, "oom"), "the exit of the task whose child grew")
    assert "out of memory" in tasks[child]["error_message"], tasks[child]["error_message"]
    expect_eq(ex[small]["reason"], "exited", "the small task's reason")
    for k in (grows, child, small):
        wait_for(lambda: not leftover_cgroups(mounts, tasks[k]["sandbox_id"]), timeout=5,
                 what=f"the cgroups of {k} to be removed")
    rc, out, err = d.dagctl("executors")
    assert "limits by cgroup v1: memory_max, pids_max, cpu_max" in out, out


PIDS = """
import os, time
n = 0
for i in range(50):
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    n += 1
print("started", n, flush=True)
"""


@test(timeout=60)
def a_task_never_has_more_processes_than_its_pids_max():
    require_v1()
    d = daemon()
    p = d.project(autonomous=True)
    t = d.add(p, ["python3", "-c", PIDS], executor_options={"pids_max": 8})["id"]
    free = d.add(p, ["python3", "-c", PIDS.replace("range(50)", "range(12)")], title="no limit")["id"]
    tasks = {x["id"]: x for x in d.wait_done(p, timeout=20)}
    words = log(d, t).split()
    assert len(words) == 2 and words[0] == "started", log(d, t)
    # itself and at most 7 more
    assert 1 <= int(words[1]) <= 7, f"{words[1]} processes started beside the task, with pids_max 8"
    expect_eq(log(d, free), "started 12", "a task without the limit")
    # its sleepers went with it
    wait_for(lambda: not sandbox_pids(d.sock), timeout=5, what="what the tasks started to end")
    assert tasks[t]["status"] == "completed"


SPIN = 'echo $$; exec python3 -c "while True: pass"'


@test(timeout=60)
def cpu_max_of_the_executor_holds_a_busy_task_to_its_quota():
    require_v1()
    d = Daemon(args=["--executor-options", 'local={"user": "root", "cpu_max": 0.2}']).start()
    p = d.project(autonomous=True)
    spin = d.add(p, ["sh", "-c", SPIN])["id"]
    # a task's own value wins over the executor's
    own = d.add(p, ["sh", "-c", SPIN], executor_options={"cpu_max": 1.5})["id"]
    wait_for(lambda: log(d, spin) and log(d, own), timeout=10, what="the tasks' pids")
    pid, pid_own = int(log(d, spin)), int(log(d, own))
    wait_for(lambda: read(f"/proc/{pid}/comm") == "python3", what="the busy loop")
    cg = task_cgroup(pid, "cpu")
    expect_eq((read(f"{cg}/cpu.cfs_quota_us"), read(f"{cg}/cpu.cfs_period_us")), ("20000", "100000"),
              "quota and period of a task with cpu_max 0.2")
    expect_eq(read(f"{task_cgroup(pid_own, 'cpu')}/cpu.cfs_quota_us"), "150000", "quota of a task with cpu_max 1.5")
    share = cpu_during(pid, 1.0)
    assert share < 0.45, f"the task used {share:.2f} of a CPU with cpu_max 0.2"
    for t in (spin, own):
        d.call("task.cancel", task_id=t)
    tasks = d.wait_tasks(p, timeout=20)
    expect_eq({x["status"] for x in tasks}, {"cancelled"}, "after the cancels")
    wait_for(lambda: not os.path.exists(cg), timeout=5, what=f"{cg} to be removed")


@test(timeout=60)
def bad_limits_are_refused_when_given_and_nothing_is_added():
    d = daemon()
    p = d.project(autonomous=True)
    for opts, word in (({"memory_max": "lots"}, "memory_max"), ({"memory_max": 0}, "memory_max"),
                       ({"memory_max": "64x"}, "memory_max"), ({"memory_max": "512k"}, "memory_max"),
                       ({"pids_max": 0}, "pids_max"), ({"pids_max": "8"}, "pids_max"),
                       ({"pids_max": 2.5}, "pids_max"), ({"cpu_max": 0}, "cpu_max"),
                       ({"cpu_max": "half"}, "cpu_max"), ({"cpu_max": 0.001}, "cpu_max"),
                       ({"cpu_max": -1}, "cpu_max"), ({"memory_maxx": "1g"}, "memory_maxx")):
        e = expect_error(d.add, "bad_request", p, "true", executor_options=opts)
        assert word in e.message, (opts, e.message)
    e = expect_error(d.project, "bad_request", executor_options={"pids_max": -3})
    assert "pids_max" in e.message, e.message
    e = expect_error(d.call, "bad_request", "project.update", project=p["id"], executor_options={"cpu_max": "x"})
    assert "cpu_max" in e.message, e.message
    e = expect_error(d.add, "bad_request", p, "true", executor_options={"memory_max": "512k"})
    assert "at least 1m" in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    expect_eq(d.call("project.get", project=p["id"])["project"]["executor_options"], {}, "the project's options")
    # the forms the refusals point to are taken
    for opts in ({"memory_max": "64m", "pids_max": 8, "cpu_max": 0.5}, {"memory_max": 1 << 30, "cpu_max": 2},
                 {"memory_max": "2G"}, {"memory_max": "1048576"}):
        d.add(p, "true", executor_options=opts)
    expect_eq(len(d.tasks(p)), 4, "tasks with good limits")


@test(timeout=60)
def a_limit_the_helper_cannot_set_fails_the_task_at_its_start():
    require_v1()
    # a dagd that is not root: its helper cannot make cgroups anywhere
    d = Daemon(prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"], root_tasks=False)
    os.chown(d.dir, 65534, 65534)
    d.start()
    p = d.project(autonomous=True)
    plain = d.add(p, "true", title="no limit")["id"]
    limited = d.add(p, "true", title="limited", executor_options={"memory_max": "1g"})["id"]
    tasks = {x["id"]: x for x in d.wait_tasks(p, timeout=20)}
    expect_eq((tasks[plain]["status"], tasks[limited]["status"]), ("completed", "failed"), "statuses")
    msg = tasks[limited]["error_message"]
    assert "memory_max needs the cgroup memory controller, which the local helper cannot use here" in msg, msg
    rc, out, err = d.dagctl("executors")
    assert "no limits (memory_max, pids_max, cpu_max)" in out, out


main()
