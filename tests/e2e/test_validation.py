"""A task's validation command runs after its work succeeded, in its own
sandbox: its dependents wait for the verdict, a failing validator fails the
task (and is retried with it), and the statuses in between are announced."""

from dagdtest import Daemon, expect_eq, main, select_events, test, workdir


@test
def a_passing_validator_completes_the_task_and_only_then_unblocks_dependents():
    d, w = Daemon().start(), workdir()
    p = d.project()
    t = d.add(p, f"echo built > {w}/artifact", title="build",
              validation_command=f"grep -q built {w}/artifact")
    after = d.add(p, "true", title="after", depends_on=[t["id"]])
    d.call("project.set_autonomous", project=p["id"], enabled=True)
    d.wait_done(p)
    changes = [(e["payload"]["old_status"], e["payload"]["new_status"])
               for e in select_events(d.events(0, project=p["id"]), "TASK_STATUS_CHANGED",
                                      task_id=t["id"])]
    expect_eq(changes, [("ready", "spawning"), ("spawning", "running"),
                        ("running", "pending_validation"), ("pending_validation", "validating"),
                        ("validating", "completed")], "the task's way to completed")
    spawned = [e["payload"]["sandbox_id"] for e in d.events(0, project=p["id"])
               if e["type"] == "SANDBOX_SPAWNED"]
    expect_eq(spawned, [f"{t['id']}.1", f"{t['id']}.1.v", f"{after['id']}.1"],
              "sandboxes: the work, its validator, then the dependent")


@test
def a_failing_validator_fails_the_task_and_is_retried_with_it():
    d, w = Daemon().start(), workdir()
    p = d.project(autonomous=True)
    # the work leaves one more line each run; the validator wants two
    t = d.add(p, f"echo run >> {w}/runs", title="flaky",
              validation_command=f"test $(wc -l < {w}/runs) -ge 2",
              max_retries=1, retry_backoff=0.1)
    dep = d.add(p, "true", title="dependent", depends_on=[t["id"]])
    d.wait_done(p)
    expect_eq(d.task(t["id"])["attempt"], 2, "attempts")
    failed = select_events(d.events(0, project=p["id"]), "TASK_FAILED", task_id=t["id"])
    expect_eq([(e["payload"]["error_message"], e["payload"]["will_retry"]) for e in failed],
              [("validation failed: exited with code 1", True)], "the failed validation")

    q = d.project(autonomous=True)
    bad = d.add(q, "true", title="never valid", validation_command="exit 3")
    dep = d.add(q, "true", title="dependent", depends_on=[bad["id"]])
    d.wait_tasks(q, until=lambda ts: all(x["status"] in ("failed", "upstream_failed") for x in ts))
    expect_eq((d.task(bad["id"])["status"], d.task(bad["id"])["error_message"]),
              ("failed", "validation failed: exited with code 3"), "a validator that never passes")
    expect_eq(d.task(dep["id"])["status"], "upstream_failed", "its dependent")


if __name__ == "__main__":
    main()
