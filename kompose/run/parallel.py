"""Running several stacks at once (--jobs N), each stack's output kept together.

Each running stack writes into its own buffer (memory up to 1 MiB, then a temporary
file, so a hook printing floods cannot grow kompose's memory); when the stack finishes,
its whole block is printed at once, in the order stacks finish. That reads the same at a
terminal and in a cron log: one block per stack, never interleaved lines. At a terminal
a status line says which stacks are running meanwhile.
"""

from __future__ import annotations

import tempfile
import threading
import time
from typing import Callable, Iterator

from kompose.console import Console
from kompose.plan.model import StackPlan

SPOOL_BYTES = 1 << 20
STATUS_SECONDS = 0.25


class BufferedConsole(Console):
    """A Console whose lines go into a buffer until ``flush_to`` prints them as one block.

    Lines are masked as they are written (the secrets are the parent's), so no secret
    reaches the temporary file either.
    """

    def __init__(self, parent: Console):
        buffer = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", encoding="utf-8", errors="replace")
        errors = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+", encoding="utf-8", errors="replace")
        super().__init__(out=buffer, err=errors, color=parent.color)  # errors: to the parent's stderr
        self.parent = parent
        self.secrets = parent.secrets
        self.is_terminal = False  # no progress lines inside a block

    def add_secrets(self, values) -> None:
        self.parent.add_secrets(values)
        self.secrets = self.parent.secrets

    @staticmethod
    def _chunks(spool) -> Iterator[str]:
        spool.seek(0)
        while True:
            chunk = spool.read(1 << 16)
            if not chunk:
                return
            yield chunk

    def flush_to_parent(self) -> None:
        """The stack's block on the parent's out, then its error lines on the parent's err."""
        self.parent.print_block(self._chunks(self.out))
        self.parent.print_block(self._chunks(self.err), stream=self.parent.err)
        self.out.close()
        self.err.close()


class PrefixedConsole(Console):
    """A Console whose lines go straight to the parent's, each prefixed with the stack's name
    (``blog | ``): for commands that never end by themselves (``logs -f`` over several stacks)."""

    def __init__(self, parent: Console, stack: str, width: int):
        super().__init__(out=parent.out, err=parent.err, color=parent.color)
        self.parent = parent
        self.secrets = parent.secrets
        self.is_terminal = False  # no progress lines between others' lines
        self.prefix = f"{stack:<{width}} | "

    def add_secrets(self, values) -> None:
        self.parent.add_secrets(values)
        self.secrets = self.parent.secrets

    def _write(self, stream, text: str) -> None:
        self.parent._write(stream, self.style(self.prefix, "dim") + text.lstrip(" "))


INTERRUPT_GRACE = 3.0  # seconds the interrupted stacks get to clean up after themselves


def _partials_of(stack_plan: StackPlan) -> list:
    """The partial files (and named pipes) a stack's steps write: never a final-named dump."""
    from kompose.dumps.files import PARTIAL_SUFFIX

    found = []
    for step in stack_plan.steps:
        for name in ("stdout_file", "output", "pipe"):
            path = getattr(step, name, None)
            if path is not None and str(path).endswith(PARTIAL_SUFFIX):
                found.append(path)
    return found


def run_parallel(
    ctx,
    stack_plans: list[StackPlan],
    jobs: int,
    run_one: Callable[[StackPlan, Console], object],
    streaming: bool = False,
) -> list:
    """Run ``run_one(stack_plan, console)`` for every stack, at most ``jobs`` at once. Returns the outcomes in plan order.

    ``streaming``: every stack's lines are printed as they come, prefixed with its name, instead
    of one block per stack (PrefixedConsole).

    Ctrl-C / SIGTERM (raised in the main thread): no new stack starts, the helper
    containers and process groups running now are stopped, the blocks of the stacks that
    were running are printed, then the interrupt goes on up.
    """
    from kompose.host import processes as execute
    from kompose.docker import helper as helper_container

    console = ctx.console
    results: list = [None] * len(stack_plans)
    pending = list(range(len(stack_plans)))
    running: dict[int, BufferedConsole] = {}
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def worker() -> None:
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                index = pending.pop(0)
                width = max(len(sp.stack) for sp in stack_plans)
                buffered = PrefixedConsole(console, stack_plans[index].stack, width) if streaming \
                    else BufferedConsole(console)
                running[index] = buffered
            stack_plan = stack_plans[index]
            try:
                buffered.stack_header(stack_plan.stack, stack_plan.command)
                results[index] = run_one(stack_plan, buffered)
            except BaseException as exc:  # a bug: re-raised in the main thread once the others are done
                failures.append(exc)
            finally:
                with lock:
                    running.pop(index, None)
                if not stop.is_set() and not streaming:
                    buffered.flush_to_parent()

    # daemon threads: an interrupted run must be able to exit while a stream is still open
    threads = [threading.Thread(target=worker, daemon=True, name=f"kompose-job-{n}") for n in range(min(jobs, len(stack_plans)))]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(STATUS_SECONDS)
                if thread.is_alive():
                    break
            with lock:
                names = [stack_plans[i].stack for i in sorted(running)]
            done = sum(r is not None for r in results)
            if names and not streaming:
                console.progress(f"running: {', '.join(names)} · {done} of {len(stack_plans)} done")
    except BaseException:
        stop.set()
        with lock:
            pending.clear()
            interrupted = list(running.values())
        helper_container.remove_live()
        execute.kill_live_groups()
        # the stacks still running clean up after themselves once their stream breaks; what
        # a worker did not get to in a few seconds, the files it was writing, goes here
        deadline = time.monotonic() + INTERRUPT_GRACE
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with lock:
            unfinished = [stack_plans[i] for i in running]
        for stack_plan in unfinished:
            for path in _partials_of(stack_plan):
                try:
                    path.unlink()
                except OSError:
                    pass
        for buffered in interrupted:
            if streaming:
                continue
            buffered.failure("interrupted")
            buffered.flush_to_parent()
        raise
    if failures:
        raise failures[0]
    return results
