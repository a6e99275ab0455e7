"""The one output path: every byte kompose writes to the terminal goes through Console — masked
(secret values, in every form env.mask_text knows), copied to --log-file, colour on a terminal only.
Human lines go to ``out`` (stderr under --json), errors and warnings to ``err``, results (JSON,
crontab text) to ``data`` (always stdout)."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, TextIO

from kompose.env import mask_text

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}


class Console:
    """Writes kompose's own lines; masks secret values in anything it prints.

    One lock serialises writes so lines from parallel stacks never interleave mid-line.
    """

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, color: bool | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.data = sys.stdout
        self.is_terminal = hasattr(self.out, "isatty") and self.out.isatty()
        self.color = self.is_terminal if color is None else color
        self.secrets: list[str] = []
        self._lock = threading.Lock()
        self._progress_shown = False
        self.log: TextIO | None = None
        self.current_stack: str | None = None  # the stack of the last header, named in failure lines
        self.emitted = False  # a result went to stdout (under --json: the one JSON document)

    def open_log(self, path: Path, first_line: str) -> None:
        """Append every line printed from now on to ``path``, timestamped, without colour (for cron).

        Raises OSError when the file cannot be opened; its directory is made.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(path, "a", encoding="utf-8", errors="backslashreplace")
        self.log_line(first_line)

    def log_line(self, text: str) -> None:
        """Append one line (or several) to the log file, if there is one."""
        if self.log is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        plain = _ANSI.sub("", mask_text(text, self.secrets))
        self.log.write("".join(f"{stamp} [{os.getpid()}] {line}\n" for line in plain.splitlines() or [""]))
        self.log.flush()

    def add_secrets(self, values: Iterable[str]) -> None:
        merged = set(self.secrets) | set(values)
        self.secrets = sorted(merged, key=len, reverse=True)

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"

    def _write(self, stream: TextIO, text: str) -> None:
        with self._lock:
            if self._progress_shown:
                self._put(stream, "\r\033[K" if self.is_terminal else "")
                self._progress_shown = False
            self._put(stream, _printable(mask_text(text, self.secrets)) + "\n", flush=True)
            self.log_line(text)

    def _put(self, stream: TextIO, text: str, flush: bool = False) -> None:
        """Write to a terminal stream. A reader that went away (``kompose … | head``) never
        stops a run: the stream then goes to /dev/null, and the log says so once."""
        try:
            stream.write(text)
            if flush:
                stream.flush()
        except (BrokenPipeError, ConnectionResetError):
            _to_devnull(stream)
            self.log_line(f"({getattr(stream, 'name', 'output')} was closed by its reader; kompose goes on without it)")
        except ValueError:  # the stream object itself was closed
            pass

    def print_block(self, chunks: Iterable[str], stream: TextIO | None = None) -> None:
        """Write text that is already masked and line-terminated (a finished stack's buffered lines) in
        one go, on ``out`` unless ``stream`` says otherwise."""
        stream = stream or self.out
        with self._lock:
            if self._progress_shown:
                self._put(self.out, "\r\033[K" if self.is_terminal else "", flush=True)
                self._progress_shown = False
            for chunk in chunks:
                self._put(stream, chunk)
            self._put(stream, "", flush=True)

    def emit(self, text: str) -> None:
        """A result (crontab lines, a report) on stdout: masked, logged, never coloured."""
        self.emitted = True
        self._write(self.data, text)

    def emit_json(self, data) -> None:
        """One JSON document on stdout, secret values masked as in text (a token can reach a plan
        inside a value, e.g. a hook URL built from ${..._TOKEN})."""
        import json

        self.emitted = True
        self._write(self.data, json.dumps(data, indent=2))

    def print(self, text: str = "", *styles: str) -> None:
        self._write(self.out, self.style(text, *styles))

    def error(self, text: str) -> None:
        self._write(self.err, self.style("error: ", "red", "bold") + text)

    def warn(self, text: str) -> None:
        self._write(self.err, self.style("warning: ", "yellow", "bold") + text)

    def stack_header(self, stack: str, command: str) -> None:
        self.current_stack = stack
        self.print(self.style(f"▶ {stack}", "bold", "cyan") + self.style(f"  {command}", "dim"))

    def detail(self, text: str, *styles: str) -> None:
        """A line belonging to the current stack, indented under its header."""
        self.print("  " + self.style(text, *styles))

    def failure(self, text: str, *styles: str) -> None:
        """A '✗' line of the current stack (a step or a stack failed), indented under its header, on
        stderr: cron mails stderr, and a script reading stdout gets only results."""
        stack = self.current_stack
        named = f"{stack}: {text}" if stack and not text.startswith(f"{stack}:") else text  # stderr alone says which
        self._write(self.err, "  " + self.style(f"✗ {named}", *(styles or ("red",))))

    def stream_line(self, prefix: str, line: str) -> None:
        """A line of a hook's or compose's output, indented under its stack."""
        self.print("    " + (self.style(prefix, "dim") if prefix else "") + line)

    def shows_progress(self) -> bool:
        """Progress displays only on a terminal, and only when stdout is one too (never under a pipe,
        never into --json's stdout, never inside a --jobs block)."""
        data_tty = hasattr(self.data, "isatty") and self.data.isatty()
        return self.is_terminal and data_tty

    def transfer(self, what: str, total: int | None = None) -> NoBar:
        """A progress bar for a transfer of about ``total`` bytes: call it with each chunk's size, then
        close() it. Nothing is shown when shows_progress() says no."""
        if not self.shows_progress():
            return NoBar()
        return Bar(self, what, total)

    def stream_error_line(self, prefix: str, line: str) -> None:
        """A line a hook wrote to its stderr, indented under its stack, on stderr."""
        self._write(self.err, "    " + (self.style(prefix, "dim") if prefix else "") + line)

    def progress(self, text: str) -> None:
        """A line that rewrites itself on a terminal; nothing when not a terminal."""
        if not self.is_terminal:
            return
        with self._lock:
            self._put(self.out, "\r\033[K  " + self.style(text, "dim"), flush=True)
            self._progress_shown = True


class NoBar:
    """The progress of a transfer where nothing is shown (not a terminal, --json, a --jobs block).
    False in a boolean context; a Bar (its subclass) is True."""

    def __call__(self, count: int) -> None:
        pass

    def __bool__(self) -> bool:
        return type(self) is not NoBar

    def close(self) -> None:
        pass


class Bar(NoBar):
    """A progress bar on the terminal (rich): what, bar, percent, bytes of the estimated total, rate,
    time left. ``total`` None: no percent or time left, bytes and rate only. Transient: gone when
    the transfer ends, and the step's own line says what it did."""

    REFRESH_SECONDS = 0.1

    def __init__(self, console: "Console", what: str, total: int | None):
        from rich.console import Console as RichConsole
        from rich.progress import (
            BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = console
        self.total = total if total and total > 0 else None
        screen = RichConsole(file=console.out, force_terminal=True, no_color=not console.color, highlight=False)
        self.progress = Progress(
            TextColumn("  {task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=screen, transient=True, auto_refresh=False,
            redirect_stdout=False, redirect_stderr=False,
        )
        self.task = self.progress.add_task(what, total=self.total)
        self.done = 0
        self._last = 0.0
        self.progress.start()

    def __call__(self, count: int) -> None:
        self.done += count
        if self.total and self.done > self.total:  # the estimate was low: keep the bar short of 100 %
            self.total = int(self.done * 1.1)
            self.progress.update(self.task, total=self.total)
        self.progress.update(self.task, completed=self.done)
        now = time.monotonic()
        if now - self._last >= self.REFRESH_SECONDS:
            self._last = now
            self._refresh()

    def _refresh(self) -> None:
        with self.console._lock:
            self.progress.refresh()
            self.console._progress_shown = True  # a line printed meanwhile clears the bar first

    def close(self) -> None:
        self._refresh()
        with self.console._lock:
            self.progress.stop()
            self.console._progress_shown = False


def _to_devnull(stream: TextIO) -> None:
    """Point a stream whose reader is gone at /dev/null (so later writes, and Python's own
    flush at exit, do not fail again)."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError, AttributeError):
        return
    try:
        stream.flush()  # what was buffered goes to /dev/null now
    except (OSError, ValueError):
        pass


def _printable(text: str) -> str:
    """``text`` as any stream can write it: bytes that were not UTF-8 (a directory name) shown escaped."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class Rate:
    """Bytes and rate of a running transfer, throttled to a few updates a second."""

    def __init__(self):
        self.start = time.monotonic()
        self.bytes = 0
        self._last = 0.0

    def add(self, count: int) -> bool:
        self.bytes += count
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            return True
        return False

    def text(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        return f"{human_size(self.bytes)}  {human_size(self.bytes / elapsed)}/s"
