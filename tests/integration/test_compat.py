"""Issue 17: kompose as a drop-in for kompose.sh users, through the real CLI, real compose and
hooks.sh files written the way the original's users write them (``args=("$@")``,
``${args[0]}``, ``docker exec "${COMPOSE_PROJECT_NAME}-…"``).

Compose commands: hooks get the whole compose command; ``-l``; ``--help`` runs no user code;
exec/run get the terminal (a real pty) and piped stdin (a real pipe into psql) when one stack
is selected, and are refused on several stacks. Databases: the stack's container is found by
its real compose project name; export hooks get the dump's timestamp.
"""

from __future__ import annotations

import os
import pty
import re
import secrets
import select
import shlex
import signal
import sys
import time

from tests.helpers import PG_IMAGE, Postgres, kompose_env, project_containers, running_services

q = shlex.quote
PASSWORD = f"pw-{secrets.token_hex(6)}"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# how the original's users write a hook: the arguments into an array, the command word first
LOGGING_HOOKS = """
log_event() { echo "$*" >> "${SCRIPT_DIR}/events.log"; }
hook_pre_up() { local args=("$@"); log_event "pre_up [${args[0]}] $*"; }
hook_post_up() { local args=("$@"); log_event "post_up [${args[0]}] $*"; }
hook_pre_down() { local args=("$@"); log_event "pre_down [${args[0]}] $*"; }
hook_post_down() { local args=("$@"); log_event "post_down [${args[0]}] $*"; }
hook_pre_exec() { local args=("$@"); log_event "pre_exec [${args[0]}] $*"; }
hook_post_exec() { local args=("$@"); log_event "post_exec [${args[0]}] $*"; }
"""


def events(kroot) -> list[str]:
    path = kroot.path / "events.log"
    return [line.strip() for line in path.read_text().splitlines()] if path.exists() else []


def pg_stack_compose(name_line: str = "") -> str:
    return (name_line + "\n" if name_line else "") + f"""\
services:
  postgres:
    image: {PG_IMAGE}
    pull_policy: never
    environment:
      POSTGRES_USER: postgres
      POSTGRES_PASSWORD: ${{DB_PASSWORD}}
      POSTGRES_DB: ${{DB_NAME}}
    tmpfs: [/var/lib/postgresql/data]
    stop_grace_period: 2s
"""


def pg_env(database: str, extra: str = "") -> str:
    return f"DB_NAME={database}\nDB_USER=postgres\nDB_PASSWORD={PASSWORD}\n{extra}"


def run_in_pty(argv: list[str], env: dict[str, str], keys: bytes, wait_for_text: bytes | None = None,
               timeout: float = 90) -> tuple[int, str]:
    """Run ``argv`` on a new pseudo-terminal (its stdin, stdout and stderr, its controlling tty),
    type ``keys`` once ``wait_for_text`` appeared (at once when None); (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: kompose on the terminal
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    output = bytearray()
    typed = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not typed and (wait_for_text is None or wait_for_text in output):
                time.sleep(0.5)  # let the program set the terminal up (raw mode) before typing
                os.write(fd, keys)
                typed = True
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{argv} on a pty did not finish in {timeout} s:\n{output.decode(errors='replace')}")
            readable, _, _ = select.select([fd], [], [], min(left, 0.5))
            if readable:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's last holder is gone
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), ANSI.sub("", output.decode("utf-8", "replace"))


def pty_kompose(kroot, *args: str, keys: bytes = b"", wait_for_text: bytes | None = None) -> tuple[int, str]:
    argv = [sys.executable, "-m", "kompose", "--root", str(kroot.path), *args]
    env = kompose_env({"TERM": "xterm"})
    return run_in_pty(argv, env, keys, wait_for_text)


# --- 1. compose hooks get the whole compose command ------------------------------------------


def test_compose_hooks_get_the_whole_compose_command(kroot, docker_client):
    blog = kroot.stack("blog", hooks=LOGGING_HOOKS)

    plan = kroot.run("--dry-run", blog, "up", "-d")
    assert plan.code == 0, plan
    assert "hook_pre_up up -d" in plan.stdout and "hook_post_up up -d" in plan.stdout, plan

    up = kroot.run(blog, "up", "-d")
    assert up.code == 0, up
    assert running_services(docker_client, blog) == {"app"}, up
    down = kroot.run(blog, "down")
    assert down.code == 0, down
    assert events(kroot) == [
        "pre_up [up] up -d", "post_up [up] up -d", "pre_down [down] down", "post_down [down] down",
    ], (up, down)


# --- 2. -l is --list ---------------------------------------------------------------------------


def test_dash_l_lists_the_stacks_like_dash_dash_list(kroot):
    blog = kroot.stack("blog", hooks=LOGGING_HOOKS)
    news = kroot.stack("news")
    short = kroot.run("-l")
    long = kroot.run("--list")
    assert short.code == 0, short
    assert blog in short.stdout and news in short.stdout, short
    assert short.stdout == long.stdout


# --- 3. --help after a compose command runs no user code ------------------------------------


def test_help_after_a_compose_command_shows_compose_help_and_runs_no_hook(kroot, docker_client):
    blog = kroot.stack("blog", hooks=LOGGING_HOOKS)
    news = kroot.stack("news", hooks=LOGGING_HOOKS)
    # a run-wide hook too: the root's hooks.sh
    (kroot.path / "hooks.sh").write_text('hook_pre_run() { echo "pre_run $*" >> "$SCRIPT_DIR/events.log"; }\n')

    for args in ([blog, "up", "--help"], [blog, "up", "-d", "-h"], ["*", "up", "--help"]):
        shown = kroot.run(*args)
        assert shown.code == 0, shown
        assert shown.stdout.count("Usage:  docker compose up") == 1, shown  # once, whatever the pattern
        assert events(kroot) == [], shown
    assert project_containers(docker_client, blog, all=True) == []
    assert project_containers(docker_client, news, all=True) == []
    assert not (kroot.path / kroot.name("news") / ".kompose.lock").exists()

    # after the service, --help belongs to the container's program: the hooks run as usual
    up = kroot.run(blog, "up", "-d")
    assert up.code == 0, up
    echoed = kroot.run(blog, "exec", "-T", "app", "echo", "--help")
    assert echoed.code == 0, echoed
    assert "pre_exec [exec] exec -T app echo --help" in events(kroot), echoed
    assert re.search(r"^\s*--help\s*$", echoed.stdout, re.M), echoed


# --- 4. exec and run get the terminal and stdin --------------------------------------------


def test_exec_on_one_stack_gets_the_terminal_and_its_exit_code_decides(kroot, docker_client):
    blog = kroot.stack("blog", hooks=LOGGING_HOOKS)
    assert kroot.run(blog, "up", "-d").code == 0

    # an interactive shell in the container, on a real pseudo-terminal
    code, output = pty_kompose(kroot, blog, "exec", "app", "sh",
                               keys=b'[ -t 0 ] && echo "on-a-tty-$((6*7))"; exit 5\n',
                               wait_for_text=b"docker compose exec app sh")
    assert "on-a-tty-42" in output, output
    assert code == 1, output  # the shell's exit 5 fails the stack
    assert "failed with exit code 5" in output, output

    code, output = pty_kompose(kroot, blog, "exec", "app", "sh", keys=b"echo typed-$((2+3)); exit\n",
                               wait_for_text=b"docker compose exec app sh")
    assert code == 0 and "typed-5" in output, output
    assert "1 succeeded, 0 failed of 1 stack" in output, output
    assert events(kroot)[-2:] == ["pre_exec [exec] exec app sh", "post_exec [exec] exec app sh"]


def test_piped_sql_into_psql_in_the_stack_creates_the_table(kroot, docker_client):
    blog = kroot.stack("blog", compose=pg_stack_compose(), env=pg_env("blog"), hooks=LOGGING_HOOKS)
    assert kroot.run(blog, "up", "-d").code == 0
    server = Postgres.from_compose(docker_client, blog, service="postgres").wait_ready()

    made = kroot.run(blog, "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "blog",
                     input="CREATE TABLE t(x int); INSERT INTO t VALUES (1), (2);\n")
    assert made.code == 0, made
    assert server.using("blog").count("t") == 2, made
    # without -T too: compose sees that stdin is not a terminal
    more = kroot.run(blog, "exec", "postgres", "psql", "-U", "postgres", "-d", "blog",
                     input="INSERT INTO t VALUES (3);\n")
    assert more.code == 0, more
    assert server.using("blog").count("t") == 3, more
    # psql's exit code decides: a failing statement fails the stack
    bad = kroot.run(blog, "exec", "-T", "postgres", "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "blog",
                    input="INSERT INTO missing VALUES (1);\n")
    assert bad.code == 1, bad
    assert 'relation "missing" does not exist' in bad.stdout, bad
    assert "0 succeeded, 1 failed of 1 stack" in bad.stdout, bad
    assert server.using("blog").count("t") == 3


def test_stdin_commands_on_several_stacks_are_refused_with_one_line(kroot, docker_client):
    blog = kroot.stack("blog", hooks=LOGGING_HOOKS)
    news = kroot.stack("news", hooks=LOGGING_HOOKS)
    assert kroot.run("*", "up", "-d").code == 0

    piped = kroot.run("*", "exec", "-T", "app", "cat", input="for one program only\n")
    assert piped.code == 2, piped
    assert piped.stdout == "" and len(piped.stderr.strip().splitlines()) == 1, piped
    assert "select one stack" in piped.stderr and "Traceback" not in piped.stderr, piped

    code, output = pty_kompose(kroot, "*", "exec", "app", "sh")
    assert code == 2, output
    assert "add -T" in output, output
    assert not any(e.startswith("pre_exec") for e in events(kroot)), events(kroot)

    # from /dev/null (cron), or with -T at a terminal, it runs in every stack
    quiet = kroot.run("*", "exec", "-T", "app", "echo", "from-every-stack")
    assert quiet.code == 0 and len(re.findall(r"^\s*from-every-stack\s*$", quiet.stdout, re.M)) == 2, quiet
    code, output = pty_kompose(kroot, "*", "exec", "-T", "app", "echo", "at-a-terminal")
    assert code == 0 and len(re.findall(r"^\s*at-a-terminal\s*$", output, re.M)) == 2, output
    assert blog in output and news in output


# --- 5. the database container of the project name the stack really uses --------------------


def test_database_container_found_by_the_compose_project_name_in_the_compose_file(kroot, docker_client):
    project = kroot.name("renamed")  # not the directory's name
    blog = kroot.stack("blog", compose=pg_stack_compose(f"name: {project}"), env=pg_env("blog"))
    up = kroot.run(blog, "up", "-d")
    assert up.code == 0, up
    assert running_services(docker_client, project) == {"postgres"}, up
    server = Postgres.from_compose(docker_client, project, service="postgres").wait_ready()
    server.sql("CREATE TABLE kept(x int); INSERT INTO kept VALUES (7);", database="blog")

    export = kroot.run(blog, "db:export")
    assert export.code == 0, export
    assert f"compose project {project}" in export.stdout, export
    [dump] = kroot.dir("blog").glob("blog_*.sql")
    assert "INSERT INTO" in dump.read_text() or "COPY public.kept" in dump.read_text()


# --- 5 and 6: COMPOSE_PROJECT_NAME in .env, the dump's timestamp for the export hooks ---------


def test_export_hooks_get_the_dump_timestamp_and_find_the_container_by_compose_project_name(kroot, docker_client):
    project = kroot.name("sexy-prod")
    # the Directus stack's hook, as its users wrote it, pairing its snapshot with the dump
    hooks = """
    hook_pre_db_export() {
        local snapshot_file="${SCRIPT_DIR}/${stack}/schema_${KOMPOSE_DUMP_TIMESTAMP}.sql"
        docker exec "${COMPOSE_PROJECT_NAME}-postgres-1" pg_dump -s -U postgres -d "$DB_NAME" > "$snapshot_file" || return 1
        echo "pre $KOMPOSE_DUMP_TIMESTAMP $KOMPOSE_DUMP_FILE" >> "${SCRIPT_DIR}/events.log"
    }
    hook_post_db_export() {
        echo "post $KOMPOSE_DUMP_TIMESTAMP $1" >> "${SCRIPT_DIR}/events.log"
    }
    """
    sexy = kroot.stack("sexy", compose=pg_stack_compose(), env=pg_env("sexy", f"COMPOSE_PROJECT_NAME={project}\n"),
                       hooks=hooks)
    up = kroot.run(sexy, "up", "-d")
    assert up.code == 0, up
    assert running_services(docker_client, project) == {"postgres"}, up
    server = Postgres.from_compose(docker_client, project, service="postgres").wait_ready()
    server.sql("CREATE TABLE articles(id int primary key); INSERT INTO articles VALUES (1), (2);", database="sexy")

    plan = kroot.run("-n", sexy, "db:export")
    assert plan.code == 0, plan
    assert f"{project}-postgres-1" in plan.stdout, plan

    export = kroot.run(sexy, "db:export")
    assert export.code == 0, export
    [dump] = kroot.dir("sexy").glob("sexy_*.sql")
    stamp = re.fullmatch(r"sexy_(\d{8}_\d{6})\.sql", dump.name).group(1)
    assert events(kroot) == [f"pre {stamp} {dump}", f"post {stamp} {dump}"], export
    snapshot = kroot.dir("sexy") / f"schema_{stamp}.sql"
    assert "CREATE TABLE public.articles" in snapshot.read_text()
