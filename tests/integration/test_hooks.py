"""Issue 6 end to end: the hook contract with real bash, a real HTTP server and TCP port (started
here on 127.0.0.1), real containers for exec hooks and real PostgreSQL for SQL hooks.

Order is read from what kompose printed (one line per hook, in the order they ran) and
checked against what each hook left behind: lines in files, requests the server saw,
rows in the database, a log file inside the container.
"""

from __future__ import annotations

import json
import secrets
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import Postgres, project_containers, wait_for

q = shlex.quote
PG_USER, PG_PASSWORD = "kompose", "kompose-test-password"  # the pg_server fixture's


# --- a real HTTP server (and TCP port) that records what reaches it ----------------------------


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    content_type: str


@dataclass
class Recorder:
    """An HTTP server on 127.0.0.1 recording every request and every TCP connection.

    Paths: /hang never answers (until the test ends), /redirect answers 302 to
    /redirected, /fail answers 500, anything else 200.
    """

    server: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.address}{path}"

    def seen(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]


@pytest.fixture
def recorder():
    holder: dict[str, Recorder] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _answer(self) -> None:
            rec = holder["rec"]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rec.requests.append(Request(self.command, self.path, body, self.headers.get("Content-Type", "")))
            if self.path == "/hang":
                rec.release.wait(60)
                return
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/redirected")
            elif self.path == "/fail":
                self.send_response(500)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = _answer

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def verify_request(self, request, client_address) -> bool:
            holder["rec"].connections += 1
            return True

    server = Server(("127.0.0.1", 0), Handler)
    rec = Recorder(server)
    holder["rec"] = rec
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()


# --- helpers ---------------------------------------------------------------------------------


def in_order(text: str, *needles: str) -> None:
    """Each needle appears in ``text``, each after the previous one."""
    position = -1
    for needle in needles:
        found = text.find(needle, position + 1)
        assert found > position, f"{needle!r} missing or out of order in:\n{text}"
        position = found


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def db_env(pg: Postgres, **extra: str) -> str:
    """A stack .env using the test database on the shared server (DB_CONTAINER names it)."""
    values = {
        "DB_NAME": pg.database,
        "DB_USER": PG_USER,
        "DB_PASSWORD": PG_PASSWORD,
        "DB_CONTAINER": pg.container.name,
        **extra,
    }
    # single quotes: literal values, $VARIABLES stay for the hooks to expand
    return "".join(f"{key}='{value}'\n" for key, value in values.items())


def outcome_of(result, stack: str) -> dict:
    data = json.loads(result.stdout)
    return next(o for o in data["outcomes"] if o["stack"] == stack)


# --- order of every kind, context, variables ---------------------------------------------------


def test_every_kind_runs_in_order_around_export_and_context_flows_pre_to_post(kroot, pg, recorder, docker_client):
    pg.sql("CREATE TABLE hook_log (kind text, point text, stack text, dump_file text, rows text, run_id text)")
    events = kroot.path / "events"
    exec_cmd = (
        'app sh -c "echo exec $KOMPOSE_HOOK_POINT rows=$ROWS run=$KOMPOSE_RUN_ID status=$KOMPOSE_STATUS'
        ' >> /tmp/exec-hook.log; echo exec-ran-$KOMPOSE_HOOK_POINT"'
    )
    sql = (
        "INSERT INTO hook_log VALUES ('sql', :'hook', :'stack', :'dump_file', :'ROWS', :'run_id');\n"
        "SELECT 'sql-ran-' || :'hook';\n"
    )
    stack = kroot.stack(
        "order",
        env=db_env(
            pg,
            KOMPOSE_HOOK_PRE_DB_EXPORT_TCP=recorder.address,
            KOMPOSE_HOOK_PRE_DB_EXPORT_EXEC=exec_cmd,
            KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP=f"GET {recorder.url('/pre')}",
            KOMPOSE_HOOK_POST_DB_EXPORT_TCP=recorder.address,
            KOMPOSE_HOOK_POST_DB_EXPORT_EXEC=exec_cmd,
            KOMPOSE_HOOK_POST_DB_EXPORT_HTTP=f"POST {recorder.url('/post')}",
        ),
        hooks=f"""
            hook_pre_db_export() {{
                echo "bash pre_db_export run=$KOMPOSE_RUN_ID context=$KOMPOSE_CONTEXT" >> {q(str(events))}
                echo "ROWS=3" >> "$KOMPOSE_CONTEXT"
            }}
            hook_post_db_export() {{
                echo "bash post_db_export file=$1 status=$KOMPOSE_STATUS rows=$ROWS run=$KOMPOSE_RUN_ID" >> {q(str(events))}
            }}
            hook_on_error() {{ echo "on_error" >> {q(str(events))}; }}
        """,
        files={
            "sql/pre_db_export/010_log.sql": sql,
            "sql/post_db_export/010_log.sql": sql,
        },
    )
    up = kroot.run(stack, "up", "-d")
    assert up.code == 0, up

    result = kroot.run(stack, "db:export")

    assert result.code == 0, result
    out = result.stdout
    in_order(
        out,
        "hook KOMPOSE_HOOK_PRE_DB_EXPORT_TCP", "hook hook_pre_db_export", "hook sql/pre_db_export/", "sql-ran-pre",
        "hook KOMPOSE_HOOK_PRE_DB_EXPORT_EXEC", "exec-ran-pre_db_export", "hook KOMPOSE_HOOK_PRE_DB_EXPORT_HTTP",
        "pg_dump",
        "hook KOMPOSE_HOOK_POST_DB_EXPORT_TCP", "hook hook_post_db_export", "hook sql/post_db_export/",
        "hook KOMPOSE_HOOK_POST_DB_EXPORT_EXEC", "exec-ran-post_db_export", "hook KOMPOSE_HOOK_POST_DB_EXPORT_HTTP",
        "done",
    )
    [dump] = sorted(kroot.dir("order").glob(f"{pg.database}_*.sql"))

    # bash: both ran, the context value written by pre reached post; one run id
    pre_line, post_line = lines(events)
    run_id = pre_line.split("run=")[1].split()[0]
    context_file = Path(pre_line.split("context=")[1])
    assert post_line == f"bash post_db_export file={dump} status=ok rows=3 run={run_id}"
    assert not context_file.exists(), "the run's context file outlived the run"

    # SQL: values arrived as psql variables (context value included)
    assert pg.rows("SELECT kind, point, stack, dump_file, rows, run_id FROM hook_log ORDER BY point DESC") == [
        ("sql", "pre_db_export", stack, str(dump), "3", run_id),  # the name the dump was going to get
        ("sql", "post_db_export", stack, str(dump), "3", run_id),
    ]

    # exec: ran inside the stack's app container, with the context and the status
    [app] = [c for c in project_containers(docker_client, stack) if c.labels.get("com.docker.compose.service") == "app"]
    code, log = app.exec_run(["cat", "/tmp/exec-hook.log"])
    assert code == 0 and log.decode().splitlines() == [
        f"exec pre_db_export rows=3 run={run_id} status=running",
        f"exec post_db_export rows=3 run={run_id} status=ok",
    ]

    # HTTP and TCP: the server saw both checks' connections and both requests, in order
    assert recorder.seen() == [("GET", "/pre"), ("POST", "/post")]
    assert recorder.connections >= 4
    summary = json.loads(recorder.requests[1].body)
    assert recorder.requests[1].content_type == "application/json"
    assert summary == {
        "run_id": run_id, "command": "db:export", "hook": "post_db_export", "stack": stack, "status": "ok",
        "failed_step": "", "error": "", "dump_file": str(dump),
    }


# --- failures ----------------------------------------------------------------------------------


def test_failing_pre_hook_skips_operation_and_post_but_runs_on_error(kroot, recorder, docker_client):
    seen, post = kroot.path / "on-error-saw", kroot.path / "post-ran"
    stack = kroot.stack(
        "prefail",
        env=(
            f"KOMPOSE_HOOK_POST_UP_HTTP=GET {recorder.url('/post-up')}\n"
            f"KOMPOSE_HOOK_ON_ERROR_HTTP='POST {recorder.url('/error')} "
            '{"text": "{{stack}} failed at {{failed_step}}: {{error}}"}\'\n'
        ),
        hooks=f"""
            hook_pre_up() {{ echo "not today" >&2; return 3; }}
            hook_post_up() {{ touch {q(str(post))}; }}
            hook_on_error() {{
                printf '%s\\n' "$KOMPOSE_STATUS" "$KOMPOSE_FAILED_STEP" "$KOMPOSE_ERROR" > {q(str(seen))}
            }}
        """,
    )

    result = kroot.run(stack, "up", "-d")

    assert result.code == 1, result
    assert project_containers(docker_client, stack, all=True) == [], "compose ran after a failing pre hook"
    assert not post.exists(), "a post hook ran after a failed pre hook"
    assert lines(seen) == ["failed", "hook_pre_up", "hook hook_pre_up failed with exit code 3"]
    assert recorder.seen() == [("POST", "/error")]
    assert json.loads(recorder.requests[0].body) == {
        "text": f"{stack} failed at hook_pre_up: hook hook_pre_up failed with exit code 3"
    }


def test_failing_on_error_hook_never_hides_the_original_error(kroot):
    stack = kroot.stack(
        "onerr",
        hooks="""
            hook_pre_ps() { return 4; }
            hook_on_error() { echo "alerting failed" >&2; return 5; }
        """,
    )
    result = kroot.run("--json", stack, "ps")
    assert result.code == 1, result
    outcome = outcome_of(result, stack)
    assert outcome["error"] == "hook hook_pre_ps failed with exit code 4"
    assert outcome["failed_step"] == "hook_pre_ps"
    assert any("on_error hook failed too: hook hook_on_error failed with exit code 5" in n for n in outcome["notes"])
    assert "on_error hook failed too" in result.stderr, result


def test_post_policy_always_runs_post_hooks_after_a_failure(kroot, docker_client):
    events = kroot.path / "events"
    log = q(str(events))
    stack = kroot.stack(
        "always",
        compose="""
            services:
              app:
                image: kompose/does-not-exist:never
                pull_policy: never
        """,
        env="KOMPOSE_POST_POLICY=always\n",
        hooks=f"""
            hook_post_up() {{ echo "post status=$KOMPOSE_STATUS failed=$KOMPOSE_FAILED_STEP" >> {log}; }}
            hook_on_error() {{ echo "on_error status=$KOMPOSE_STATUS" >> {log}; }}
        """,
    )
    dry = kroot.run(stack, "up", "-d", "--dry-run")
    assert "post hooks, always (also after a failure, with KOMPOSE_STATUS=failed)" in dry.stdout, dry

    result = kroot.run(stack, "up", "-d")

    assert result.code == 1, result
    assert lines(events) == ["post status=failed failed=docker compose up", "on_error status=failed"]


def test_failing_post_hook_fails_the_stack_but_never_undoes_the_import(kroot, pg):
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, note text)")
    pg.sql("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    seen = kroot.path / "on-error-saw"
    stack = kroot.stack(
        "postfail",
        env=db_env(pg),
        hooks=f"""
            hook_post_db_import() {{ echo "the app did not come back" >&2; return 7; }}
            hook_on_error() {{ echo "$KOMPOSE_FAILED_STEP" > {q(str(seen))}; }}
        """,
    )
    export = kroot.run(stack, "db:export")
    assert export.code == 0, export
    exported = pg.checksum("t")
    pg.sql("INSERT INTO t VALUES (3, 'after the export')")

    result = kroot.run(stack, "db:import")

    assert result.code == 1, result
    assert "hook hook_post_db_import failed with exit code 7" in result.output, result
    assert pg.checksum("t") == exported, "the swap was undone after a post hook failed"
    assert f"{pg.database}__kompose_prev" in pg.databases()
    assert lines(seen) == ["hook_post_db_import"]


# --- run-wide hooks ----------------------------------------------------------------------------


def test_run_wide_hooks_run_once_per_invocation(kroot, recorder):
    events = kroot.path / "events"
    log = q(str(events))
    block = kroot.path / "block"
    kroot.tree(
        {
            "hooks.sh": f"""
                hook_pre_run() {{
                    echo "pre_run $* stacks=$KOMPOSE_STACKS" >> {log}
                    echo "MAINTENANCE=on" >> "$KOMPOSE_CONTEXT"
                    [ ! -e {q(str(block))} ] || {{ echo "blocked" >&2; return 9; }}
                }}
                hook_post_run() {{ echo "post_run ok=$KOMPOSE_SUCCEEDED failed=$KOMPOSE_FAILED" >> {log}; }}
                hook_on_error() {{ echo "run on_error failed=$KOMPOSE_FAILED step=$KOMPOSE_FAILED_STEP" >> {log}; }}
            """,
            ".env": f"NETWORK_NAME={kroot.network}\nKOMPOSE_HOOK_POST_RUN_HTTP=POST {recorder.url('/run')}\n"
                    f"KOMPOSE_HOOK_ON_ERROR_HTTP=POST {recorder.url('/run-error')}\n",
        }
    )
    good = kroot.stack("a-good", hooks=f'hook_pre_ps() {{ echo "stack {kroot.name("a-good")} maint=$MAINTENANCE" >> {log}; }}')
    bad = kroot.stack("b-bad", hooks="hook_pre_ps() { return 1; }\nhook_on_error() { :; }")

    failed = kroot.run("*", "ps")

    assert failed.code == 1, failed
    assert lines(events) == [
        f"pre_run ps stacks={good} {bad}",
        f"stack {good} maint=on",
        f"run on_error failed={bad} step={bad}: hook_pre_ps",
    ]
    assert recorder.seen() == [("POST", "/run-error")]
    summary = json.loads(recorder.requests[0].body)
    assert (summary["succeeded"], summary["failed"], summary["stacks"]) == ([good], [bad], [good, bad])

    events.unlink()
    ok = kroot.run(good, "ps")
    assert ok.code == 0, ok
    assert lines(events) == [f"pre_run ps stacks={good}", f"stack {good} maint=on", f"post_run ok={good} failed="]
    assert recorder.seen()[-1] == ("POST", "/run")

    # a failing pre_run stops the whole run: no stack is touched
    events.unlink()
    block.touch()
    stopped = kroot.run("*", "ps")
    assert stopped.code == 1, stopped
    assert lines(events) == [f"pre_run ps stacks={good} {bad}", "run on_error failed= step=hook_pre_run"]
    assert "no stack was run" in stopped.stdout, stopped


# --- SQL hooks ---------------------------------------------------------------------------------


def test_sql_pre_swap_runs_in_the_temporary_database_and_a_failure_keeps_live(kroot, pg):
    pg.sql("CREATE TABLE t (id int PRIMARY KEY)")
    pg.sql("INSERT INTO t SELECT generate_series(1, 5)")
    stack = kroot.stack(
        "swap",
        env=db_env(pg),
        files={
            "sql/pre_swap/010_mark.sql": """
                CREATE TABLE swap_mark AS
                  SELECT current_database() AS db, :'stack'::text AS stack, :'dump_file'::text AS dump_file,
                         (SELECT count(*) FROM t) AS rows;
            """,
        },
    )
    assert kroot.run(stack, "db:export").code == 0
    [dump] = sorted(kroot.dir("swap").glob(f"{pg.database}_*.sql"))

    imported = kroot.run(stack, "db:import")

    assert imported.code == 0, imported
    assert pg.rows("SELECT db, stack, dump_file, rows FROM swap_mark") == [
        (f"{pg.database}__kompose_tmp", stack, str(dump), "5")
    ], "the pre_swap SQL did not run in the temporary database"

    before = pg.checksums()
    kroot.tree({"{p}swap/sql/pre_swap/020_check.sql": "-- refuse this copy\nSELECT 1 / 0;\n"})
    refused = kroot.run(stack, "db:import", str(dump))

    assert refused.code == 1, refused
    assert "020_check.sql:2" in refused.output and "division by zero" in refused.output, refused
    assert pg.checksums() == before, "a failing pre_swap SQL file changed the live database"
    assert f"{pg.database}__kompose_tmp" not in pg.databases()


def test_sql_directory_marked_atomic_takes_effect_entirely_or_not_at_all(kroot, pg):
    pg.sql("CREATE TABLE t (note text)")
    stack = kroot.stack(
        "atomic",
        env=db_env(pg),
        files={
            "sql/pre_db_cleanup/010_insert.sql": "INSERT INTO t VALUES (:'stack');",
            "sql/pre_db_cleanup/020_fail.sql": "SELECT no_such_column FROM t;",
        },
    )
    loose = kroot.run(stack, "db:cleanup")
    assert loose.code == 1, loose
    assert pg.count("t") == 1, "without ATOMIC each file commits on its own"

    (kroot.dir("atomic") / "sql/pre_db_cleanup/ATOMIC").touch()
    atomic = kroot.run(stack, "db:cleanup")
    assert atomic.code == 1, atomic
    assert "020_fail.sql:1" in atomic.output and "rolled back" in atomic.output, atomic
    assert pg.count("t") == 1, "an ATOMIC directory left part of its work behind"


# --- time limits -------------------------------------------------------------------------------


def test_hanging_bash_http_and_exec_hooks_time_out(kroot, recorder, docker_client):
    marker = f"hook-marker-{secrets.token_hex(4)}"
    kroot.stack(
        "a-bash",
        env="KOMPOSE_HOOK_TIMEOUT_PRE_PS=1\n",
        hooks="hook_pre_ps() { sleep 60; }",
    )
    kroot.stack(
        "b-http",
        env=f"KOMPOSE_HOOK_PRE_PS_HTTP=GET {recorder.url('/hang')}\nKOMPOSE_HOOK_PRE_PS_HTTP_TIMEOUT=1\n",
    )
    execs = kroot.stack(
        "c-exec",
        env=f"KOMPOSE_HOOK_POST_PS_EXEC='app sh -c \"sleep 3599; : {marker}\"'\nKOMPOSE_HOOK_POST_PS_EXEC_TIMEOUT=1\n",
    )
    assert kroot.run(execs, "up", "-d").code == 0

    started = time.monotonic()
    result = kroot.run("*", "ps", timeout=90)
    elapsed = time.monotonic() - started

    assert result.code == 1, result
    assert elapsed < 30, result
    out = result.output  # the failures are on stderr
    assert "hook hook_pre_ps timed out after 1 s" in out, result
    assert "http hook KOMPOSE_HOOK_PRE_PS_HTTP (GET " in out and "timed out after 1 s" in out, result
    assert "exec hook KOMPOSE_HOOK_POST_PS_EXEC timed out after 1 s; its process group in" in out, result
    assert "0 succeeded, 3 failed of 3 stacks" in result.stdout
    [app] = project_containers(docker_client, execs)
    wait_for(lambda: marker not in json.dumps(app.top()), timeout=10, message="the exec hook's process to be gone")


# --- the dry run --------------------------------------------------------------------------------


def test_dry_run_lists_every_hook_and_triggers_none(kroot, pg, recorder, docker_client):
    ran = kroot.path / "ran"
    kroot.tree(
        {
            "hooks.sh": f"hook_pre_run() {{ touch {q(str(ran))}; }}\nhook_on_error() {{ touch {q(str(ran))}; }}",
            ".env": f"NETWORK_NAME={kroot.network}\nKOMPOSE_HOOK_POST_RUN_HTTP=POST {recorder.url('/run')}\n",
        }
    )
    stack = kroot.stack(
        "dry",
        env=db_env(
            pg,
            KOMPOSE_HOOK_PRE_DB_EXPORT_TCP=recorder.address,
            KOMPOSE_HOOK_PRE_DB_EXPORT_EXEC="app touch /tmp/exec-ran",
            KOMPOSE_HOOK_POST_DB_EXPORT_HTTP=f"POST {recorder.url('/post')}",
            KOMPOSE_HOOK_ON_ERROR_HTTP=f"GET {recorder.url('/error')}",
        ),
        hooks=f"""
            hook_pre_db_export() {{ touch {q(str(ran))}; }}
            hook_post_db_export() {{ touch {q(str(ran))}; }}
            hook_on_error() {{ touch {q(str(ran))}; }}
        """,
        files={"sql/post_db_export/010.sql": "CREATE TABLE sql_ran (x int);"},
    )

    result = kroot.run(stack, "db:export", "--dry-run")

    assert result.code == 0, result
    out = result.stdout
    in_order(
        out,
        "run-wide: before the first stack", "[pre_run] bash hook_pre_run db:export",
        f"{stack}: db:export",
        f"[pre_db_export] tcp {recorder.address} open", "[pre_db_export] bash hook_pre_db_export",
        "[pre_db_export] exec in app: touch /tmp/exec-ran", "pg_dump",
        "post hooks, only on success",
        "[post_db_export] bash hook_post_db_export", "[post_db_export] sql 010.sql",
        f"[post_db_export] http POST {recorder.url('/post')} (body: JSON summary)",
        "on failure (clean-up)",
        "on error (after any failure", "[on_error] bash hook_on_error", f"[on_error] http GET {recorder.url('/error')}",
        "run-wide: after the last stack", f"[post_run] http POST {recorder.url('/run')}",
        "[on_error] bash hook_on_error db:export",
        "dry run: nothing was changed",
    )
    as_json = kroot.run("--json", stack, "db:export", "--dry-run")
    data = json.loads(as_json.stdout)
    kinds = [s.get("hook_kind") for s in data["stacks"][0]["steps"] + data["stacks"][0]["post"] if s.get("hook_kind")]
    assert kinds == ["tcp", "bash", "exec", "bash", "sql", "http"]

    assert recorder.requests == [] and recorder.connections == 0, "a dry run reached the network"
    assert not ran.exists(), "a dry run ran a bash hook"
    assert "sql_ran" not in pg.tables(), "a dry run ran a SQL hook"
    assert not list(kroot.dir("dry").glob("*.sql")), "a dry run wrote a dump"


# --- hooks, hooks:check, init -------------------------------------------------------------------


def test_hooks_lists_every_kind_per_point_in_order(kroot, recorder):
    kroot.tree({"hooks.sh": "hook_post_run() { :; }"})
    stack = kroot.stack(
        "listed",
        env=(
            "DB_NAME=app\n"
            f"KOMPOSE_HOOK_POST_UP_HTTP=GET {recorder.url('/up')}\nKOMPOSE_HOOK_POST_UP_HTTP_TIMEOUT=5\n"
            "KOMPOSE_HOOK_POST_UP_TCP=127.0.0.1:5432\n"
        ),
        hooks="hook_post_up() { :; }\nhook_pre_swap() { :; }\nhook_on_error() { :; }",
        files={"sql/pre_swap/010.sql": "SELECT 1;", "sql/pre_swap/ATOMIC": ""},
    )
    result = kroot.run(stack, "hooks")
    assert result.code == 0, result
    in_order(
        result.stdout,
        "run-wide hooks", "post_run:", "bash hook_post_run",
        stack,
        "pre_swap: after the restore into the temporary database", "bash hook_pre_swap",
        "sql 010.sql -> psql -d app__kompose_tmp", "(atomic: one transaction)",
        "post_up: after `docker compose up`  [post: only on success]",
        "tcp 127.0.0.1:5432 open", "bash hook_post_up", f"http GET {recorder.url('/up')} (timeout 5 s)",
        "on_error:", "bash hook_on_error",
    )
    assert recorder.requests == [] and recorder.connections == 0


def test_hooks_check_finds_every_broken_definition_without_running_anything(kroot):
    ran = kroot.path / "ran"
    good = kroot.stack("a-good", hooks="hook_pre_up() { :; }", env="KOMPOSE_HOOK_POST_UP_TCP=db:5432\n")
    bad = kroot.stack(
        "b-bad",
        env="KOMPOSE_HOOK_PRE_UP_HTPP=GET http://x/\nKOMPOSE_HOOK_POST_UP_TCP=nowhere\nKOMPOSE_POST_POLICY=maybe\n",
        hooks=f"touch {q(str(ran))}\nhook_pre_up() {{\n  if true; then\n}}\n",
        files={"sql/post_up/notes.txt": "no sql here", "sql/pre_db_export/1.sql": "SELECT 1;"},
    )
    result = kroot.run("*", "hooks:check")
    assert result.code == 1, result
    out = result.stdout
    assert f"✓ {good}" in out, result
    for needle in (
        f"✗ {bad}", "syntax error", "KOMPOSE_HOOK_PRE_UP_HTPP: unknown hook key",
        "KOMPOSE_HOOK_POST_UP_TCP: expected <host>:<port>", "sql/post_up: no .sql files",
        "KOMPOSE_POST_POLICY='maybe'", "SQL hooks in", "need a database",
    ):
        assert needle in out, f"{needle!r} not reported\n{result}"
    assert not ran.exists(), "hooks:check ran hooks.sh"

    planned = kroot.run(bad, "up", "--dry-run")
    assert planned.code == 2 and len(planned.stderr.strip().splitlines()) == 1, planned


def test_init_writes_a_template_that_checks_clean_and_is_never_overwritten(kroot):
    stack = kroot.stack("fresh")
    written = kroot.run("init", stack)
    assert written.code == 0, written
    path = kroot.dir("fresh") / "hooks.sh"
    text = path.read_text()
    assert "hook_pre_swap()" in text and "KOMPOSE_CONTEXT" in text
    check = kroot.run(stack, "hooks:check")
    assert check.code == 0, check
    again = kroot.run("init", stack)
    assert again.code == 2 and "never overwrites" in again.stderr, again
    assert path.read_text() == text


def test_http_redirects_count_as_success_unfollowed_and_errors_fail(kroot, recorder):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    redirect = kroot.stack("a-redirect", env=f"KOMPOSE_HOOK_PRE_PS_HTTP=GET {recorder.url('/redirect')}\n")
    error = kroot.stack("b-error", env=f"KOMPOSE_HOOK_PRE_PS_HTTP=POST {recorder.url('/fail')}\n")
    refused = kroot.stack(
        "c-refused",
        env=f"KOMPOSE_HOOK_PRE_PS_HTTP=GET http://127.0.0.1:{port}/\nKOMPOSE_HOOK_PRE_PS_HTTP_TIMEOUT=1\n",
    )

    result = kroot.run("--json", "*", "ps")

    assert result.code == 1, result
    assert recorder.seen() == [("GET", "/redirect"), ("POST", "/fail")], "a redirect was followed"
    assert outcome_of(result, redirect)["status"] == "ok"
    assert "answered 500" in outcome_of(result, error)["error"]
    assert "Connection refused" in outcome_of(result, refused)["error"]


def test_a_token_inside_a_hook_url_is_masked_in_plans_and_listings(kroot, recorder):
    token = f"tok-{secrets.token_hex(8)}"
    stack = kroot.stack(
        "masked",
        env=f"HC_TOKEN={token}\nKOMPOSE_HOOK_POST_UP_HTTP=POST {recorder.url('/ping/${HC_TOKEN}')}\n",
    )
    for args in (["-n", stack, "up", "-d"], ["--json", "-n", stack, "up", "-d"], [stack, "hooks"],
                 ["--json", stack, "hooks"]):
        result = kroot.run(*args)
        assert result.code == 0, result
        assert token not in result.output, result
        assert "/ping/***" in result.output, result
