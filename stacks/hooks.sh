# Run-wide hooks (see docs/hooks.md): once per kompose invocation, in this directory.
# $1: the command (db:export, up, ...), then its arguments.

# One line on stderr naming what failed: cron mails it, the log keeps it.
hook_on_error() {
    echo "kompose $1 failed for: ${KOMPOSE_FAILED:-(before any stack)}; first error: $KOMPOSE_ERROR" >&2
}
