"""The child process that runs apprise: ``python -m kompose.notify.sender`` with a JSON request on stdin.

stdin: {"urls": [...], "title": ..., "body": ..., "type": "success|failure|warning|info"}.
stdout: one JSON line {"problems": [...]}: empty when every URL took the message. apprise's
log records are captured (never printed: they may quote a URL); the parent kills this
process at its deadline.
"""

from __future__ import annotations

import json
import logging
import sys


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage().strip().splitlines()[0][:300])
        except Exception:
            pass


def main() -> int:
    request = json.loads(sys.stdin.read())
    collected = _Collect()
    logger = logging.getLogger("apprise")
    logger.addHandler(collected)
    logger.propagate = False
    logger.setLevel(logging.WARNING)

    import apprise

    problems: list[str] = []
    notifier = apprise.Apprise()
    added = 0
    for number, url in enumerate(request["urls"], 1):
        if notifier.add(url):
            added += 1
        else:
            problems.append(f"URL {number} of KOMPOSE_NOTIFY is not one apprise understands")
    if added:
        kind = {"success": apprise.NotifyType.SUCCESS, "failure": apprise.NotifyType.FAILURE,
                "warning": apprise.NotifyType.WARNING}.get(request.get("type"), apprise.NotifyType.INFO)
        ok = notifier.notify(body=request["body"], title=request["title"], notify_type=kind,
                             body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            reasons = [line for line in collected.lines if line]
            problems.append("; ".join(dict.fromkeys(reasons)) if reasons else "apprise reported a failure")
    print(json.dumps({"problems": problems}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
