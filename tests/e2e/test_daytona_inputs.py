"""Outputs flow to dependents in Daytona sandboxes: the daytona executor
uploads the task's inputs file through the toolbox's file API (multipart,
as Daytona's spec says) before its command runs, and DAGD_INPUTS names it
inside; templates are put in as for any executor.  Against the loopback
Daytona, which checks every request against the specs.  Without node and npm
the tests skip."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "daytona"))

from dagdtest import expect_eq, main  # noqa: E402
from daytonae2e import Server, daemon, daytona_test, expect_faithful, project, wait_no_sandboxes  # noqa: E402


@daytona_test
def a_sandbox_gets_its_dependencies_results_uploaded_before_its_command():
    s = Server()
    d = daemon(s)
    p = project(d, autonomous=False, snapshot="daytonaio/sandbox:latest")
    d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "a", "title": "a", "command": 'printf \'{"k": "v w", "n": [1, 2]}\' > "$DAGD_RESULT_FILE"'},
        {"name": "b", "title": "b", "command": "true"},
        {"name": "c", "title": "c", "depends_on": ["a", "b"],
         "command": 'printf \'{"inputs": %s, "arg": "%s"}\' "$(cat "$DAGD_INPUTS")" {{inputs.a.k}}'
                    ' > "$DAGD_RESULT_FILE"'},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["name"]: t for t in d.wait_done(p, timeout=60)}
    expect_eq(tasks["c"]["result"], {"inputs": {"a": {"k": "v w", "n": [1, 2]}, "b": None}, "arg": "v w"},
              "what the sandbox read")
    made = {x["labels"]["dagd.task"]: x for x in s.sandboxes(instance=d.state_dir)}
    expect_eq(made[tasks["c"]["id"]]["env"]["DAGD_INPUTS"], "/tmp/dagd-inputs.json", "DAGD_INPUTS inside")
    assert "DAGD_INPUTS" not in made[tasks["a"]["id"]]["env"], "a task without dependencies has no inputs"
    uploads = s._call("/_test/uploads")
    expect_eq([u["path"] for u in uploads], ["/tmp/dagd-inputs.json"], "uploads")
    wait_no_sandboxes(s, d)
    expect_faithful(s)


if __name__ == "__main__":
    main()
