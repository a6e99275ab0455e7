"""KOMPOSE_METRICS_FILE: a Prometheus textfile (node_exporter's textfile collector), rewritten after every run.

Per stack and operation (labels ``stack``, ``operation``) the five gauges below; per
repository the age of its newest copy. A run that selects only some stacks keeps the other
series: the old file is parsed with prometheus-client's own text parser and merged. The file
is replaced atomically (prometheus-client's write_to_textfile: a temporary file, then a
rename) under a lock, so two runs finishing together do not lose each other's series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

RUN = "kompose_last_run_timestamp_seconds"
SUCCESS = "kompose_last_success_timestamp_seconds"
DURATION = "kompose_last_duration_seconds"
DUMP_BYTES = "kompose_last_dump_bytes"
EXIT_CODE = "kompose_last_exit_code"
REPOSITORY_AGE = "kompose_repository_newest_copy_age_seconds"

HELP = {
    RUN: "When kompose last ran this operation for this stack (its end, Unix time).",
    SUCCESS: "When this operation last succeeded for this stack (Unix time).",
    DURATION: "How long the last run of this operation took for this stack, in seconds.",
    DUMP_BYTES: "Size of the dump the last successful db:export wrote, in bytes.",
    EXIT_CODE: "0 when the last run of this operation succeeded for this stack, 1 when it failed.",
    REPOSITORY_AGE: "Age of the newest copy in the repository, in seconds, when kompose last looked.",
}
STACK_LABELS = ("stack", "operation")
REPOSITORY_LABELS = ("repository",)
LABELS = {name: STACK_LABELS for name in (RUN, SUCCESS, DURATION, DUMP_BYTES, EXIT_CODE)}
LABELS[REPOSITORY_AGE] = REPOSITORY_LABELS

Series = dict[str, dict[tuple[str, ...], float]]  # metric -> label values -> value


@dataclass(frozen=True)
class Result:
    """One stack's operation in this run (skipped stacks have none: they did not run)."""

    stack: str
    operation: str
    ok: bool
    finished: float  # Unix time
    duration: float
    dump_bytes: int | None = None


def read(text: str) -> Series:
    """kompose's series from a textfile; other metrics in it are dropped. Raises ValueError when
    prometheus-client's parser cannot read it."""
    from prometheus_client.parser import text_string_to_metric_families

    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = LABELS.get(sample.name)
            if labels is None:
                continue
            series.setdefault(sample.name, {})[tuple(sample.labels.get(k, "") for k in labels)] = sample.value
    return series


def merge(old: Series, results: Iterable[Result], repositories: Mapping[str, float] | None = None) -> Series:
    """The old series with this run's results (and repository ages) laid over them."""
    series: Series = {name: dict(values) for name, values in old.items()}

    def put(name: str, key: tuple[str, ...], value: float) -> None:
        series.setdefault(name, {})[key] = float(value)

    for r in results:
        key = (r.stack, r.operation)
        put(RUN, key, r.finished)
        put(DURATION, key, r.duration)
        put(EXIT_CODE, key, 0 if r.ok else 1)
        if r.ok:
            put(SUCCESS, key, r.finished)
            if r.dump_bytes is not None:
                put(DUMP_BYTES, key, r.dump_bytes)
    for repository, age in (repositories or {}).items():
        put(REPOSITORY_AGE, (repository,), age)
    return series


def write(path: Path, results: Iterable[Result], repositories: Mapping[str, float] | None = None,
          lock_timeout: float = 10.0) -> str | None:
    """Merge this run into ``path`` and replace it atomically. Returns a warning (the old file
    could not be read and was replaced) or None. Raises OSError when it cannot be written."""
    from filelock import FileLock, Timeout
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    warning = None
    if not path.parent.is_dir():
        raise OSError(f"{path.parent} is not a directory")
    try:
        with FileLock(str(path) + ".lock", timeout=lock_timeout):
            try:
                old = read(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                old = {}
            except (ValueError, UnicodeDecodeError) as exc:
                old = {}
                warning = f"{path}: could not be parsed ({_short(exc)}); rewritten with this run's series only"
            series = merge(old, results, repositories)
            registry = CollectorRegistry(auto_describe=True)
            for name in HELP:
                if not series.get(name):
                    continue
                gauge = Gauge(name, HELP[name], LABELS[name], registry=registry)
                for key, value in sorted(series[name].items()):
                    gauge.labels(*key).set(value)
            write_to_textfile(str(path), registry)
    except Timeout:
        raise OSError(f"another run holds {path}.lock") from None
    return warning


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:120]
