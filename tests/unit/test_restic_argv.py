"""restic's argv, tags and output parsing: pure functions, no mocks, no restic."""

import json
from datetime import datetime

import pytest

from kompose.env import is_secret, mask_text, secret_values
from kompose.errors import ConfigError
from kompose.repositories import restic
from kompose.repositories.restic import Repository


def test_init_and_check_argv():
    assert restic.init_argv() == ("restic", "init")
    assert restic.check_argv() == ("restic", "check")
    assert restic.check_argv("10%") == ("restic", "check", "--read-data-subset=10%")


def test_backup_argv_gives_each_tag_its_own_flag_and_the_files_after_a_double_dash():
    argv = restic.backup_argv(["db_20261201_101010.sql", "db_20261201_101010.sql.json"], ("kompose", "stack:s"))
    assert argv == ("restic", "backup", "--json", "--quiet", "--tag", "kompose", "--tag", "stack:s", "--",
                    "db_20261201_101010.sql", "db_20261201_101010.sql.json")


def test_snapshots_argv_filters_by_all_tags_at_once_without_a_lock():
    assert restic.snapshots_argv(("kompose", "stack:s", "db:d")) == (
        "restic", "snapshots", "--json", "--no-lock", "--tag", "kompose,stack:s,db:d")


def test_restore_dump_forget_argv():
    assert restic.restore_argv("abc", "/t", ["a.sql", "a.sql.json"]) == (
        "restic", "restore", "abc", "--target", "/t", "--include", "/a.sql", "--include", "/a.sql.json")
    assert restic.dump_argv("abc", "a.sql") == ("restic", "dump", "abc", "/a.sql")
    assert restic.forget_argv(["a", "b"]) == ("restic", "forget", "--prune", "--", "a", "b")
    assert restic.forget_argv(["a"], prune=False) == ("restic", "forget", "--", "a")
    with pytest.raises(ValueError):
        restic.forget_argv([])  # "forget nothing" must never become "forget by policy"


def test_no_argv_carries_the_repository_or_a_password():
    env = {"RESTIC_PASSWORD": "canary-pw", "KOMPOSE_REPOSITORIES": "rest:http://u:urlpw@h/r"}
    repo = restic.parse_repositories(env["KOMPOSE_REPOSITORIES"])[0]
    child = restic.environment(env, repo)
    assert child["RESTIC_REPOSITORY"] == "rest:http://u:urlpw@h/r"
    assert child["RESTIC_PASSWORD"] == "canary-pw"
    for argv in (restic.init_argv(), restic.backup_argv(["x"], ["kompose"]), restic.snapshots_argv(["kompose"]),
                 restic.restore_argv("id", "/t", ["x"]), restic.forget_argv(["id"]), restic.check_argv("1%")):
        assert not any("canary" in word or "urlpw" in word or "rest:" in word for word in argv)


def test_tags_of_a_dump():
    tags = restic.dump_tags("blog", "blogdb", datetime(2026, 12, 1, 10, 10, 10), "ab" * 32, verified=True, size=7)
    assert tags == ("kompose", "stack:blog", "db:blogdb", "time:20261201_101010", "sha256:" + "ab" * 32, "size:7",
                    "verified")
    assert restic.stack_tags("blog") == ("kompose", "stack:blog")
    with pytest.raises(ConfigError):
        restic.stack_tags("a,b")  # restic would split it into two tags


@pytest.mark.parametrize("value, expected", [
    ("", ()), ("off", ()), ("OFF", ()), ("  ", ()),
    ("/srv/restic", ("/srv/restic",)),
    ("/a sftp:h:/b /a", ("/a", "sftp:h:/b")),
])
def test_parse_repositories(value, expected):
    assert tuple(r.url for r in restic.parse_repositories(value)) == expected


def test_off_mixed_with_repositories_is_an_error():
    with pytest.raises(ConfigError):
        restic.parse_repositories("/a off")


def test_repositories_without_a_password_are_a_configuration_error():
    with pytest.raises(ConfigError, match="RESTIC_PASSWORD"):
        restic.repositories_of({"KOMPOSE_REPOSITORIES": "/a"})
    assert restic.repositories_of({"KOMPOSE_REPOSITORIES": "/a", "RESTIC_PASSWORD_FILE": "/k"})[0].url == "/a"


@pytest.mark.parametrize("url, shown", [
    ("rest:https://user:s3cret@host:8000/repo", "rest:https://user:***@host:8000/repo"),
    ("s3:http://key:secret@minio/bucket", "s3:http://key:***@minio/bucket"),
    ("rest:https://host/repo", "rest:https://host/repo"),
    ("sftp:backup@host:/srv/restic", "sftp:backup@host:/srv/restic"),
    ("/srv/restic", "/srv/restic"),
])
def test_repository_strings_are_masked(url, shown):
    assert str(Repository(url)) == shown == restic.mask(url)


def test_url_passwords_and_backend_keys_are_secrets():
    env = {"KOMPOSE_REPOSITORIES": "/local rest:https://u:hunter22@h/r", "AWS_ACCESS_KEY_ID": "AKIAXYZ",
           "RESTIC_PASSWORD": "pw-123", "RESTIC_COMPRESSION": "auto", "B2_ACCOUNT_ID": "b2id"}
    values = secret_values(env)
    assert "hunter22" in values and "AKIAXYZ" in values and "pw-123" in values and "b2id" in values
    assert "auto" not in values and "/local" not in values
    assert is_secret("AWS_ACCESS_KEY_ID") and not is_secret("KOMPOSE_REPOSITORIES")
    assert mask_text("to rest:https://u:hunter22@h/r", values) == "to rest:https://u:***@h/r"


def test_a_repository_path_that_equals_restic_repository_is_not_masked_its_url_password_is():
    """RESTIC_REPOSITORY (a .env written for restic by hand) is a repository string like
    KOMPOSE_REPOSITORIES: only a password in it is a secret (it once masked the repository path in
    every line that named it)."""
    values = secret_values({"KOMPOSE_REPOSITORIES": "/srv/restic", "RESTIC_REPOSITORY": "/srv/restic",
                            "RESTIC_REPOSITORY_FILE": "/etc/restic-repo", "RESTIC_PASSWORD": "pw-123"})
    assert "/srv/restic" not in values and "/etc/restic-repo" not in values and "pw-123" in values
    assert mask_text("copying a.sql to /srv/restic", values) == "copying a.sql to /srv/restic"
    values = secret_values({"RESTIC_REPOSITORY": "rest:https://u:hunter22@h/r"})
    assert mask_text("to rest:https://u:hunter22@h/r", values) == "to rest:https://u:***@h/r"


SNAPSHOTS = (
    '[{"time":"2026-12-01T16:16:57.18Z","paths":["/x/a_20261201_101010.sql","/x/a_20261201_101010.sql.json"],'
    '"tags":["kompose","stack:s1","db:a","time:20261201_101010","sha256:abc","size:42","verified"],"id":"a9bf3e03aa","short_id":"a9bf3e03"},'
    '{"time":"2026-11-30T16:16:57.18Z","paths":["/x/a_20261130_101010.sql"],'
    '"tags":["kompose","stack:s1","db:a","time:20261130_101010","sha256:def"],"id":"bbbbbbbbbb","short_id":"bbbbbbbb"}]'
)


def test_parse_snapshots_oldest_first_with_what_the_tags_say():
    older, newer = restic.parse_snapshots("a warning line\n" + SNAPSHOTS + "\n")
    assert newer.short_id == "a9bf3e03" and newer.sha256 == "abc" and newer.verified and newer.size == 42
    assert older.size is None
    assert newer.dump_time == datetime(2026, 12, 1, 10, 10, 10)
    assert newer.dump_name == "a_20261201_101010.sql" and newer.manifest_name == "a_20261201_101010.sql.json"
    assert not older.verified and older.manifest_name is None
    assert restic.parse_snapshots("[]") == []
    with pytest.raises(ValueError):
        restic.parse_snapshots("Fatal: wrong password or no key found")


def test_backup_summary_and_failure_reason():
    out = '{"message_type":"status"}\n{"message_type":"summary","snapshot_id":"a9bf3e03"}\n'
    assert restic.snapshot_id_of_backup(out) == "a9bf3e03"
    assert restic.snapshot_id_of_backup("") is None
    assert restic.reason("subprocess ssh: refused\nFatal: unable to open repository at sftp:h:/x: EOF\n") == \
        "unable to open repository at sftp:h:/x: EOF"
    assert restic.reason("something odd\n") == "something odd"


# --- the repository steps in plans: every repository shown, masked -----------------------


def test_repository_steps_render_masked_in_text_and_json(tmp_path):
    from kompose.dumps.retention import Policy
    from kompose.plan.model import Plan, StackPlan
    from kompose.plan.render import render_json, render_text
    from kompose.run.repository_steps import CopiesDone, ForgetCopies, PullCopy, PushCopy

    url = "rest:https://kompose:Very-Secret-1@backup.example/r"
    dump = tmp_path / "app_20261201_101010.sql"
    stack = StackPlan(stack="s", directory=tmp_path, command="db:export")
    policy = Policy(last=2)
    stack.steps += [PushCopy(url, dump, "s", "app"), PushCopy("/srv/restic", dump, "s", "app"), CopiesDone(),
                    PullCopy((url, "/srv/restic"), tmp_path, "s", "app"),
                    ForgetCopies(url, "s", "app", str(policy), policy.counts())]
    plan = Plan("db:export", [stack])
    text, data = render_text(plan), render_json(plan)
    assert "Very-Secret-1" not in text and "Very-Secret-1" not in data
    assert "-> rest:https://kompose:***@backup.example/r (restic backup" in text
    assert "-> /srv/restic (restic backup" in text
    assert "from rest:https://kompose:***@backup.example/r, /srv/restic" in text
    assert "policy keep-last 2" in text
    steps = json.loads(data)["stacks"][0]["steps"]
    assert [s["kind"] for s in steps] == ["copy", "copy", "check", "pull", "forget"]
    assert steps[0]["repository"] == "rest:https://kompose:***@backup.example/r"
    assert steps[3]["repositories"] == ["rest:https://kompose:***@backup.example/r", "/srv/restic"]
    assert ForgetCopies(url, "s", "app", str(policy), policy.counts()).retention_policy() == policy


def test_one_listing_covers_copies_manifest_snapshots_and_partial_streams():
    argv = restic.snapshots_argv(*restic.all_kinds_tags("s", "d"))
    assert argv == ("restic", "snapshots", "--json", "--no-lock", "--tag", "kompose,stack:s,db:d",
                    "--tag", "kompose-manifest,stack:s,db:d", "--tag", "kompose-partial,stack:s,db:d")


def test_stream_argv_reads_stdin_and_retag_swaps_the_partial_tag():
    assert restic.stdin_backup_argv("d_20261201_101010.sql", ("kompose-partial", "stack:s")) == (
        "restic", "backup", "--json", "--quiet", "--stdin", "--stdin-filename", "d_20261201_101010.sql",
        "--tag", "kompose-partial", "--tag", "stack:s")
    assert restic.retag_argv("abc", ("kompose", "verified"), ("kompose-partial",)) == (
        "restic", "tag", "--add", "kompose", "--add", "verified", "--remove", "kompose-partial", "--", "abc")
    assert restic.dump_argv("abc") == ("restic", "dump", "abc", "/")
    assert restic.latest_dump_argv(("kompose", "stack:s")) == ("restic", "dump", "--tag", "kompose,stack:s",
                                                               "latest", "/")


def _snap(id_, tags, paths):
    return {"id": id_ * 8, "short_id": id_, "time": f"2026-12-01T10:00:0{len(id_)}Z", "tags": tags, "paths": paths}


def test_streamed_copies_are_paired_with_their_manifest_snapshot_and_partials_never_count():
    base = ["stack:s", "db:d", "time:20261201_101010"]
    text = json.dumps([
        _snap("a", ["kompose", *base, "sha256:x", "verified"], ["/d_20261201_101010.sql"]),
        _snap("bb", ["kompose-manifest", *base, "sha256:x"], ["/d_20261201_101010.sql.json"]),
        _snap("ccc", ["kompose-partial", *base], ["/d_20261201_101010.sql"]),
        _snap("dddd", ["kompose-manifest", "stack:s", "db:d", "time:20261201_111111", "sha256:y"], ["/o.sql.json"]),
    ])
    [copy] = restic.with_manifests(restic.parse_snapshots(text))
    assert copy.short_id == "a" and copy.manifest_snapshot == "bb" * 8
    assert copy.manifest_name == "d_20261201_101010.sql.json" and copy.dump_name == "d_20261201_101010.sql"
    kinds = [s.kind for s in restic.parse_snapshots(text)]
    assert sorted(kinds) == ["copy", "manifest", "manifest", "partial"]


def test_local_dumps_setting():
    assert restic.local_dumps({}) and restic.local_dumps({"KOMPOSE_LOCAL_DUMPS": "yes"})
    assert not restic.local_dumps({"KOMPOSE_LOCAL_DUMPS": "no"})
    with pytest.raises(ConfigError, match="KOMPOSE_LOCAL_DUMPS"):
        restic.local_dumps({"KOMPOSE_LOCAL_DUMPS": "maybe"})


def test_a_locked_repository_is_told_apart_and_its_reason_names_the_lock():
    output = ("unable to create lock in backend: repository is already locked exclusively by PID 20823 on vm by root "
              "(UID 0, GID 0)\nlock was created at 2026-12-01 23:25:46 (2.17s ago)\nstorage ID ad16aac0\n"
              "the `unlock` command can be used to remove stale locks\n")
    assert restic.locked(output) and not restic.locked("Fatal: wrong password or no key found\n")
    assert restic.reason(output) == "repository is already locked exclusively by PID 20823 on vm by root (UID 0, GID 0)"
