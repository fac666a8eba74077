"""Where dagctl finds dagd, like systemctl: a user without a daemon of their
own reaches the system's; their own daemon comes first when its socket is
there; --system and --user force one; and when nothing answers, the hint says
which paths were tried and what to check.

The system socket is /run/dagd/dagd.sock, which a test cannot own: these tests
point dagctl at a private daemon's socket instead with DAGCTL_TEST_SYSTEM_SOCKET,
a variable for dagctl's own tests only.  User nobody is made a member of the
daemon's group (root's, as the test daemon runs as root) with setpriv
--groups=0, as an operator is made a member of group dagd."""

import os
import shlex
import shutil
import subprocess

from dagdtest import DAGCTL, SANITIZER_RE, SRC, Daemon, expect_eq, main, skip, test, workdir


def runtime_dir():
    """An empty $XDG_RUNTIME_DIR for user nobody."""
    w = os.path.join(workdir(), "run")
    os.mkdir(w, 0o700)
    os.chown(w, 65534, 65534)
    return w


def as_user(args, system_sock, xdg, in_group=True, env=None, user="nobody"):
    """dagctl ARGS as user nobody (or root), with a clean environment:
    (exit status, stdout, stderr)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        skip("needs root and setpriv to run dagctl as another user")
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_RUNTIME_DIR": xdg,
         "DAGCTL_TEST_SYSTEM_SOCKET": system_sock}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(env or {})
    cmd = [DAGCTL] + list(args)
    if user == "nobody":
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup",
               "--groups=0" if in_group else "--clear-groups"] + cmd
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=30, cwd="/")
    m = SANITIZER_RE.search(p.stderr)
    assert not m, f"sanitizer report from dagctl:\n{p.stderr[:6000]}"
    return p.returncode, p.stdout, p.stderr


def project_names(d):
    return {p["name"] for p in d.call("project.list")["projects"]}


def system_daemon():
    """A daemon standing in for the system's: its socket root:root 0660,
    as dagd.socket makes it root:dagd 0660."""
    d = Daemon().start()
    os.chmod(d.sock, 0o660)
    return d


@test
def a_user_without_a_daemon_of_their_own_reaches_the_system_one():
    d = system_daemon()
    xdg = runtime_dir()
    rc, out, err = as_user(["project", "create", "from-nobody"], d.sock, xdg)
    expect_eq((rc, err), (0, ""), "dagctl project create as nobody")
    assert "from-nobody" in project_names(d), "the project is not in the system daemon"
    rc, out, err = as_user(["--system", "status"], d.sock, xdg)
    expect_eq((rc, err), (0, ""), "dagctl --system status as nobody")
    d.stop()


@test
def a_users_own_daemon_comes_first_and_system_or_user_force_one():
    d = system_daemon()
    xdg = runtime_dir()
    mine = Daemon()
    mine.sock = os.path.join(xdg, "dagd.sock")
    mine.start()
    rc, out, err = as_user(["project", "create", "mine"], d.sock, xdg)
    expect_eq((rc, err), (0, ""), "dagctl project create")
    rc, out, err = as_user(["--system", "project", "create", "theirs"], d.sock, xdg)
    expect_eq((rc, err), (0, ""), "dagctl --system project create")
    # DAGD_SOCKET names one daemon; --user still says which
    rc, out, err = as_user(["project", "create", "by-env"], d.sock, xdg, env={"DAGD_SOCKET": d.sock})
    expect_eq((rc, err), (0, ""), "DAGD_SOCKET")
    rc, out, err = as_user(["--user", "project", "create", "user-forced"], d.sock, xdg,
                           env={"DAGD_SOCKET": d.sock})
    expect_eq((rc, err), (0, ""), "--user over DAGD_SOCKET")
    expect_eq(project_names(mine), {"mine", "user-forced"}, "projects of the user's daemon")
    expect_eq(project_names(d), {"theirs", "by-env"}, "projects of the system daemon")
    # root uses the system's daemon unless told --user, as systemctl does
    rc, out, err = as_user(["project", "create", "by-root"], d.sock, xdg, user="root")
    expect_eq((rc, err), (0, ""), "dagctl as root")
    rc, out, err = as_user(["--user", "project", "create", "root-user"], d.sock, xdg, user="root")
    expect_eq((rc, err), (0, ""), "dagctl --user as root")
    expect_eq(project_names(d), {"theirs", "by-env", "by-root"}, "projects of the system daemon")
    expect_eq(project_names(mine), {"mine", "user-forced", "root-user"}, "projects of the user's daemon")
    rc, out, err = as_user(["--system", "--user", "status"], d.sock, xdg)
    assert rc == 2 and "--system and --user" in err, (rc, err)
    rc, out, err = as_user(["--socket", d.sock, "--system", "status"], d.sock, xdg)
    assert rc == 2 and "--socket" in err, (rc, err)
    mine.stop()
    d.stop()


@test
def when_nothing_answers_the_hint_fits_the_case():
    d = system_daemon()
    xdg = runtime_dir()
    # the system socket is there, but nobody is not in its group
    rc, out, err = as_user(["status"], d.sock, xdg, in_group=False)
    expect_eq(rc, 2, "exit status, permission denied")
    assert "Permission denied" in err and d.sock in err and "are you in\ngroup dagd?" in err, err
    # no system socket either: both paths tried, both units named
    gone = os.path.join(d.dir, "no-such.sock")
    rc, out, err = as_user(["status"], gone, xdg)
    expect_eq(rc, 2, "exit status, no socket")
    user_sock = os.path.join(xdg, "dagd.sock")
    assert gone in err and user_sock in err and "not there" in err, err
    assert "systemctl enable --now dagd.socket" in err and "systemctl --user enable" in err, err
    # --user with no daemon of one's own
    rc, out, err = as_user(["--user", "status"], d.sock, xdg)
    expect_eq(rc, 2, "exit status, --user")
    assert user_sock in err and "Is your dagd.socket enabled?" in err and d.sock in err, err
    # a socket named on the command line: no talk of units
    rc, out, err = as_user(["--socket", gone, "status"], d.sock, xdg)
    assert rc == 2 and gone in err and "dagd --socket " + gone in err and "systemctl" not in err, err
    d.stop()



@test
def bash_completion_asks_the_daemon_system_or_user_names():
    if not shutil.which("bash"):
        skip("no bash")
    d = system_daemon()
    xdg = runtime_dir()
    mine = Daemon()
    mine.sock = os.path.join(xdg, "dagd.sock")
    mine.start()
    d.project("sys-project")
    mine.project("user-project")

    def complete(line):
        words = line.split(" ")
        script = (f"source {shlex.quote(os.path.join(SRC, 'ctl/dagctl.bash-completion'))}\n"
                  f"COMP_WORDS=({' '.join(shlex.quote(x) for x in words)})\n"
                  f"COMP_CWORD={len(words) - 1}\n_dagctl\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
        env = {"PATH": os.path.dirname(DAGCTL) + os.pathsep + os.environ.get("PATH", ""),
               "XDG_RUNTIME_DIR": xdg, "DAGCTL_TEST_SYSTEM_SOCKET": d.sock}
        p = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                           text=True, env=env, timeout=30)
        assert p.returncode == 0 and not p.stderr, f"completion of {line!r}: {p.stderr}"
        return set(p.stdout.split())

    expect_eq(complete("dagctl --user project show "), {"user-project"}, "--user")
    expect_eq(complete("dagctl --system project show "), {"sys-project"}, "--system")
    assert {"--system", "--user"} <= complete("dagctl --"), "the global options"
    mine.stop()
    d.stop()

if __name__ == "__main__":
    main()
