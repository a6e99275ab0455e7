"""restic repositories: the argv of every restic call, built by pure functions, and what restic's
JSON says back.

kompose keeps one snapshot per dump: the dump and its manifest, backed up from the stack's
directory by their relative names (so they sit at the snapshot's root, whatever the
directory is called on the host that pulls them back), tagged so kompose finds a stack's
copies on any host: ``kompose``, ``stack:<stack>``, ``db:<database>``, ``time:<dump timestamp>``,
``sha256:<the dump's sha256>``, ``size:<bytes>`` and ``verified`` when the dump passed its checks before the push.

Secrets never travel in argv: the repository string goes in ``RESTIC_REPOSITORY``, the
password in ``RESTIC_PASSWORD`` / ``RESTIC_PASSWORD_FILE`` / ``RESTIC_PASSWORD_COMMAND``
and the backends' keys (``AWS_*``, ``B2_*``, …) in restic's environment, taken from the
stack's layered environment.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from kompose.env import mask_url_password
from kompose.errors import ConfigError, KomposeError

PROGRAM = "restic"
SETTING = "KOMPOSE_REPOSITORIES"
PASSWORD_KEYS = ("RESTIC_PASSWORD", "RESTIC_PASSWORD_FILE", "RESTIC_PASSWORD_COMMAND")
TAG = "kompose"
# a streamed dump (KOMPOSE_LOCAL_DUMPS=no) is written under PARTIAL_TAG, never TAG, until its checks
# passed and its manifest is in the repository (MANIFEST_TAG, a snapshot of its own): every filter
# kompose counts copies with starts with TAG, so a killed or failed stream is never counted
PARTIAL_TAG = "kompose-partial"
MANIFEST_TAG = "kompose-manifest"
VERIFIED_TAG = "verified"
TIME_FORMAT = "%Y%m%d_%H%M%S"  # the dump's own timestamp (dumps/files.py TIMESTAMP_FORMAT)
INSTALL_HINT = "restic is not installed; install it (Debian/Ubuntu: apt-get install restic) or set KOMPOSE_REPOSITORIES=off"

class RepositoryError(KomposeError):
    """A restic call failed: the message names the repository (masked) and restic's reason."""


class LockedError(RepositoryError):
    """restic could not lock the repository: another restic holds a lock, or a killed one left it
    (stale: ``restic unlock`` removes those, and only those)."""


LOCKED = "is already locked"


def locked(output: str) -> bool:
    """Whether restic failed because the repository is locked (by a live restic or a stale lock)."""
    return LOCKED in output


@dataclass(frozen=True)
class Repository:
    """One restic repository string, as configured. ``str()`` is the masked form."""

    url: str

    @property
    def masked(self) -> str:
        return mask(self.url)

    def __str__(self) -> str:
        return self.masked


def mask(url: str) -> str:
    """A repository string fit for printing: a password in it (rest:https://user:pw@host/) becomes ***."""
    return mask_url_password(url)


def parse_repositories(value: str | None) -> tuple[Repository, ...]:
    """KOMPOSE_REPOSITORIES: space-separated repository strings; empty, ``off``, ``no`` or ``none``: none."""
    words = (value or "").split()
    if not words or (len(words) == 1 and words[0].lower() in ("off", "no", "none", "false", "0")):
        return ()
    seen: dict[str, Repository] = {}
    for word in words:
        if word.lower() in ("off", "no", "none"):
            raise ConfigError(f"{SETTING}: {word!r} mixed with repositories; use it alone to turn copies off")
        seen.setdefault(word, Repository(word))
    return tuple(seen.values())


def repositories_of(env: Mapping[str, str]) -> tuple[Repository, ...]:
    """The stack's repositories. Raises ConfigError when some are set but no restic password is."""
    repositories = parse_repositories(env.get(SETTING))
    if repositories and not any(env.get(key) for key in PASSWORD_KEYS):
        raise ConfigError(f"{SETTING} is set but none of {', '.join(PASSWORD_KEYS)} is: restic needs the "
                          "repository password in the environment")
    return repositories


LOCAL_DUMPS = "KOMPOSE_LOCAL_DUMPS"


def local_dumps(env: Mapping[str, str]) -> bool:
    """KOMPOSE_LOCAL_DUMPS (default yes): no streams db:export's dump straight into the repositories."""
    value = env.get(LOCAL_DUMPS, "").strip().lower()
    if value in ("", "yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise ConfigError(f"{LOCAL_DUMPS}={value!r}: yes (a local dump, then copies) or no (streamed into the "
                      f"repositories, no local dump)")


def program() -> str:
    """The restic binary. Raises ConfigError saying how to install it when it is missing."""
    found = shutil.which(PROGRAM)
    if not found:
        raise ConfigError(INSTALL_HINT)
    return found


def environment(env: Mapping[str, str], repository: Repository) -> dict[str, str]:
    """restic's environment: the stack's layered environment (the password, the backends' keys,
    HOME for the cache and ssh), the repository in RESTIC_REPOSITORY (never argv)."""
    result = {k: v for k, v in env.items() if k not in ("RESTIC_REPOSITORY_FILE",)}
    result["RESTIC_REPOSITORY"] = repository.url
    return result


# -------------------------------------------------------------------- tags


def tag_value(kind: str, value: str) -> str:
    if "," in value or not value.strip():
        # restic splits a --tag on commas: such a name could not be found again
        raise ConfigError(f"{kind} {value!r} cannot be a restic tag (empty, or a comma in it)")
    return f"{kind}:{value}"


def stack_tags(stack: str, database: str | None = None) -> tuple[str, ...]:
    """The tags that select a stack's copies (of one database)."""
    tags = (TAG, tag_value("stack", stack))
    return tags + ((tag_value("db", database),) if database else ())


def dump_tags(stack: str, database: str, when: datetime, sha256: str, verified: bool,
              size: int | None = None) -> tuple[str, ...]:
    tags = stack_tags(stack, database) + (f"time:{when.strftime(TIME_FORMAT)}", f"sha256:{sha256}")
    tags += (f"size:{size}",) if size is not None else ()
    return tags + ((VERIFIED_TAG,) if verified else ())


# -------------------------------------------------------------------- argv


def _tag_flags(tags: Sequence[str]) -> tuple[str, ...]:
    """One --tag per tag for backup; for the filters, all in one --tag (restic: comma = and)."""
    return tuple(word for tag in tags for word in ("--tag", tag))


def init_argv() -> tuple[str, ...]:
    return (PROGRAM, "init")


def cat_config_argv() -> tuple[str, ...]:
    """Whether the repository exists and the password opens it (no lock taken)."""
    return (PROGRAM, "cat", "config", "--no-lock")


def backup_argv(files: Sequence[str], tags: Sequence[str]) -> tuple[str, ...]:
    """Back up ``files`` (names relative to the directory restic runs in) as one snapshot.

    ``--json``: one summary line carries the snapshot id. No --host: the tags find the copies,
    from any host.
    """
    return (PROGRAM, "backup", "--json", "--quiet", *_tag_flags(tags), "--", *files)


def snapshots_argv(tags: Sequence[str], *more: Sequence[str]) -> tuple[str, ...]:
    """The snapshots carrying every one of ``tags`` (or of any list in ``more``: restic ORs its
    --tag options), as JSON; no lock (safe beside a backup)."""
    return (PROGRAM, "snapshots", "--json", "--no-lock", *(w for t in (tags, *more) for w in ("--tag", ",".join(t))))


def all_kinds_tags(stack: str, database: str) -> tuple[tuple[str, ...], ...]:
    """The tag lists of a stack's database's copies, manifest snapshots and partial streams, for one listing."""
    base = stack_tags(stack, database)[1:]
    return tuple((tag, *base) for tag in (TAG, MANIFEST_TAG, PARTIAL_TAG))


def stdin_backup_argv(name: str, tags: Sequence[str]) -> tuple[str, ...]:
    """Back up stdin as the file ``name`` at the snapshot's root: a streamed dump, or its manifest."""
    return (PROGRAM, "backup", "--json", "--quiet", "--stdin", "--stdin-filename", name, *_tag_flags(tags))


def retag_argv(snapshot: str, add: Sequence[str], remove: Sequence[str]) -> tuple[str, ...]:
    """Add and remove tags of one snapshot (restic writes it anew, under a new id)."""
    return (PROGRAM, "tag", *(w for t in add for w in ("--add", t)), *(w for t in remove for w in ("--remove", t)),
            "--", snapshot)


def restore_argv(snapshot: str, target: str, files: Sequence[str]) -> tuple[str, ...]:
    """Restore ``files`` (names at the snapshot's root) of ``snapshot`` into the directory ``target``."""
    includes = tuple(word for name in files for word in ("--include", f"/{name}"))
    return (PROGRAM, "restore", snapshot, "--target", target, *includes)


def dump_argv(snapshot: str, name: str | None = None) -> tuple[str, ...]:
    """One file of ``snapshot`` on stdout; without ``name``, the whole snapshot as one tar stream."""
    return (PROGRAM, "dump", snapshot, f"/{name}" if name else "/")


def latest_dump_argv(tags: Sequence[str]) -> tuple[str, ...]:
    """The newest snapshot (restic's own time) carrying every one of ``tags``, as one tar stream."""
    return (PROGRAM, "dump", "--tag", ",".join(tags), "latest", "/")


def forget_argv(snapshots: Sequence[str], prune: bool = True) -> tuple[str, ...]:
    """Forget exactly these snapshots (kompose decided which: its retention rules and safety
    rules, not restic's grouping), then prune the data only they used."""
    if not snapshots:
        raise ValueError("forget_argv needs at least one snapshot")
    return (PROGRAM, "forget", *(("--prune",) if prune else ()), "--", *snapshots)


def check_argv(subset: str | None = None) -> tuple[str, ...]:
    """restic check; ``subset`` ("10%", "1/5", "100M") also reads that part of the data."""
    return (PROGRAM, "check", *((f"--read-data-subset={subset}",) if subset else ()))


def unlock_argv() -> tuple[str, ...]:
    """Remove stale locks only (a killed kompose's restic); live ones stay."""
    return (PROGRAM, "unlock")


# -------------------------------------------------------------- what restic says


@dataclass(frozen=True)
class Snapshot:
    """One of kompose's copies in a repository."""

    id: str
    short_id: str
    time: str  # when restic took it (ISO)
    stack: str
    database: str
    dump_time: datetime | None  # the dump's own timestamp (its name)
    sha256: str
    verified: bool
    paths: tuple[str, ...]
    size: int | None = None  # the dump's size in bytes (its size: tag)
    kind: str = "copy"  # "copy" (tagged kompose), "manifest" (kompose-manifest), "partial" (kompose-partial)
    manifest_snapshot: str | None = None  # a streamed copy's manifest lives in a snapshot of its own

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What pairs a streamed copy with its manifest snapshot."""
        return (self.stack, self.database, self.dump_time.strftime(TIME_FORMAT) if self.dump_time else "", self.sha256)

    @property
    def files(self) -> tuple[str, ...]:
        """The names at the snapshot's root (the dump, its manifest)."""
        return tuple(path.rsplit("/", 1)[-1] for path in self.paths)

    @property
    def dump_name(self) -> str | None:
        names = [name for name in self.files if not name.endswith(".json")]
        return names[0] if len(names) == 1 else None

    @property
    def manifest_name(self) -> str | None:
        dump = self.dump_name
        return f"{dump}.json" if dump and (f"{dump}.json" in self.files or self.manifest_snapshot) else None

    @property
    def sort_key(self) -> tuple:
        return (self.dump_time or datetime.min, self.time)


def _tag(tags: Iterable[str], kind: str) -> str:
    prefix = kind + ":"
    return next((t[len(prefix):] for t in tags if t.startswith(prefix)), "")


def parse_snapshots(text: str) -> list[Snapshot]:
    """``restic snapshots --json`` output (a JSON list, possibly among other lines), oldest first.

    Raises ValueError when no line is a JSON list.
    """
    data = None
    for line in text.splitlines():
        if line.startswith("["):
            data = json.loads(line)
            break
    if data is None:
        raise ValueError("no JSON list in restic's output")
    result = []
    for item in data:
        tags = item.get("tags") or []
        stamp = _tag(tags, "time")
        try:
            when = datetime.strptime(stamp, TIME_FORMAT) if stamp else None
        except ValueError:
            when = None
        result.append(Snapshot(
            id=item["id"], short_id=item.get("short_id") or item["id"][:8], time=item.get("time", ""),
            stack=_tag(tags, "stack"), database=_tag(tags, "db"), dump_time=when, sha256=_tag(tags, "sha256"),
            verified=VERIFIED_TAG in tags, paths=tuple(item.get("paths") or ()),
            size=int(_tag(tags, "size")) if _tag(tags, "size").isdigit() else None,
            kind="copy" if TAG in tags else "manifest" if MANIFEST_TAG in tags else "partial",
        ))
    return sorted(result, key=lambda s: s.sort_key)


def with_manifests(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The copies among ``snapshots`` (one listing of all_kinds_tags), each streamed one that has
    no manifest of its own paired with its manifest snapshot; manifests and partials are left out."""
    from dataclasses import replace

    manifests = {s.key: s.id for s in snapshots if s.kind == "manifest"}
    return [replace(s, manifest_snapshot=manifests.get(s.key)) if len(s.files) == 1 and s.key in manifests else s
            for s in snapshots if s.kind == "copy"]


def snapshot_id_of_backup(text: str) -> str | None:
    """The snapshot id in ``restic backup --json`` output (its summary line), or None."""
    for line in reversed(text.splitlines()):
        if line.startswith("{") and '"summary"' in line:
            try:
                return json.loads(line).get("snapshot_id")
            except ValueError:
                return None
    return None


def reason(output: str) -> str:
    """restic's reason for a failure, in one line: its ``Fatal:`` line, else the last line it wrote."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith(("{", "["))]
    for line in reversed(lines):
        if line.startswith("Fatal:"):
            return line[len("Fatal:"):].strip()
    for line in lines:  # its last line is only "the `unlock` command can be used to remove stale locks"
        if LOCKED in line:
            return line.removeprefix("unable to create lock in backend: ")
    return lines[-1] if lines else "no output"
