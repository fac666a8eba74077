"""The slurm executor across restarts, against a real Slurm cluster: jobs
running through a kill -9 of dagd or a plugin reload are adopted and the
exits that came while it was down collected, each once; a job whose record Slurm has already
purged is still judged by its exit file; slurmctld restarted under running
jobs; a submit that timed out is found again by its job name, not sent
twice; jobs named for this daemon that no sandbox owns are cancelled, and
other jobs left alone.  Without a cluster the tests skip, or fail when
DAGD_REQUIRE_SLURM=1.
"""

import collections
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "slurm"))

from dagdtest import expect_eq, main, select_events, wait_for, workdir  # noqa: E402
from slurme2e import (daemon, exited, instance_hash, job_of, jobs, log_text, project, sleep_until,  # noqa: E402
                      slurm_test, spool_files, tool, touch, wait_spool_empty)

import dagdtest  # noqa: E402
import slurme2e  # noqa: E402
import slurmtest  # noqa: E402


def start_waiting(d, w, p, n=3, then=None):
    """n tasks that print "before", wait for w/go, print "after" and leave a
    result, then[i] after that; returns their ids once all said "before"."""
    ids = []
    for i in range(n):
        cmd = (f'echo "before $DAGD_TASK_ID"; {sleep_until(w + "/go")}; echo "after $DAGD_TASK_ID"; '
               'printf \'{"n": "%s"}\' "$DAGD_TASK_ID" > "$DAGD_RESULT_FILE"; ' + (then[i] if then else "true"))
        ids.append(d.add(p, cmd, title=f"waiter {i}")["id"])
    wait_for(lambda: all("before" in log_text(d, t) for t in ids), timeout=60, what="every task's first line")
    return ids


def check_once(d, p, ids, statuses):
    """Each task ended as said, in one attempt, its lines once, one spawn and one exit each."""
    d.wait_tasks(p, timeout=90, until=lambda ts: len(exited(d, p)) == len(ids))
    # (read again: the list wait_tasks saw can be older than the exits it then
    # counted; an exit and its task's status are committed together)
    tasks = {t["id"]: t for t in d.tasks(p)}
    how = [(t, tasks[t]["status"], tasks[t]["attempt"], tasks[t]["error_message"]) for t in ids]
    expect_eq([tasks[t]["status"] for t in ids], statuses,
              f"statuses ({how}; exits: {[e['payload'] for e in select_events(d.events(0, project=p['id']), 'SANDBOX_EXITED')]})")
    for t in ids:
        expect_eq(tasks[t]["attempt"], 1, f"attempts of {t}")
        lines = collections.Counter(log_text(d, t).splitlines())
        expect_eq((lines[f"before {t}"], lines[f"after {t}"]), (1, 1), f"lines in the log of {t}: {dict(lines)}")
    events = d.events(0, project=p["id"])
    for kind in ("SANDBOX_SPAWNED", "SANDBOX_EXITED"):
        per_task = collections.Counter(e["payload"]["task_id"] for e in select_events(events, kind))
        expect_eq(dict(per_task), {t: 1 for t in ids}, f"{kind} events per task")
    return tasks


@slurm_test(timeout=180)
def kill_9_mid_run_then_restart_adopts_the_jobs_and_collects_exits_that_came_meanwhile():
    w = workdir()
    d = daemon()
    p = project(d)
    ids = start_waiting(d, w, p, then=["true", "exit 5", f"{sleep_until(w + '/go2')}"])
    d.kill()
    touch(os.path.join(w, "go"))
    # two jobs end while dagd is down; their exits wait in the spool
    name = f"dagd-{instance_hash(d.state_dir)}-"
    wait_for(lambda: {f"{name}{t}.1.exit" for t in ids[:2]} <= set(spool_files(d)), timeout=30,
             what="the exit files of the jobs that ended while dagd was down")
    d.start()
    wait_for(lambda: len(exited(d, p)) == 2, timeout=30, what="the exits collected after the restart")
    expect_eq(d.task(ids[2])["status"], "running", "the job still running, adopted")
    touch(os.path.join(w, "go2"))
    tasks = check_once(d, p, ids, ["completed", "failed", "completed"])
    expect_eq([tasks[t]["result"] for t in (ids[0], ids[2])], [{"n": ids[0]}, {"n": ids[2]}], "results")
    expect_eq(tasks[ids[1]]["error_message"], "exited with code 5", "the exit that came while dagd was down")
    wait_spool_empty(d)


@slurm_test(timeout=180)
def a_plugin_reload_hands_running_jobs_to_the_new_instance():
    w = workdir()
    d = daemon()
    p = project(d)
    ids = start_waiting(d, w, p, n=2, then=["true", "exit 4"])
    rc, out, err = d.dagctl("executors", "reload")
    expect_eq(rc, 0, f"dagctl executors reload ({err})")
    touch(os.path.join(w, "go"))
    tasks = check_once(d, p, ids, ["completed", "failed"])
    expect_eq(tasks[ids[0]]["result"], {"n": ids[0]}, "result after the reload")
    wait_spool_empty(d)


@slurm_test(timeout=180)
def a_job_whose_record_slurm_purged_is_still_judged_by_its_exit_file():
    w = workdir()
    d = daemon()
    p = project(d)
    ids = start_waiting(d, w, p, n=2, then=["true", "exit 6"])
    job_ids = [job_of(d, t)[0] for t in ids]
    d.stop()
    touch(os.path.join(w, "go"))
    # Slurm forgets a finished job MinJobAge seconds after it ended
    for j in job_ids:
        wait_for(lambda: subprocess.run(["scontrol", "show", "job", j], env=slurme2e.env(),
                                        capture_output=True).returncode != 0,
                 timeout=90, interval=0.5, what=f"Slurm to forget job {j}")
    d.start()
    tasks = check_once(d, p, ids, ["completed", "failed"])
    expect_eq(tasks[ids[0]]["result"], {"n": ids[0]}, "result of the purged job")
    expect_eq(tasks[ids[1]]["error_message"], "exited with code 6", "exit of the purged job")
    wait_spool_empty(d)


@slurm_test(timeout=180)
def a_job_gone_from_slurm_with_no_exit_file_fails_as_lost_not_hangs():
    d = daemon()
    p = project(d)
    t = d.add(p, "echo started; sleep 300", max_lost_retries=0)["id"]
    jid, _ = job_of(d, t)
    wait_for(lambda: "started" in log_text(d, t), timeout=30, what="the job's command to start")
    d.stop()
    # it ends, and its exit file is lost (a spool not shared after all); then Slurm forgets it
    tool("scancel", jid)
    exit_file = os.path.join(slurme2e.spool(d), f"dagd-{instance_hash(d.state_dir)}-{t}.1.exit")
    wait_for(lambda: os.path.exists(exit_file), timeout=30, what="the exit file")
    os.unlink(exit_file)
    wait_for(lambda: subprocess.run(["scontrol", "show", "job", jid], env=slurme2e.env(),
                                    capture_output=True).returncode != 0,
             timeout=90, interval=0.5, what=f"Slurm to forget job {jid}")
    d.start()
    task = d.wait_tasks(p, timeout=60)[0]
    expect_eq(task["status"], "failed", "status")
    expect_eq(exited(d, p)[t]["reason"], "lost", "reason")
    assert f"Slurm job {jid} is gone" in task["error_message"], task["error_message"]


@slurm_test(timeout=240)
def slurmctld_restarted_under_running_jobs_loses_no_exit():
    # a cluster of the test's own: the shared one serves the tests beside this one
    with slurmtest.Private() as conf:
        w = workdir()
        d = daemon(extra_env={"SLURM_CONF": conf})
        p = project(d)
        ids = start_waiting(d, w, p, n=2, then=["true", "exit 9"])
        cdir = os.path.dirname(conf)
        slurmtest.stop_slurmctld(cdir)
        touch(os.path.join(w, "go"))
        # the jobs end on the node while the controller is away: their output
        # still reaches the logs, and the exit files decide without it
        wait_for(lambda: all("after" in log_text(d, t) for t in ids), timeout=30, what="every task's last line")
        wait_for(lambda: d.task(ids[0])["status"] == "completed", timeout=30,
                 what="the task that exited 0 completed with no controller")
        slurmtest.start_slurmctld(cdir)
        tasks = check_once(d, p, ids, ["completed", "failed"])
        expect_eq(tasks[ids[1]]["error_message"], "exited with code 9", "exit 9")
        # a task after the restart runs as before
        t = d.add(p, "echo again")["id"]
        d.wait_tasks(p, timeout=60, until=lambda ts: any(x["id"] == t and x["status"] == "completed" for x in ts))
        wait_spool_empty(d)
        d.stop()


@slurm_test
def a_submit_that_timed_out_is_found_by_its_name_and_not_sent_twice():
    w = workdir()
    # an sbatch that submits, then hangs past the tool time limit
    slow = os.path.join(w, "slow-sbatch")
    with open(slow, "w") as f:
        f.write(f"#!/bin/sh\nsbatch \"$@\" >> {w}/submitted\nsleep 5\n")
    os.chmod(slow, 0o755)
    d = daemon(sbatch=slow, tool_timeout=1)
    p = project(d)
    t = d.add(p, "echo ran once")["id"]
    task = d.wait_tasks(p, timeout=60)[0]
    expect_eq(task["status"], "completed", "status")
    with open(os.path.join(w, "submitted")) as f:
        expect_eq(len(f.read().split()), 1, "jobs submitted")
    expect_eq(log_text(d, t).count("ran once"), 1, "runs")
    assert "looking for job" in d.stderr(), d.stderr_tail()


@slurm_test
def orphans_named_for_this_daemon_are_cancelled_and_other_jobs_left_alone():
    w = workdir()
    d = daemon(start=False)
    name = f"dagd-{instance_hash(d.state_dir)}-t-99.1"
    orphan = tool("sbatch", "--parsable", f"--job-name={name}", "-o", "/dev/null", f"--chdir={w}",
                  "--wrap", "sleep 300").strip()
    other = tool("sbatch", "--parsable", "--job-name=not-dagd", "-o", "/dev/null", f"--chdir={w}",
                 "--wrap", "sleep 300").strip()
    try:
        d.start()
        wait_for(lambda: {j: s for j, s in jobs(d).values()}.get(orphan) in ("CANCELLED", None), timeout=30,
                 interval=0.2, what="the orphan cancelled")
        state = tool("squeue", "--noheader", "--states=all", "-j", other, "-o", "%T").strip()
        assert state in ("PENDING", "RUNNING"), f"the job of no dagd is {state!r}"
    finally:
        tool("scancel", other, orphan, check=False)


if __name__ == "__main__":
    main()
