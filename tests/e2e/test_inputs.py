"""Outputs flow to dependents: what a task's dependencies reported as their
result reaches it as the file DAGD_INPUTS names, and in the templates of its
command and env ({{inputs.NAME.field}}), put in when it is dispatched; a
template naming what is not there fails the attempt for good, before any
sandbox; values are quoted for the shell; malformed templates are refused
when given."""

import json
import os

from dagdtest import (DAGCTL, Daemon, daemon, expect_eq, expect_error, main, read_file,
                      select_events, test, workdir)


def producer(d, p, result, name="a"):
    """A task that reports `result`."""
    return d.add(p, [DAGCTL, "complete", "--result", json.dumps(result)], title=name,
                 name=name)["id"]


@test
def dependencies_results_reach_a_local_task_as_a_file_argv_and_env():
    d, w = daemon(), workdir()
    p = d.project()
    a = producer(d, p, {"x": {"y": "hello world"}, "n": 3, "list": [10, 20]}, name="in-a")
    b = d.add(p, "true", title="unnamed b")["id"]
    c = d.add(p, ["sh", "-c", f'cat "$DAGD_INPUTS" > {w}/inputs; printf "%s|" "$@" > {w}/argv; '
                  f'printf "%s" "$V" > {w}/env', "sh", "{{inputs.in-a.x.y}}", "{{ inputs.in-a.n }}",
                  "{{inputs.in-a.x}}", "{{inputs.in-a.list.1}}", f"{{{{inputs.{b}}}}}", "{{.ID}}"],
              title="c", depends_on=[a, b], env={"V": "v={{inputs.in-a.x.y}}"})["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["id"]: t for t in d.wait_done(p)}

    expect_eq(json.loads(read_file(f"{w}/inputs")),
              {"in-a": {"x": {"y": "hello world"}, "n": 3, "list": [10, 20]}, b: None},
              "the DAGD_INPUTS file")
    expect_eq(read_file(f"{w}/argv"), 'hello world|3|{"y":"hello world"}|20|null|{{.ID}}|',
              "argv with its templates put in, each element apart")
    expect_eq(read_file(f"{w}/env"), "v=hello world", "an env value with its template put in")
    expect_eq(tasks[c]["command"][4], "{{inputs.in-a.x.y}}", "the task keeps its templates")
    log = f"{d.state_dir}/logs/{c}/1.inputs.json"
    assert os.path.exists(log), "the inputs file is kept beside the attempt's log"


@test
def a_task_run_as_another_user_reads_its_inputs():
    if os.geteuid() != 0:
        return
    d, w = Daemon(root_tasks=False).start(), workdir()
    os.chmod(w, 0o777)
    p = d.project()
    a = producer(d, p, {"secret": "s3"})
    c = d.add(p, f'id -u > {w}/uid; cat "$DAGD_INPUTS" > {w}/inputs; echo {{{{inputs.a.secret}}}} > {w}/arg',
              title="c", depends_on=[a])["id"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    expect_eq(read_file(f"{w}/uid").strip(), "65534", "the task ran as nobody")
    expect_eq(json.loads(read_file(f"{w}/inputs")), {"a": {"secret": "s3"}}, "its inputs, as nobody")
    expect_eq(read_file(f"{w}/arg"), "s3\n", "a template, as nobody")
    assert c


@test
def a_template_naming_a_missing_field_fails_the_attempt_before_any_sandbox_and_for_good():
    d, w = daemon(), workdir()
    p = d.project()
    a = producer(d, p, {"x": 1})
    missing_field = d.add(p, f"touch {w}/ran1; echo {{{{inputs.a.nope}}}}", title="field",
                          depends_on=[a], max_retries=3)["id"]
    missing_name = d.add(p, ["touch", f"{w}/ran2", "{{inputs.zzz}}"], title="name",
                         depends_on=[a], max_retries=3)["id"]
    in_env = d.add(p, f"touch {w}/ran3", title="env", depends_on=[a], env={"E": "{{inputs.a.x.deeper}}"})["id"]
    after = d.add(p, "true", title="after", depends_on=[missing_field])["id"]
    since = d.call("daemon.status")["last_event_seq"]
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["id"]: t for t in d.wait_tasks(p)}
    expect_eq({t: tasks[t]["status"] for t in (missing_field, missing_name, in_env, after)},
              {missing_field: "failed", missing_name: "failed", in_env: "failed",
               after: "upstream_failed"}, "statuses")
    assert "'nope'" in tasks[missing_field]["error_message"], tasks[missing_field]["error_message"]
    assert "'zzz'" in tasks[missing_name]["error_message"], tasks[missing_name]["error_message"]
    assert "'deeper'" in tasks[in_env]["error_message"], tasks[in_env]["error_message"]
    events = d.events(since, project=p["id"])
    for t in (missing_field, missing_name, in_env):
        expect_eq(select_events(events, "SANDBOX_SPAWNED", task_id=t), [], f"sandboxes of {t}")
        failed = select_events(events, "TASK_FAILED", task_id=t)
        expect_eq([(x["payload"]["will_retry"], x["payload"]["reason"]) for x in failed],
                  [(False, "error")], f"TASK_FAILED of {t}")
    for i in (1, 2, 3):
        assert not os.path.exists(f"{w}/ran{i}"), "nothing of the command ran"


@test
def values_put_in_a_shell_command_never_reach_the_shell_unquoted():
    d, w = daemon(), workdir()
    p = d.project()
    evil = f"'; touch {w}/p1; echo \"$(touch {w}/p2)\" `touch {w}/p3` \\\" ' $HOME"
    a = producer(d, p, {"v": evil})
    d.add(p, f"echo {{{{inputs.a.v}}}} > {w}/o1; echo '{{{{inputs.a.v}}}}' > {w}/o2; "
          f"echo \"{{{{inputs.a.v}}}}\" > {w}/o3; echo x{{{{inputs.a.v}}}}y > {w}/o4",
          title="shell", depends_on=[a])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    for i in (1, 2, 3):
        assert not os.path.exists(f"{w}/p{i}"), f"the value ran in the shell (p{i})"
    for i in (1, 2, 3):
        expect_eq(read_file(f"{w}/o{i}"), evil + "\n", f"the value as it is (o{i})")
    expect_eq(read_file(f"{w}/o4"), "x" + evil + "y\n", "the value inside a word")


@test
def malformed_templates_and_item_without_map_over_are_refused_at_add():
    d = daemon()
    p = d.project()
    a = d.add(p, "true", title="a", name="a")["id"]
    before = len(d.tasks(p))
    bad = [
        ({"command": "echo {{inputs.a"}, "not closed"),
        ({"command": ["echo", "{{inputs.a.x"]}, "not closed"),
        ({"command": "echo {{foo.bar}}"}, "unknown root 'foo'"),
        ({"command": "echo {{inputs}}"}, "names no dependency"),
        ({"command": "echo {{inputs.a..x}}"}, "malformed"),
        ({"command": "echo {{inputs.a.}}"}, "malformed"),
        ({"command": "echo {{item}}"}, "map_over"),
        ({"command": "true", "env": {"E": "{{inputs.a"}}, "env 'E'"),
    ]
    for args, why in bad:
        err = expect_error(lambda: d.call("task.add", project=p["id"], title="bad", depends_on=[a],
                                          **args), "bad_request")
        assert why in err.message, f"{args}: {err.message!r} does not say {why!r}"
    err = expect_error(lambda: d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "x", "title": "x", "command": "echo {{nope}}"}]), "bad_request")
    assert "tasks[0] ('x')" in err.message and "unknown root" in err.message, err.message
    expect_eq(len(d.tasks(p)), before, "tasks after the refusals")


if __name__ == "__main__":
    main()
