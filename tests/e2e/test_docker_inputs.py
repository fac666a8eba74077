"""Outputs flow to dependents in containers: the docker executor binds the
task's inputs file read-only into its container and points DAGD_INPUTS at
it; the templates of the command are put in as for any executor.  Without
an engine the tests skip, or fail when DAGD_REQUIRE_DOCKER=1."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docker"))

from dagdtest import expect_eq, main  # noqa: E402
from dockere2e import daemon, docker_test, project  # noqa: E402


@docker_test
def a_container_reads_its_dependencies_results_read_only():
    d = daemon()
    p = project(d, autonomous=False)
    d.call("task.add_batch", project=p["id"], tasks=[
        {"name": "a", "title": "a", "command": 'dagctl complete --result \'{"k": "v w", "n": [1, 2]}\''},
        {"name": "b", "title": "b", "command": "true"},
        {"name": "c", "title": "c", "depends_on": ["a", "b"],
         "command": 'if echo x >> "$DAGD_INPUTS"; then w=writable; else w=read-only; fi; '
                    'dagctl complete --result "{\\"inputs\\": $(cat "$DAGD_INPUTS"), '
                    '\\"path\\": \\"$DAGD_INPUTS\\", \\"arg\\": \\"{{inputs.a.k}}\\", \\"w\\": \\"$w\\"}"'},
    ])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    tasks = {t["name"]: t for t in d.wait_done(p, timeout=90)}
    expect_eq(tasks["c"]["result"], {
        "inputs": {"a": {"k": "v w", "n": [1, 2]}, "b": None},
        "path": "/dagd/inputs.json", "arg": "v w", "w": "read-only"}, "what the container read")


if __name__ == "__main__":
    main()
