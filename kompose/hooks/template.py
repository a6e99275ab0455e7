"""`kompose init STACK`: a commented hooks.sh with every hook point and what each one is told."""

from __future__ import annotations

from pathlib import Path

from kompose.errors import UsageError

TEMPLATE = r"""# hooks.sh of stack {stack} — written by `kompose init {stack}`.
#
# A hook is a bash function hook_<point>. kompose sources this file in a fresh bash
# and calls the function, in the stack directory, stdin /dev/null. Return 0 for
# success; anything else fails the hook. Nothing here runs until you uncomment it.
# Check it any time with:  kompose {stack} hooks:check   ·   see what would run:  kompose {stack} hooks
#
# Every hook gets the stack's layered environment (root .env < .env < -e) and:
#   SCRIPT_DIR, KOMPOSE_ROOT   the kompose root          stack, KOMPOSE_STACK   this stack's name
#   KOMPOSE_STACK_DIR          this directory            KOMPOSE_COMMAND        db:export, up, ...
#   KOMPOSE_HOOK               this function's name      KOMPOSE_HOOK_POINT     pre_db_export, ...
#   KOMPOSE_RUN_ID             one id per invocation     KOMPOSE_STATUS         running | ok | failed
#   KOMPOSE_CONTEXT            a file: append KEY=VALUE lines; the later hooks of this stack
#                              (and the post and on_error hooks) get them as variables
#
# Order and failure, for every operation:
#   pre_<op>  ->  the operation  ->  post_<op>    (post: only after success, unless
#                                                  KOMPOSE_POST_POLICY=always in .env)
#   any failure (a pre hook, the operation, a post hook)  ->  hook_on_error
# A failing pre hook skips the operation. A failing post hook fails the stack but
# never undoes the operation. Time limit per hook: KOMPOSE_HOOK_TIMEOUT (600 s), or
# KOMPOSE_HOOK_TIMEOUT_<POINT> (e.g. KOMPOSE_HOOK_TIMEOUT_PRE_DB_EXPORT=60); on
# expiry the hook's whole process group is killed.
#
# The same points also take hooks without bash: KOMPOSE_HOOK_<POINT>_HTTP / _TCP /
# _EXEC keys in .env, and SQL files in sql/<point>/*.sql (see docs/hooks.md).

# --- db:export --------------------------------------------------------------------

# Before pg_dump.
# hook_pre_db_export() {{
#     echo "exporting $KOMPOSE_STACK"
# }}

# After the dump is complete and has its final name.  $1: the dump file (also KOMPOSE_DUMP_FILE)
# hook_post_db_export() {{
#     echo "dump written: $1"
# }}

# --- db:export and db:push: copies into restic repositories (KOMPOSE_REPOSITORIES) ---

# Before the dump is copied into one repository (once per repository).
#   $1: the dump file   $2: the repository (a password in it shown as ***)
# hook_pre_db_push() {{
#     echo "copying $1 to $2"
# }}

# After that copy succeeded.  $1: the dump file   $2: the repository (masked)
# hook_post_db_push() {{
#     echo "copied $1 to $2"
# }}

# --- db:import --------------------------------------------------------------------

# Before anything is restored.  $1: the dump file (also KOMPOSE_DUMP_FILE)
# hook_pre_db_import() {{
#     echo "ROWS_BEFORE=42" >>"$KOMPOSE_CONTEXT"   # post_db_import sees $ROWS_BEFORE
# }}

# After the restore into the temporary database, before it replaces the live one.
# Failing here keeps the live database untouched.
#   $1: the dump file   $2: the temporary database (also KOMPOSE_DB)
# hook_pre_swap() {{
#     echo "checking $2 before it goes live"
# }}

# After the swap.  $1: the dump file
# hook_post_db_import() {{
#     docker compose restart app   # reconnect the app to the restored database
# }}

# --- db:rollback ------------------------------------------------------------------

# Before / after the previous database is swapped back in.
# hook_pre_db_rollback() {{ :; }}
# hook_post_db_rollback() {{ :; }}

# --- db:cleanup -------------------------------------------------------------------

# Before / after old dumps are removed.
# hook_pre_db_cleanup() {{ :; }}
# hook_post_db_cleanup() {{ :; }}

# --- db:verify, db:drill -----------------------------------------------------------

# Before / after db:verify re-checks dumps (sha256 against the manifest, structure).
# hook_pre_db_verify() {{ :; }}
# hook_post_db_verify() {{ :; }}

# db:drill's smoke test, after the dump was restored into a throwaway database (dropped
# afterwards). SQL files in sql/drill/*.sql run against it too. A failure fails the drill.
#   $1: the dump file   $2: the drill database (also KOMPOSE_DB; its container: KOMPOSE_DB_CONTAINER)
# hook_drill() {{
#     docker exec "$KOMPOSE_DB_CONTAINER" psql -U "$DB_USER" -d "$2" -c 'SELECT count(*) FROM users'
# }}

# --- any compose command: hook_pre_<cmd> / hook_post_<cmd> ---------------------------

# Before / after `docker compose up`.  "$@": the compose command as typed (up -d; $1 is up)
# hook_pre_up() {{ :; }}
# hook_post_up() {{ :; }}
# hook_pre_down() {{ :; }}
# hook_post_down() {{ :; }}

# --- after any failure ------------------------------------------------------------

# KOMPOSE_FAILED_STEP: what failed (a hook's name, "pg_dump app (plain)", ...)
# KOMPOSE_ERROR: its error message. A failure here is reported, never hides the first error.
# hook_on_error() {{
#     echo "kompose $KOMPOSE_COMMAND failed for $KOMPOSE_STACK at $KOMPOSE_FAILED_STEP: $KOMPOSE_ERROR" >&2
# }}
"""


def write(directory: Path, stack: str) -> Path:
    """Write ``<directory>/hooks.sh`` from the template; the directory is made when missing.

    Raises UsageError when a hooks.sh is already there (it is never overwritten).
    """
    path = directory / "hooks.sh"
    if path.exists():
        raise UsageError(f"{path} exists; kompose init never overwrites it")
    directory.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as handle:  # "x": a race with another writer loses, never clobbers
        handle.write(TEMPLATE.format(stack=stack))
    path.chmod(0o755)
    return path


def init_command(ctx, stack: str | None, args: list[str] = ()) -> int:
    """`kompose init STACK`: a commented hooks.sh in <root>/STACK (made when missing)."""
    from kompose.stacks import compose_file_of

    if not stack or args:
        raise UsageError("expected: kompose init STACK")
    if "/" in stack or stack in (".", "..") or stack.startswith((".", "_", "-")):
        raise UsageError(f"init {stack!r}: a stack is a directory name under the root (not starting with . _ -)")
    from kompose.stacks import name_problem

    if name_problem(stack):
        raise UsageError(f"init {stack!r}: kompose refuses this stack name: {name_problem(stack)}")
    if not ctx.root.is_dir():
        raise UsageError(f"root {ctx.root} is not a directory")
    path = write(ctx.root / stack, stack)
    ctx.console.print(f"wrote {path}: every hook point, commented out")
    if compose_file_of(path.parent) is None:
        ctx.console.print(f"{path.parent} has no compose file yet: it becomes a stack once it has compose.yaml")
    return 0
