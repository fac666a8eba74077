"""What comes with dagctl: its bash completion (commands, options, projects,
tasks, option values), the man pages dagctl(1), dagd(8) and dagd-executor(7)
(well formed, every command of dagctl in its page), and `make install`
installing them."""

import os
import re
import shlex
import shutil
import subprocess

from dagdtest import DAGCTL, SRC, daemon, expect_eq, main, skip, test

COMPLETION = os.path.join(SRC, "ctl/dagctl.bash-completion")
PAGES = {"dagctl.1": "ctl/dagctl.1", "dagd.8": "daemon/dagd.8",
         "dagd-executor.7": "plugins/dagd-executor.7"}


def complete(d, line):
    """What bash completes for the words of `line` (its last word being the one
    completed, maybe empty)."""
    words = line.split(" ")
    script = (f"source {shlex.quote(COMPLETION)}\n"
              f"COMP_WORDS=({' '.join(shlex.quote(x) for x in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "_dagctl\n"
              "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = dict(os.environ, DAGD_SOCKET=d.sock,
               PATH=os.path.dirname(DAGCTL) + os.pathsep + os.environ.get("PATH", ""))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, env=env, timeout=30)
    assert p.returncode == 0, f"completion of {line!r}: {p.stderr}"
    assert not p.stderr, f"completion of {line!r} says: {p.stderr}"
    return sorted(x for x in p.stdout.split("\n") if x)


@test
def bash_completes_commands_options_projects_and_tasks():
    if not shutil.which("bash"):
        skip("no bash")
    d = daemon()
    p = d.project(name="completed-project")
    t = d.add(p, "true", title="x")["id"]
    assert {"board", "graph", "wait", "logs", "events"} <= set(complete(d, "dagctl ")), \
        complete(d, "dagctl ")
    expect_eq(complete(d, "dagctl bo"), ["board"], "dagctl bo")
    expect_eq(complete(d, "dagctl task l"), ["list", "logs"], "dagctl task l")
    expect_eq(complete(d, "dagctl board --w"), ["--watch", "--width"], "dagctl board --w")
    expect_eq(complete(d, "dagctl board comp"), ["completed-project"], "a project")
    expect_eq(complete(d, "dagctl --json board comp"), ["completed-project"], "after --json")
    assert t in complete(d, "dagctl logs "), complete(d, "dagctl logs ")
    assert t in complete(d, "dagctl task show "), "a task of task show"
    expect_eq(complete(d, "dagctl graph x --format "), ["dot", "text"], "--format")
    expect_eq(complete(d, "dagctl wait --project comp"), ["completed-project"], "--project")
    expect_eq(complete(d, "dagctl autonomous completed-project o"), ["off", "on"], "on|off")
    expect_eq(complete(d, "dagctl task list --status upstream"), ["upstream_failed"], "--status")
    expect_eq(complete(d, "dagctl board completed-project "), [], "no second project")
    expect_eq(complete(d, "dagctl executors "), ["reload"], "executors")
    expect_eq(complete(d, "dagctl task re"), ["release", "remove", "resume", "retry"], "dagctl task re")
    expect_eq(complete(d, "dagctl task retry --d"), ["--downstream", "--dry-run"], "retry's flags")
    expect_eq(complete(d, "dagctl project cl"), ["clean"], "project clean")
    expect_eq(complete(d, "dagctl apply x --up"), ["--update"], "apply --update")
    assert t in complete(d, "dagctl task hold "), "a task of task hold"
    assert "TASK_REMOVED" in complete(d, "dagctl events --type TASK_"), "the new event types"


@test
def man_pages_are_well_formed_and_name_every_command():
    if not shutil.which("groff"):
        skip("no groff")
    for name, path in PAGES.items():
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(SRC, path)],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, LC_ALL="C.UTF-8"))
        expect_eq((p.returncode, p.stderr), (0, ""), f"groff on {name}")
        title, section = name.rsplit(".", 1)
        head = open(os.path.join(SRC, path)).readline().split()
        expect_eq(head[:3], [".TH", title.upper().replace("-", "\\-"), section], f"{name}: .TH")
    page = subprocess.run(["groff", "-man", "-Tutf8", os.path.join(SRC, PAGES["dagctl.1"])],
                          capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, LC_ALL="C.UTF-8")).stdout
    page = re.sub(r"[ \t]+", " ", re.sub(r".\x08", "", page))    # no bold, no justification
    out = subprocess.run([DAGCTL, "help"], capture_output=True, text=True, timeout=30).stdout
    cmds = re.findall(r"^  ([a-z]+(?: [a-z]+)?)  +[A-Z]", out, re.M)
    assert len(cmds) > 20, out
    missing = [c for c in cmds if c != "help" and not re.search(rf"^\s+{c}\b", page, re.M)]
    expect_eq(missing, [], "commands of dagctl not in dagctl(1)")


@test
def make_install_installs_the_man_pages_and_the_completion():
    if not shutil.which("make"):
        skip("no make")
    dest = "/nonexistent-destdir"
    p = subprocess.run(["make", "-n", "-C", SRC, "install", f"DESTDIR={dest}", "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for src, to in (("ctl/dagctl.1", "/usr/share/man/man1/dagctl.1"),
                    ("daemon/dagd.8", "/usr/share/man/man8/dagd.8"),
                    ("plugins/dagd-executor.7", "/usr/share/man/man7/dagd-executor.7"),
                    ("ctl/dagctl.bash-completion",
                     "/usr/share/bash-completion/completions/dagctl")):
        assert re.search(rf"install -m 0644 {re.escape(src)} {re.escape(dest + to)}$", p.stdout,
                         re.M), f"make install does not install {src} as {to}"


if __name__ == "__main__":
    main()
