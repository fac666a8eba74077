"""Nothing is silently ignored: every command refuses an argument it does not
know with bad_request naming it (and the argument meant, when one is close),
on the socket, in each task of a batch, and in a file given to dagctl apply;
nothing is changed."""

import json
import os

from dagdtest import daemon, expect_eq, expect_error, main, test, workdir

# every command, with arguments it accepts
COMMANDS = {
    "project.create": {"name": "x"}, "project.list": {}, "project.get": {"project": "x"},
    "project.update": {"project": "x"}, "project.delete": {"project": "x"},
    "project.set_autonomous": {"project": "x", "enabled": True},
    "project.start": {"project": "x"},
    "task.add": {"project": "x", "title": "t", "command": "true"},
    "task.add_batch": {"project": "x", "tasks": []}, "task.get": {"task_id": "t-1"},
    "task.list": {}, "task.depend": {"task_id": "t-1", "on": "t-2"},
    "task.undepend": {"task_id": "t-1", "on": "t-2"}, "task.start": {"task_id": "t-1"},
    "task.complete": {"task_id": "t-1"}, "task.cancel": {"task_id": "t-1"},
    "task.retry": {"task_id": "t-1", "downstream": True, "dry_run": True},
    "task.hold": {"task_id": "t-1"}, "task.release": {"task_id": "t-1"},
    "task.edit": {"task_id": "t-1", "title": "t"}, "task.remove": {"task_id": "t-1"},
    "project.clean": {"project": "x", "failed": True},
    "task.unblocked": {}, "task.logs": {"task_id": "t-1"},
    "events.subscribe": {"follow": False}, "executor.list": {}, "executor.reload": {},
    "daemon.status": {},
}


@test
def every_command_refuses_an_argument_it_does_not_know():
    d = daemon()
    before = d.call("daemon.status")["last_event_seq"]
    for cmd, args in COMMANDS.items():
        e = expect_error(d.call, "bad_request", cmd, bogus_arg=1, **args)
        assert "'bogus_arg'" in e.message and cmd in e.message, f"{cmd}: {e.message}"
    expect_eq(d.call("daemon.status")["last_event_seq"], before, "events (nothing changed)")


@test
def a_typo_is_named_with_the_argument_meant():
    d = daemon()
    p = d.project()
    for typo, meant in [("dependson", "depends_on"), ("priorty", "priority"),
                        ("comand", "command"), ("max_retry", "max_retries"),
                        ("timout", "timeout"), ("Env", "env")]:
        args = {"project": p["id"], "title": "t", "command": "true", typo: ["x"]}
        e = expect_error(d.call, "bad_request", "task.add", **args)
        assert f"'{typo}'" in e.message and f"did you mean '{meant}'" in e.message, e.message
    e = expect_error(d.call, "bad_request", "task.get", taskid="t-1")
    assert "did you mean 'task_id'" in e.message, e.message
    e = expect_error(d.call, "bad_request", "events.subscribe", follow=False, snice=0)
    assert "did you mean 'since'" in e.message, e.message
    e = expect_error(d.call, "bad_request", "daemon.status", verbose=True)
    assert "'verbose'" in e.message and "did you mean" not in e.message, e.message
    expect_eq(d.tasks(p), [], "tasks")


@test
def a_batch_names_the_task_with_the_unknown_argument():
    d = daemon()
    p = d.project()
    e = expect_error(d.call, "bad_request", "task.add_batch", project=p["name"], tasks=[
        {"name": "a", "title": "A", "command": "true"},
        {"name": "b", "title": "B", "command": "true", "dependson": ["a"]}])
    assert "tasks[1] ('b')" in e.message and "'dependson'" in e.message \
        and "did you mean 'depends_on'" in e.message, e.message
    e = expect_error(d.call, "bad_request", "task.add_batch", project="new-by-batch",
                     create_project={"autonomus": True},
                     tasks=[{"name": "a", "title": "A", "command": "true"}])
    assert "create_project" in e.message and "did you mean 'autonomous'" in e.message, e.message
    expect_error(d.call, "not_found", "project.get", project="new-by-batch")
    expect_eq(d.tasks(p), [], "tasks")


@test
def dagctl_apply_refuses_unknown_keys_in_its_file():
    d, w = daemon(), workdir()
    path = os.path.join(w, "dag.json")
    for spec, words in [
            ({"project": "applied", "tasks": [
                {"name": "a", "title": "A", "command": "true"},
                {"name": "b", "title": "B", "command": "true", "dependson": ["zz"]}]},
             ["'dependson'", "tasks[1] ('b')", "did you mean 'depends_on'"]),
            ({"project": "applied", "tasks": [
                {"name": "a", "title": "A", "command": "true", "priorty": "high"}]},
             ["'priorty'", "did you mean 'priority'"]),
            ({"project": "applied", "autonomus": True, "tasks": [
                {"name": "a", "title": "A", "command": "true"}]},
             ['"autonomus"', 'did you mean "autonomous"']),
            ({"project": "applied", "taks": []}, ['"taks"'])]:
        with open(path, "w") as f:
            json.dump(spec, f)
        rc, out, err = d.dagctl("apply", path)
        assert rc != 0, f"dagctl apply took {spec}: {out}"
        for word in words:
            assert word in err, f"dagctl apply's refusal of {spec} lacks {word}: {err!r}"
    expect_error(d.call, "not_found", "project.get", project="applied")


if __name__ == "__main__":
    main()
