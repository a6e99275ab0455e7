"""Layered environment: process env < root .env < stack .env < -e; which keys are secret."""

from __future__ import annotations

import functools
import io
import json
import re
import shlex
from pathlib import Path
from typing import Iterable, Mapping

from dotenv.parser import parse_stream
from dotenv.variables import parse_variables

from kompose.errors import ConfigError

# KOMPOSE_NOTIFY (apprise URLs carry tokens) and KOMPOSE_PING_URL* (the check's id is its
# secret) too, and MYSQL_PWD (the MariaDB/MySQL clients read the password from it); \b keeps
# KOMPOSE_NOTIFY_ON and KOMPOSE_NOTIFY_TIMEOUT plain settings
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|PASSPHRASE|PRIVATE_KEY|API_KEY|\bKOMPOSE_NOTIFY\b|KOMPOSE_PING_URL|MYSQL_PWD",
                        re.IGNORECASE)
# restic's variables and its backends' credentials (restic reads them from its environment):
# secrets, but for the few restic settings that are plainly not
_BACKEND_KEY = re.compile(r"(?:RESTIC|AWS|B2|AZURE|GOOGLE)_|ST_KEY$")
_NOT_SECRET = frozenset({"RESTIC_COMPRESSION", "RESTIC_PACK_SIZE", "RESTIC_CACHE_DIR", "RESTIC_PROGRESS_FPS",
                         "RESTIC_READ_CONCURRENCY", "RESTIC_HOST", "RESTIC_REPOSITORY", "RESTIC_REPOSITORY_FILE"})
# the repository strings kompose hands to restic (and restic's own, which a .env written for restic
# by hand may set to the same path); a password in one (rest:https://user:pw@host/) is masked in
# free text, the rest of the string is not a secret: masked whole, a repository path that equals
# RESTIC_REPOSITORY turned every line naming the repository into ***
REPOSITORY_KEYS = ("KOMPOSE_REPOSITORIES", "RESTIC_REPOSITORY")
_URL_PASSWORD = re.compile(r"://[^/@:\s]*:([^@/\s]+)@")
MASK = "***"
# secret values shorter than this are not masked inside free text (a one-letter
# "password" would turn every line into stars and tell an onlooker its length)
MIN_MASKED_LENGTH = 3


@functools.lru_cache(maxsize=4096)  # the same keys come back for every stack
def is_secret(key: str) -> bool:
    return bool(SECRET_KEY.search(key)) or (bool(_BACKEND_KEY.match(key)) and key not in _NOT_SECRET)


def read_env_file(path: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Parse one .env file with python-dotenv's grammar.

    ``${VAR}`` references resolve against ``base`` (the layers below) and the
    file's own earlier keys. Returns only the keys the file sets.
    Raises ConfigError naming ``path:line`` for a line dotenv cannot parse,
    and for a file that is not UTF-8 text.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError(f"{path}:{line}: contains a NUL byte")

    values: dict[str, str] = {}
    scope = dict(base)
    bindings = _simple_bindings(text)
    for key, value, literal in bindings if bindings is not None else _dotenv_bindings(path, text):
        if not literal:
            value = "".join(atom.resolve(scope) for atom in parse_variables(value))
        values[key] = value
        scope[key] = value
    return values


# One line of the shape nearly every .env file is made of, whose meaning under dotenv's
# grammar is plain: KEY=value, KEY='value', KEY="value" (no backslash), an optional
# `export `, a trailing `# comment`. Lexing 200 stacks' files with dotenv's general
# parser is most of what --list costs; a file with any other line goes through dotenv whole.
_SIMPLE_LINE = re.compile(
    r"[ \t]*(?>(?:export[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*"
    r"(?:'(?P<single>[^'\\\n]*)'(?:[ \t]*#.*)?"
    r"|\"(?P<double>[^\"\\\n]*)\"(?:[ \t]*#.*)?"
    r"|(?P<bare>[^\s'\"#\\][^\s#\\]*)(?:[ \t]+#.*)?"
    r"|(?:[ \t]+#.*)?)"
    r"[ \t]*"
)
_BLANK_OR_COMMENT = re.compile(r"[ \t]*(?:#.*)?")


def _simple_bindings(text: str) -> list[tuple[str, str, bool]] | None:
    """(key, value, literal) of every binding when each line is blank, a comment or a
    simple binding (see _SIMPLE_LINE); None when dotenv has to read the file."""
    if "\r" in text or text.startswith("\ufeff"):
        return None
    bindings = []
    for line in text.split("\n"):
        match = _SIMPLE_LINE.fullmatch(line)
        if match is None:
            if _BLANK_OR_COMMENT.fullmatch(line):
                continue
            return None
        single = match["single"]
        value = single if single is not None else match["double"] if match["double"] is not None else match["bare"] or ""
        bindings.append((match["key"], value, single is not None))
    return bindings


def _dotenv_bindings(path: Path, text: str):
    """(key, value, literal) per binding, by python-dotenv's parser; ConfigError naming the line it cannot parse."""
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # name the key, never the value: the line may be a password with a stray quote
            key = _KEY_OF_LINE.match(binding.original.string)
            what = f"the value of {key['key']}" if key else "this line"
            raise ConfigError(f"{path}:{_line_of(binding)}: cannot parse {what} "
                              "(an unclosed quote or a stray character?)")
        if binding.key is None:
            continue  # comment or blank line
        if binding.value is None:
            # a word on its own line: a key without '=' (or a value broken off its line: never shown)
            what = repr(binding.key) if _KEY_NAME.fullmatch(binding.key) else "a word"
            raise ConfigError(f"{path}:{_line_of(binding)}: {what} has no '=' and no value")
        raw_quote = binding.original.string.split("=", 1)[1].lstrip()[:1] if "=" in binding.original.string else ""
        # single quotes: literal, as in shells and compose
        yield binding.key, binding.value, raw_quote == "'"


_KEY_OF_LINE = re.compile(r"\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)\s*=")
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _line_of(binding) -> int:
    """The line a binding's text starts on: dotenv counts from the blank lines it skipped before it."""
    original = binding.original
    skipped = original.string[: len(original.string) - len(original.string.lstrip())]
    return original.line + skipped.count("\n")


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """Parse ``-e KEY=VALUE`` options. Raises UsageError for one without '='."""
    result: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"-e {item!r}: expected KEY=VALUE")
        result[key] = value
    return result


def layer(process_env: Mapping[str, str], files: Iterable[Path], overrides: Mapping[str, str]) -> dict[str, str]:
    """Merge the layers, lowest first: the process environment, each existing file, the overrides."""
    env = dict(process_env)
    for path in files:
        if path.is_file():
            env.update(read_env_file(path, env))
    env.update(overrides)
    return env


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every form of the values of secret keys worth masking in free text, longest first (see secret_forms);
    and the passwords inside repository strings (KOMPOSE_REPOSITORIES), which are not secrets as a whole."""
    values: set[str] = set()
    for key, value in env.items():
        if is_secret(key):
            values.update(secret_forms(value))
    for key in REPOSITORY_KEYS:
        for password in _URL_PASSWORD.findall(env.get(key, "")):
            values.update(secret_forms(password))
    return sorted(values, key=len, reverse=True)


def mask_url_password(text: str) -> str:
    """``rest:https://user:pw@host/`` -> ``rest:https://user:***@host/`` (any URL in ``text``)."""
    return _URL_PASSWORD.sub(lambda m: m.group(0).replace(f":{m.group(1)}@", f":{MASK}@"), text)


def secret_forms(value: str) -> set[str]:
    """The forms a secret takes in text kompose prints: the value itself and compose config's
    ``$$`` doubling, each also shell-quoted (plans show argv with shlex), JSON- and
    Python-escaped (--json, reprs in messages) and YAML single-quoted (''); and each line of
    a multi-line value (a PEM key printed line by line). Forms shorter than
    MIN_MASKED_LENGTH are left out."""
    if len(value) < MIN_MASKED_LENGTH:
        return set()
    forms: set[str] = set()
    lines = [line.strip() for line in value.splitlines()] if ("\n" in value or "\r" in value) else []
    for base in {value, value.replace("$", "$$"), *lines, *(line.replace("$", "$$") for line in lines)}:
        forms |= {base, shlex.quote(base), json.dumps(base)[1:-1], json.dumps(base, ensure_ascii=False)[1:-1],
                  repr(base)[1:-1], base.replace("'", "''")}
    return {form for form in forms if len(form.strip()) >= MIN_MASKED_LENGTH}


def mask_text(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy fit for printing: secret keys' values replaced by ***."""
    return {k: (MASK if is_secret(k) else v) for k, v in env.items()}


def mask_url(url: str) -> str:
    """A URL fit for printing: a password in it is replaced by ***."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unreadable (a broken IPv6 literal): shown only when it cannot hold a password
        return url if "@" not in url else "<a URL with user information>"
    if password:
        return parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@", 1)).geturl()
    return url


# the KOMPOSE_* settings a .env may set, for "did you mean" on a misspelt one (KOMPOSE_KEEP_DALY).
# A room adding a setting adds it here; families below are checked by their own parsers.
KNOWN_SETTINGS = frozenset({
    "KOMPOSE_ROOT", "KOMPOSE_CRON_FILE", "KOMPOSE_DB_CONTAINER", "KOMPOSE_DUMP_DIR", "KOMPOSE_LOCAL_DUMPS",
    "KOMPOSE_EXPORT_FORMAT", "KOMPOSE_EXPORT_COMPRESS", "KOMPOSE_KEEP_LAST", "KOMPOSE_KEEP_DAILY",
    "KOMPOSE_KEEP_WEEKLY", "KOMPOSE_KEEP_MONTHLY", "KOMPOSE_HOOK_TIMEOUT", "KOMPOSE_POST_POLICY",
    "KOMPOSE_SCHEDULE_GRACE", "KOMPOSE_SCHEDULE_DB_EXPORT", "KOMPOSE_SCHEDULE_DB_CLEANUP", "KOMPOSE_SCHEDULE_DB_DRILL",
    "KOMPOSE_SCHEDULE_DB_VERIFY", "KOMPOSE_LOCK_WAIT", "KOMPOSE_SWAP_LOCK_TIMEOUT", "KOMPOSE_METRICS_FILE",
    "KOMPOSE_NOTIFY", "KOMPOSE_NOTIFY_ON", "KOMPOSE_NOTIFY_TIMEOUT", "KOMPOSE_PING_URL", "KOMPOSE_REPOSITORIES",
    "KOMPOSE_REPOSITORY_CHECK_SUBSET", "KOMPOSE_TOOLS_IMAGE",
})
CHECKED_FAMILIES = ("KOMPOSE_HOOK_", "KOMPOSE_SCHEDULE_", "KOMPOSE_PING_URL_", "KOMPOSE_NOTIFY_", "KOMPOSE_REPOSITORY_",
                    "KOMPOSE_RESTIC_", "KOMPOSE_MARIADB_", "KOMPOSE_METRICS_")


def misspelt_setting(key: str) -> str | None:
    """The known KOMPOSE_* setting ``key`` is a near miss of (KOMPOSE_KEEP_DALY -> KOMPOSE_KEEP_DAILY),
    or None: a known key, one of a family its parser checks, or nothing close."""
    if not key.startswith("KOMPOSE_") or key in KNOWN_SETTINGS:
        return None
    import difflib

    close = difflib.get_close_matches(key, sorted(KNOWN_SETTINGS), n=1, cutoff=0.85)
    if not close:
        return None
    if key.startswith(CHECKED_FAMILIES) and key.startswith(close[0].rsplit("_", 1)[0] + "_"):
        return None  # KOMPOSE_SCHEDULE_DB_RESTORE: the schedule parser says what is wrong with it
    return close[0]
