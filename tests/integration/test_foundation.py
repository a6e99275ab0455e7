"""Issue 2 end to end: the real CLI, real `docker compose`, real hooks.sh files, in a temporary root.

Each test builds its own stacks (names unique per test, see the ``kroot`` fixture)
and asserts what a user would check: exit code, files, containers, printed lines.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import os
import signal
from pathlib import Path

import pytest

import kompose
from tests.helpers import (
    APP_IMAGE,
    REPO_ROOT,
    pids_matching,
    project_containers,
    run_kompose,
    running_services,
    wait_for,
)

SUMMARY = re.compile(r"(\d+) succeeded, (\d+) failed of (\d+) stacks?")

q = shlex.quote


def summary_line(result) -> str:
    """The summary, which must be the last non-empty line kompose printed (stdout, else stderr)."""
    for text in (result.stdout, result.stderr):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and SUMMARY.search(lines[-1]):
            return SUMMARY.search(lines[-1]).group(0)
    raise AssertionError(f"no summary line at the end of the output\n{result}")


def events(path: Path) -> list[str]:
    """Lines a hook appended to an events file, trailing blanks (from an empty "$*") dropped."""
    return [line.strip() for line in path.read_text().splitlines()] if path.exists() else []


def read_vars(path: Path) -> dict[str, str]:
    """KEY=VALUE lines a hook wrote."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def stream_with(result, *needles: str) -> str:
    """The stream (stdout or stderr) holding all needles, to check their order within it."""
    for text in (result.stdout, result.stderr):
        if all(n in text for n in needles):
            return text
    raise AssertionError(f"{needles} not all in one output stream\n{result}")


def compose_with_env(*names: str, command: str = '["sleep", "3600"]') -> str:
    environment = "".join(f"      {n}: ${{{n}:-<unset>}}\n" for n in names)
    return (
        "services:\n"
        "  app:\n"
        f"    image: {APP_IMAGE}\n"
        "    pull_policy: never\n"
        f"    command: {command}\n"
        "    stop_grace_period: 1s\n"
        + ("    environment:\n" + environment if names else "")
    )


def container_env(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] if "=" in item)


# --- version, help, usage -------------------------------------------------------------------


def test_version_prints_the_package_version(kroot):
    result = run_kompose("--version", root=None)
    assert result.code == 0, result
    assert kompose.__version__ in result.stdout


def test_help_names_the_options(kroot):
    result = run_kompose("--help", root=None)
    assert result.code == 0, result
    for option in ("--root", "--dry-run", "--env", "--network", "--json", "--no-color", "--debug", "--list"):
        assert option in result.stdout, f"{option} missing from --help\n{result}"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["{alpha}"], id="pattern-without-command"),
        pytest.param(["--no-such-option", "{alpha}", "ps"], id="unknown-option"),
        pytest.param(["-e", "NOEQUALSSIGN", "{alpha}", "ps"], id="bad-env-assignment"),
    ],
)
def test_usage_errors_exit_2(kroot, args):
    alpha = kroot.stack("alpha")
    result = kroot.run(*[a.replace("{alpha}", alpha) for a in args])
    assert result.code == 2, result


def test_output_has_no_colour_codes_when_not_a_terminal(kroot):
    alpha = kroot.stack("alpha", hooks="hook_pre_up() { :; }")
    for args in (["--list"], ["-n", alpha, "up", "-d"], ["nomatch", "ps"]):
        result = kroot.run(*args)
        assert "\x1b[" not in result.output, result


# --- stacks and --list -------------------------------------------------------------------------


def test_list_names_stacks_files_and_hook_functions(kroot):
    sourced = kroot.path / "hooks-were-sourced"
    alpha = kroot.stack(
        "alpha",
        env="DB_NAME=app\n",
        hooks=f"""
            touch {q(str(sourced))}
            hook_pre_up() {{
                echo pre
            }}
            function hook_post_up {{
                echo post
            }}
            hook_pre_db_export() {{ :; }}
        """,
    )
    beta = kroot.stack("beta", compose_name="docker-compose.yml")
    gamma = kroot.stack("gamma", compose_name="compose.yml", files={"docker-compose.yml": "services: {}\n"})
    kroot.tree(
        {
            "_private/compose.yaml": "services: {}\n",
            ".hidden/compose.yaml": "services: {}\n",
            "{p}nocompose/README": "not a stack\n",
        }
    )

    result = kroot.run("--list")

    assert result.code == 0, result
    lines = {name: [line for line in result.stdout.splitlines() if name in line] for name in (alpha, beta, gamma)}
    for name, found in lines.items():
        assert len(found) == 1, f"expected one line for {name}\n{result}"
    assert all(h in lines[alpha][0] for h in ("pre_up", "post_up", "pre_db_export")), result
    assert "docker-compose.yml" in lines[beta][0], result
    assert "compose.yml" in lines[gamma][0] and "docker-compose.yml" not in lines[gamma][0], result
    for hidden in ("_private", ".hidden", kroot.name("nocompose")):
        assert hidden not in result.output, result
    assert not sourced.exists(), "--list sourced hooks.sh (it must read it without running it)"


def test_root_from_environment_and_from_current_directory(kroot):
    alpha = kroot.stack("alpha")
    from_env = run_kompose("--list", root=None, env={"KOMPOSE_ROOT": str(kroot.path)})
    assert from_env.code == 0 and alpha in from_env.stdout, from_env
    from_cwd = run_kompose("--list", root=None, cwd=kroot.path)
    assert from_cwd.code == 0 and alpha in from_cwd.stdout, from_cwd


def test_unknown_pattern_exits_3_listing_the_stacks(kroot):
    alpha, beta = kroot.stack("alpha"), kroot.stack("beta")
    result = kroot.run("nomatch*", "ps")
    assert result.code == 3, result
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:"), f"expected one 'error: …' line\n{result}"
    assert "nomatch" in errors[0] and alpha in errors[0] and beta in errors[0], result


def test_comma_list_and_glob_select_stacks(kroot):
    alpha, beta, gamma = kroot.stack("alpha"), kroot.stack("beta"), kroot.stack("gamma")
    chosen = kroot.run("-n", f"{alpha},{gamma}", "up", "-d")
    assert chosen.code == 0, chosen
    assert alpha in chosen.stdout and gamma in chosen.stdout and beta not in chosen.output, chosen
    globbed = kroot.run("-n", f"{kroot.prefix}b*", "up", "-d")
    assert globbed.code == 0, globbed
    assert beta in globbed.stdout and alpha not in globbed.output and gamma not in globbed.output, globbed


# --- compose passthrough and hooks ----------------------------------------------------------


def test_up_runs_hooks_in_order_and_down_stops(kroot, docker_client):
    log = kroot.path / "events.log"
    alpha = kroot.stack(
        "alpha",
        hooks=f"""
            hook_pre_up() {{
                echo "pre_up $*" >> {q(str(log))}
                echo "pre-up-hook-says-hello"
            }}
            hook_post_up() {{
                echo "post_up $*" >> {q(str(log))}
                echo "post-up-hook-says-bye"
            }}
            hook_pre_down() {{ echo "pre_down $*" >> {q(str(log))}; }}
            hook_post_down() {{ echo "post_down $*" >> {q(str(log))}; }}
        """,
    )
    beta = kroot.stack("beta")

    up = kroot.run("*", "up", "-d")

    assert up.code == 0, up
    assert running_services(docker_client, alpha) == {"app"}, up
    assert running_services(docker_client, beta) == {"app"}, up
    assert events(log) == ["pre_up up -d", "post_up up -d"], up
    text = stream_with(up, alpha, "pre-up-hook-says-hello", "post-up-hook-says-bye")
    assert text.index(alpha) < text.index("pre-up-hook-says-hello") < text.index("post-up-hook-says-bye"), up
    assert beta in up.stdout, up
    assert summary_line(up) == "2 succeeded, 0 failed of 2 stacks"

    down = kroot.run("*", "down")

    assert down.code == 0, down
    assert project_containers(docker_client, alpha, all=True) == [], down
    assert project_containers(docker_client, beta, all=True) == [], down
    assert events(log)[2:] == ["pre_down down", "post_down down"], down
    assert summary_line(down) == "2 succeeded, 0 failed of 2 stacks"


def test_hook_environment_cwd_and_stdin(kroot):
    seen = kroot.path / "seen.env"
    alpha = kroot.stack(
        "alpha",
        hooks=f"""
            hook_pre_ps() {{
                {{
                    echo "pwd=$(pwd -P)"
                    echo "args=$*"
                    for v in SCRIPT_DIR stack KOMPOSE_ROOT KOMPOSE_STACK KOMPOSE_STACK_DIR \\
                             KOMPOSE_COMMAND KOMPOSE_HOOK KOMPOSE_DRY_RUN; do
                        echo "$v=${{!v-<unset>}}"
                    done
                    if read -r line; then echo "stdin=$line"; else echo "stdin=<eof>"; fi
                }} > {q(str(seen))}
            }}
        """,
    )

    result = kroot.run(alpha, "ps", "--all", input="typed-at-the-terminal\n")

    assert result.code == 0, result
    env = read_vars(seen)
    stack_dir = kroot.dir("alpha").resolve()
    assert Path(env["pwd"]) == stack_dir
    assert env["args"] == "ps --all"  # the whole compose command, as kompose.sh passes it
    assert Path(env["SCRIPT_DIR"]).resolve() == kroot.path.resolve()
    assert Path(env["KOMPOSE_ROOT"]).resolve() == kroot.path.resolve()
    assert env["stack"] == alpha and env["KOMPOSE_STACK"] == alpha
    assert Path(env["KOMPOSE_STACK_DIR"]).resolve() == stack_dir
    assert env["KOMPOSE_COMMAND"] == "ps"
    assert "pre_ps" in env["KOMPOSE_HOOK"]
    assert env["KOMPOSE_DRY_RUN"] != "<unset>" and env["KOMPOSE_DRY_RUN"].lower() not in ("1", "true", "yes")
    assert env["stdin"] == "<eof>", "a hook must get /dev/null as stdin, not kompose's"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-n", "{stack}", "up", "-d"], id="short-flag-before-pattern"),
        pytest.param(["--dry-run", "{stack}", "up", "-d"], id="long-flag-before-pattern"),
        pytest.param(["{stack}", "up", "-d", "--dry-run"], id="after-command"),
    ],
)
def test_dry_run_prints_the_plan_and_touches_nothing(kroot, docker_client, args):
    canary = f"canary-{secrets.token_hex(8)}"
    token = f"canary-token-{secrets.token_hex(8)}"
    sourced, pre, post = (kroot.path / n for n in ("sourced", "pre-ran", "post-ran"))
    stack = kroot.stack(
        "web",
        compose=compose_with_env("DB_PASSWORD"),
        env=f"DB_NAME=app\nDB_USER=app\nDB_PASSWORD={canary}\n",
        hooks=f"""
            touch {q(str(sourced))}
            hook_pre_up() {{ echo "$DB_PASSWORD" > {q(str(pre))}; }}
            hook_post_up() {{ touch {q(str(post))}; }}
        """,
    )

    result = kroot.run("-e", f"API_TOKEN={token}", *[a.replace("{stack}", stack) for a in args])

    assert result.code == 0, result
    assert project_containers(docker_client, stack, all=True) == [], "a dry-run started containers"
    assert not pre.exists() and not post.exists(), "a dry-run ran a hook"
    assert not sourced.exists(), "a dry-run sourced hooks.sh"
    assert canary not in result.output and token not in result.output, "a secret value was printed"
    assert stack in result.stdout, result
    assert "pre_up" in result.stdout and "post_up" in result.stdout, result
    assert re.search(r"\bup\b.*-d", result.stdout), f"the compose invocation is not in the plan\n{result}"


def test_dry_run_json_is_json_without_secrets(kroot, docker_client):
    canary = f"canary-{secrets.token_hex(8)}"
    stack = kroot.stack(
        "web", env=f"DB_PASSWORD={canary}\n", hooks="hook_pre_up() { touch should-not-exist; }"
    )
    result = kroot.run("--json", "-n", stack, "up", "-d")
    assert result.code == 0, result
    json.loads(result.stdout)
    assert canary not in result.output
    assert stack in result.stdout and "pre_up" in result.stdout, result
    assert not (kroot.dir("web") / "should-not-exist").exists()
    assert project_containers(docker_client, stack, all=True) == []


def test_failing_pre_hook_stops_only_its_stack(kroot, docker_client):
    post = kroot.path / "post-ran"
    failing = kroot.stack(
        "a-fails",
        hooks=f"""
            hook_pre_up() {{ echo "refusing to start" >&2; return 1; }}
            hook_post_up() {{ touch {q(str(post))}; }}
        """,
    )
    fine = kroot.stack("b-fine")

    result = kroot.run("*", "up", "-d")

    assert result.code == 1, result
    assert project_containers(docker_client, failing, all=True) == [], "compose ran after a failing pre hook"
    assert running_services(docker_client, fine) == {"app"}, "the failing stack stopped the others"
    assert not post.exists(), "post hook ran after a failed pre hook"
    assert failing in result.output and fine in result.output
    assert summary_line(result) == "1 succeeded, 1 failed of 2 stacks"


def test_post_hook_runs_only_when_compose_succeeded(kroot, docker_client):
    post = kroot.path / "post-ran"
    broken = kroot.stack(
        "broken",
        compose="""
            services:
              app:
                image: kompose/does-not-exist:never
                pull_policy: never
        """,
        hooks=f"hook_post_up() {{ touch {q(str(post))}; }}",
    )
    result = kroot.run(broken, "up", "-d")
    assert result.code == 1, result
    assert not post.exists(), "post hook ran although compose failed"
    assert SUMMARY.search(summary_line(result)).groups() == ("0", "1", "1")


def test_hook_past_its_time_limit_is_killed_with_its_children(kroot, docker_client):
    # unique sleep durations are the markers pgrep looks for
    n = secrets.randbelow(10**6)
    child, grandchild = f"sleep 3599.{n:06d}", f"sleep 3598.{n:06d}"
    stack = kroot.stack(
        "slow",
        hooks=f"""
            hook_pre_up() {{
                echo "slow hook started"
                {grandchild} &
                sh -c '{child}'
            }}
        """,
    )
    try:
        result = kroot.run(stack, "up", "-d", env={"KOMPOSE_HOOK_TIMEOUT": "2"}, timeout=60)

        assert result.code == 1, result
        assert result.elapsed < 30, result
        assert re.search(r"time[ds]? ?out|time limit", result.output, re.IGNORECASE), result
        assert project_containers(docker_client, stack, all=True) == [], "compose ran after a timed-out hook"
        wait_for(
            lambda: not pids_matching(child) and not pids_matching(grandchild),
            timeout=5,
            message="the hook's processes to be gone",
        )
    finally:
        for pid in pids_matching(child) + pids_matching(grandchild):
            os.kill(pid, signal.SIGKILL)


def test_compose_arguments_pass_through(kroot, docker_client):
    stack = kroot.stack(
        "news",
        compose=compose_with_env(command='["sh", "-c", "echo line-one; echo line-two; exec sleep 3600"]'),
    )
    up = kroot.run(stack, "up", "-d")
    assert up.code == 0, up
    [container] = project_containers(docker_client, stack)
    wait_for(lambda: b"line-two" in container.logs(), timeout=20, message="the app's log lines")

    for args in (["logs", "-n", "1"], ["logs", "--tail", "1"]):
        logs = kroot.run(stack, *args)
        assert logs.code == 0, logs
        assert "line-two" in logs.stdout and "line-one" not in logs.output, logs

    ps = kroot.run(stack, "ps")
    assert ps.code == 0, ps
    assert container.name in ps.stdout, ps


def test_env_layers_root_then_stack_then_cli(kroot, docker_client):
    seen = kroot.path / "seen.env"
    names = ("L_PROC", "L_A", "L_B", "L_C", "L_D", "L_Q", "L_I", "NETWORK_NAME")
    (kroot.path / ".env").write_text(
        f"NETWORK_NAME={kroot.network}\nL_A=root\nL_B=root\nL_C=root\nL_D=root\n"
    )
    stack = kroot.stack(
        "layers",
        compose=compose_with_env(*names),
        env="""
            # a comment
            L_B=stack
            L_C=stack
            export L_Q="quoted value # not a comment"
            L_I=${L_A}-interpolated
        """,
        hooks=f"""
            hook_pre_up() {{
                for v in {' '.join(names)}; do echo "$v=${{!v-<unset>}}"; done > {q(str(seen))}
                echo "hook sees L_C=$L_C"
            }}
        """,
    )

    result = kroot.run("-e", "L_C=cli", stack, "up", "-d", env={"L_PROC": "proc", "L_A": "proc"})

    assert result.code == 0, result
    expected = {
        "L_PROC": "proc",
        "L_A": "root",
        "L_B": "stack",
        "L_C": "cli",
        "L_D": "root",
        "L_Q": "quoted value # not a comment",
        "L_I": "root-interpolated",
        "NETWORK_NAME": kroot.network,
    }
    assert read_vars(seen) == expected, "hook environment"
    assert "hook sees L_C=cli" in result.output, result
    [container] = project_containers(docker_client, stack)
    env = container_env(container)
    assert {k: env.get(k) for k in names} == expected, "compose environment"


def test_network_option_sets_network_name(kroot):
    seen = kroot.path / "seen.env"
    stack = kroot.stack("net", hooks=f'hook_pre_ps() {{ echo "NETWORK_NAME=$NETWORK_NAME" > {q(str(seen))}; }}')

    default = kroot.run(stack, "ps")
    assert default.code == 0, default
    assert read_vars(seen)["NETWORK_NAME"] == kroot.network

    custom = f"{kroot.prefix}other"
    chosen = kroot.run("--network", custom, stack, "ps")
    assert chosen.code == 0, chosen
    assert read_vars(seen)["NETWORK_NAME"] == custom


# --- configuration errors -----------------------------------------------------------------------


def test_malformed_stack_env_line_is_an_error_with_file_and_line(kroot, docker_client):
    stack = kroot.stack("bad", env="GOOD=1\n# fine\nthis is not valid\nLATER=2\n")
    result = kroot.run(stack, "up", "-d")
    assert result.code == 2, result
    assert ".env:3" in result.stderr and stack in result.stderr, result
    assert result.stderr.lstrip().startswith("error:"), result
    assert project_containers(docker_client, stack, all=True) == []


def test_malformed_root_env_line_is_an_error_with_file_and_line(kroot):
    stack = kroot.stack("fine")
    (kroot.path / ".env").write_text(f"NETWORK_NAME={kroot.network}\nthis is not valid\n")
    result = kroot.run(stack, "ps")
    assert result.code == 2, result
    assert ".env:2" in result.stderr, result


def test_hooks_syntax_error_names_the_file_before_anything_runs(kroot, docker_client):
    ran = kroot.path / "ran"
    stack = kroot.stack("syntax", hooks=f"hook_pre_up() {{\n    touch {q(str(ran))}\n    if true; then\n}}\n")
    result = kroot.run(stack, "up", "-d")
    assert result.code != 0, result
    assert str(Path(stack) / "hooks.sh") in result.output, result
    assert "syntax" in result.output.lower(), result
    assert not ran.exists()
    assert project_containers(docker_client, stack, all=True) == []


# --- the example stacks in stacks/ (read-only: --list and dry-runs only) ----------------------------

EXAMPLES = REPO_ROOT / "stacks"


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _example_secrets() -> list[str]:
    values = []
    for env_file in [EXAMPLES / ".env", *EXAMPLES.glob("*/.env")]:
        if env_file.is_file():
            for line in env_file.read_text().splitlines():
                key, sep, value = line.removeprefix("export ").partition("=")
                value = value.strip().strip("'\"")
                if sep and re.search("PASSWORD|SECRET|TOKEN", key, re.IGNORECASE) and len(value) >= 3:
                    values.append(value)
    return values


def test_example_stacks_are_listed_with_their_hooks():
    assert EXAMPLES.is_dir(), "stacks/ is missing"
    result = run_kompose("--list", root=EXAMPLES)
    assert result.code == 0, result
    for name in ("data", "sexy", "blog", "proxy"):
        assert any(re.search(rf"\b{name}\b", line) for line in result.stdout.splitlines()), f"{name}\n{result}"
    sexy = next(line for line in result.stdout.splitlines() if re.search(r"\bsexy\b", line))
    assert "export" in sexy and "import" in sexy, f"sexy's hooks (schema snapshot around export/import)\n{result}"


def test_example_dry_run_changes_no_file_and_hides_passwords(docker_client):
    before = _tree_state(EXAMPLES)
    secrets_ = _example_secrets()
    assert secrets_, "the example stacks define no password to check for"
    result = run_kompose("-n", "*", "up", "-d", root=EXAMPLES)
    assert result.code == 0, result
    assert all(s not in result.output for s in secrets_), "a password from stacks/ was printed"
    sexy = run_kompose("sexy", "up", "-d", "--dry-run", root=EXAMPLES)
    assert sexy.code == 0, sexy
    assert all(s not in sexy.output for s in secrets_), "a password from stacks/ was printed"
    assert _tree_state(EXAMPLES) == before, "a dry-run changed files under stacks/"
