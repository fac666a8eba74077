"""The slurm executor, through dagd, against a real single-host Slurm cluster:
a DAG of batch jobs runs to the end; exit codes, a signal, dagd's timeout
and Slurm's own time limit are reported right; output reaches
`dagctl logs --follow` while the job runs; cancel; a job cancelled with
scancel behind dagd's back; the environment reaching the job and nothing of
the daemon's leaking into it; bad options refused.  Without a cluster the
tests skip, or fail when DAGD_REQUIRE_SLURM=1.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "slurm"))

from dagdtest import expect_eq, expect_error, main, select_events, wait_for, workdir  # noqa: E402
from slurme2e import (daemon, exited, instance_hash, job_of, jobs, log_text, project, sleep_until, slurm_test,  # noqa: E402
                      spool_files, tool, touch, wait_spool_empty)

import dagdtest  # noqa: E402


@slurm_test(timeout=150)
def a_dag_of_batch_jobs_runs_to_the_end_with_results_and_output():
    d = daemon()
    p = project(d, autonomous=False)
    report = ('echo "hello from $DAGD_TASK_ID on $SLURMD_NODENAME"; '
              'printf \'{"task": "%s"}\' "$DAGD_TASK_ID" > "$DAGD_RESULT_FILE"')
    d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "a", "title": "a", "command": report},
        {"name": "b", "title": "b", "command": report, "depends_on": ["a"]},
        {"name": "c", "title": "c", "command": report, "depends_on": ["a"], "executor_options": {"cpus": 1}},
        {"name": "d", "title": "d", "command": dagdtest.DAGCTL + " complete --result '{\"by\": \"socket\"}'",
         "depends_on": ["b", "c"]},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["name"]: t for t in d.wait_done(p, timeout=90)}
    for n in "abc":
        t = tasks[n]
        expect_eq((t["result"], t["attempt"]), ({"task": t["id"]}, 1), f"result and attempts of {n}")
        assert f"hello from {t['id']} on localhost" in log_text(d, t["id"]), \
            f"the job's output is not in the log of {n}: {log_text(d, t['id'])!r}"
    expect_eq(tasks["d"]["result"], {"by": "socket"}, "result reported over the socket")
    assert tasks["d"]["started_at"] >= max(tasks["b"]["finished_at"], tasks["c"]["finished_at"]), \
        "d started before its dependencies finished"
    spawned = select_events(d.events(0, project=p["id"]), "SANDBOX_SPAWNED")
    expect_eq({e["payload"]["executor"] for e in spawned}, {"slurm"}, "executors")
    # each attempt was one Slurm job, named for its sandbox (Slurm may have
    # forgotten the first ones already), and the spool is emptied after the commit
    prefix = f"dagd-{instance_hash(d.state_dir)}-"
    names = sorted(n[len(prefix):] for n in jobs(d))
    assert names and set(names) <= {f"{t['id']}.1" for t in tasks.values()}, f"the jobs Slurm knows: {names}"
    wait_spool_empty(d)


@slurm_test(timeout=150)
def exit_codes_a_signal_and_timeouts_are_reported_right():
    d = daemon(kill_grace=1)
    p = project(d)
    ok = d.add(p, "exit 0", title="ok")["id"]
    bad = d.add(p, "echo failing; exit 7", title="bad")["id"]
    sig = d.add(p, "kill -USR1 $$", title="signal")["id"]
    slow = d.add(p, "sleep 300", title="dagd's timeout", timeout=2)["id"]
    missing = d.add(p, ["/no/such/program"], title="cannot run")["id"]
    nodir = d.add(p, "true", title="no such cwd", cwd="/no/such/dir")["id"]
    tasks = {t["id"]: t for t in d.wait_tasks(p, timeout=90)}
    ex = exited(d, p)
    expect_eq([tasks[x]["status"] for x in (ok, bad, sig, slow, missing, nodir)],
              ["completed"] + ["failed"] * 5, "statuses")
    expect_eq((ex[ok]["exit_code"], ex[ok]["reason"]), (0, "exited"), "exit 0")
    expect_eq((ex[bad]["exit_code"], ex[bad]["reason"]), (7, "failed"), "exit 7")
    expect_eq(tasks[bad]["error_message"], "exited with code 7", "error of exit 7")
    expect_eq((ex[sig]["exit_code"], ex[sig]["signal"]), (None, 10), "killed by SIGUSR1")
    assert "killed by signal 10" in tasks[sig]["error_message"], tasks[sig]["error_message"]
    expect_eq(ex[slow]["reason"], "timeout", "dagd's timeout")
    assert "timed out" in tasks[slow]["error_message"], tasks[slow]["error_message"]
    expect_eq(ex[missing]["exit_code"], 127, "a program that is not there")
    expect_eq(ex[nodir]["exit_code"], 127, "a directory that is not there")
    assert "cannot change to the directory /no/such/dir" in log_text(d, nodir), log_text(d, nodir)
    assert "failing" in log_text(d, bad)
    wait_spool_empty(d)
    wait_for(lambda: all(s in ("COMPLETED", "FAILED", "CANCELLED") for _, s in jobs(d).values()),
             what="every job ended")


@slurm_test(timeout=150)
def slurms_own_time_limit_ends_the_job_with_reason_timeout():
    d = daemon()
    p = project(d)
    # Slurm enforces time limits in its background pass, within about 30 s
    t = d.add(p, "sleep 300", executor_options={"time_limit": "0:02"})["id"]
    task = d.wait_tasks(p, timeout=120)[0]
    expect_eq(task["status"], "failed", "status")
    ex = exited(d, p)[t]
    expect_eq(ex["reason"], "timeout", f"reason ({ex})")
    assert "TIMEOUT" in task["error_message"], task["error_message"]


@slurm_test
def output_reaches_dagctl_logs_follow_while_the_job_runs():
    w = workdir()
    d = daemon()
    p = project(d)
    t = d.add(p, f'echo first line; {sleep_until(w + "/go")}; echo second line')["id"]
    job_of(d, t)
    proc = subprocess.Popen([dagdtest.DAGCTL, "logs", "--follow", t], env=dict(os.environ, DAGD_SOCKET=d.sock),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        expect_eq(first.rstrip("\n").split()[-2:], ["first", "line"], "first line, while the job runs")
        expect_eq(d.task(t)["status"], "running", "the task's status while its first line is shown")
        touch(os.path.join(w, "go"))
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "second line" in rest, f"dagctl logs --follow: {rest!r} {err!r}"
    expect_eq(proc.returncode, 0, "dagctl logs --follow ends with the task")
    expect_eq(log_text(d, t).count("first line"), 1, "the first line once in the log")


@slurm_test(timeout=150)
def cancel_stops_the_job_and_scancel_behind_dagds_back_fails_the_attempt():
    d = daemon(kill_grace=1)
    p = project(d)
    polite = d.add(p, "trap 'echo got TERM; exit 3' TERM; echo started; while :; do sleep 0.1; done",
                   title="polite")["id"]
    stubborn = d.add(p, "trap '' TERM; echo started; while :; do sleep 0.1; done", title="ignores TERM")["id"]
    behind = d.add(p, "echo started; sleep 300", title="scancelled")["id"]
    jp, _ = job_of(d, polite)
    js, _ = job_of(d, stubborn)
    jb, _ = job_of(d, behind)
    wait_for(lambda: all("started" in log_text(d, t) for t in (polite, stubborn, behind)), timeout=30,
             what="every job's command to start")
    d.call("task.cancel", task_id=polite)
    d.call("task.cancel", task_id=stubborn)
    tool("scancel", jb)
    d.wait_tasks(p, timeout=60, until=lambda ts: len(exited(d, p)) == 3)
    tasks = {t["id"]: t for t in d.tasks(p)}    # (as the exits counted: see test_slurm_restart)
    ex = exited(d, p)
    expect_eq([tasks[x]["status"] for x in (polite, stubborn, behind)], ["cancelled", "cancelled", "failed"],
              "statuses")
    expect_eq([ex[x]["reason"] for x in (polite, stubborn)], ["cancelled", "cancelled"], "reasons")
    assert "got TERM" in log_text(d, polite), log_text(d, polite)
    expect_eq(ex[polite]["exit_code"], 3, "the polite task's own exit after TERM")
    expect_eq(ex[behind]["reason"], "cancelled", "reason of the job scancelled outside dagd")
    assert "cancelled outside dagd" in tasks[behind]["error_message"], tasks[behind]["error_message"]
    # nothing of them runs on (Slurm may have forgotten them already)
    states = {jid: s for jid, s in jobs(d).values()}
    for j in (jp, js, jb):
        assert states.get(j) in (None, "FAILED", "CANCELLED"), f"job {j} is {states.get(j)}"
    wait_spool_empty(d)


@slurm_test
def the_environment_reaches_the_job_and_nothing_of_the_daemons_leaks():
    w = workdir()
    d = daemon(extra_env={"DAGD_TEST_DAEMON_SECRET": "leaked"})
    p = project(d)
    t = d.add(p, f"env > {w}/env; pwd > {w}/pwd", env={"GREETING": "it's \"quoted\" $HOME", "N": "1"},
              cwd=w)["id"]
    d.wait_done(p, timeout=60)
    env = dagdtest.read_env(os.path.join(w, "env"))
    expect_eq((env.get("GREETING"), env.get("N")), ("it's \"quoted\" $HOME", "1"), "the task's env")
    expect_eq((env.get("DAGD_TASK_ID"), env.get("DAGD_PROJECT_ID")), (t, p["id"]), "DAGD_* variables")
    expect_eq(env.get("DAGD_RESULT_FILE", "").startswith(os.path.join(d.state_dir, "slurm-spool") + "/"), True,
              f"DAGD_RESULT_FILE in the spool ({env.get('DAGD_RESULT_FILE')})")
    assert env.get("SLURM_JOB_ID"), "the job's own Slurm variables"
    assert "DAGD_TEST_DAEMON_SECRET" not in env, "the daemon's environment leaked into the job"
    with open(os.path.join(w, "pwd")) as f:
        expect_eq(f.read().strip(), w, "the job's directory")


@slurm_test
def a_jobs_inputs_are_copied_to_the_spool_the_nodes_share():
    w = workdir()
    d = daemon()
    p = project(d, autonomous=False)
    d.call("task.add_batch", project=p["id"], tasks=[
        # (it prints nothing: its result is copied all the same)
        {"name": "a", "title": "a", "command": "printf '{\"k\": \"v w\"}' > \"$DAGD_RESULT_FILE\""},
        {"name": "b", "title": "b", "depends_on": ["a"],
         "command": f'cat "$DAGD_INPUTS" > {w}/inputs; echo "$DAGD_INPUTS" > {w}/path; '
                    f'echo {{{{inputs.a.k}}}} > {w}/arg'},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p, timeout=90)
    expect_eq(json.loads(dagdtest.read_file(f"{w}/inputs")), {"a": {"k": "v w"}}, "the job's inputs")
    assert dagdtest.read_file(f"{w}/path").startswith(os.path.join(d.state_dir, "slurm-spool") + "/"), \
        "DAGD_INPUTS names the copy in the spool"
    expect_eq(dagdtest.read_file(f"{w}/arg"), "v w\n", "a template")
    wait_spool_empty(d)


@slurm_test
def bad_options_are_refused():
    d = daemon()
    p = project(d)
    checks = {
        "unknown option 'image'": {"image": "x"},
        "'cpus' must be an integer": {"cpus": "two"},
        "'memory'": {"memory": "lots"},
        "'time_limit'": {"time_limit": "soon"},
        "'extra_args': '--wrap=rm -rf /' is not allowed": {"extra_args": ["--wrap=rm -rf /"]},
        "'extra_args' must be a list": {"extra_args": "--exclusive"},
        "'partition' must be a string on one line": {"partition": "a\nb"},
    }
    try:
        d.add(p, "true", executor_options={"image": "x"})
    except dagdtest.DagdError:
        pass
    else:
        # a host that does not call check_options() yet: the attempt fails at spawn, with the message
        task = d.wait_tasks(p, timeout=30)[0]
        expect_eq(task["status"], "failed", "a task with an unknown option")
        assert "unknown option 'image'" in task["error_message"], task["error_message"]
        expect_eq(jobs(d), {}, "jobs submitted")
        dagdtest.skip("the host does not call check_options() at task.add yet")
    for text, opts in checks.items():
        err = expect_error(d.add, "bad_request", p, "true", executor_options=opts)
        assert text in str(err), f"{opts}: {err}"
    # and at project.create
    err = expect_error(d.project, "bad_request", executor="slurm", executor_options={"cpus": 0})
    assert "'cpus'" in str(err), err
    expect_eq(d.tasks(p), [], "tasks added")
    expect_eq(jobs(d), {}, "jobs submitted")


if __name__ == "__main__":
    main()
