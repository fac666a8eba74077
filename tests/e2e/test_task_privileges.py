"""A local task is not an operator.  A root dagd runs local tasks as an
unprivileged user (nobody) unless told otherwise: such a task cannot read the
database, cannot complete or cancel another task (with or without a token of
its own), cannot use operator commands, and cannot set DAGD_* variables
through its env; it can still report its own outcome with its token."""

import os
import pwd

from dagdtest import (DAGCTL, Daemon, expect_eq, expect_error, main, read_file, skip, test,
                      wait_for, workdir)


def shared_dir():
    """A directory the unprivileged task may write its findings into."""
    w = workdir()
    os.chmod(w, 0o777)
    return w


@test(timeout=90)
def a_task_of_a_root_dagd_runs_unprivileged_and_cannot_act_as_an_operator():
    if os.geteuid() != 0:
        skip("only a root dagd switches users")
    w = shared_dir()
    d = Daemon(root_tasks=False).start()
    os.chmod(d.dir, 0o711)
    p = d.project(autonomous=True)
    victim = d.add(p, f"while [ ! -e {w}/go ]; do sleep 0.05; done", title="victim")
    d.wait_task_status(victim["id"], "running")
    db = os.path.join(d.state_dir, "dagd.db")
    script = "; ".join([
        f"id -u > {w}/uid",
        f"cat {db} > /dev/null 2> {w}/db.err; echo $? > {w}/db.rc",
        # its own token, another task's id
        f"DAGD_TASK_ID={victim['id']} {DAGCTL} complete > {w}/forge.out 2>&1; echo $? > {w}/forge.rc",
        # no token at all, as an operator would
        f"{DAGCTL} --socket $DAGD_SOCKET task cancel {victim['id']} > {w}/cancel.out 2>&1; echo $? > {w}/cancel.rc",
        f"{DAGCTL} --socket $DAGD_SOCKET project list > {w}/list.out 2>&1; echo $? > {w}/list.rc",
        # and its own report still goes through
        f"{DAGCTL} complete --result '{{\"me\": 1}}'",
    ])
    attacker = d.add(p, script, title="attacker")
    done = d.wait_task_status(attacker["id"], ("completed", "failed"))
    expect_eq((done["status"], done["result"]), ("completed", {"me": 1}), "the attacker's own report")

    expect_eq(read_file(f"{w}/uid"), f"{pwd.getpwnam('nobody').pw_uid}\n", "the task's uid")
    assert read_file(f"{w}/db.rc") != "0\n", "the task read the database"
    assert "Permission denied" in read_file(f"{w}/db.err"), read_file(f"{w}/db.err")
    for what in ("forge", "cancel", "list"):
        assert read_file(f"{w}/{what}.rc") != "0\n", f"{what} succeeded from a task: {read_file(f'{w}/{what}.out')}"
        assert "permission_denied" in read_file(f"{w}/{what}.out"), read_file(f"{w}/{what}.out")
    expect_eq(d.task(victim["id"])["status"], "running", "the victim, after the attack")
    open(f"{w}/go", "w").close()
    expect_eq(d.wait_task_status(victim["id"], ("completed", "failed"))["status"], "completed", "victim")
    d.stop()


@test
def a_task_env_cannot_set_dagd_variables():
    d = Daemon().start()
    p = d.project()
    for key in ("DAGD_TASK_TOKEN", "DAGD_SOCKET", "DAGD_TASK_ID"):
        e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t", command=["true"],
                         env={key: "forged"})
        assert key in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks after the refusals")
    d.stop()


@test(timeout=60)
def the_user_option_is_checked_when_given():
    d = Daemon().start()
    e = expect_error(d.call, "bad_request", "project.create", name="u",
                     executor_options={"user": "dagd-no-such-user"})
    assert "dagd-no-such-user" in e.message, e.message
    p = d.project()
    e = expect_error(d.call, "bad_request", "task.add", project=p["id"], title="t", command=["true"],
                     executor_options={"usr": "root"})
    assert "'usr'" in e.message, e.message
    d.stop()


if __name__ == "__main__":
    main()
