"""The network side of declarative hooks: one HTTP request, one TCP check, each bounded by a deadline."""

from __future__ import annotations

import http.client
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from kompose import __version__
from kompose.errors import HookError

_BODY_KEEP = 2048  # of a failed response's body, for the error message


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx counts as an answer: kompose never follows it (it could lead anywhere)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class HttpResult:
    status: int
    reason: str


class _NotAnswering(Exception):
    """The server refused or dropped the connection before answering: it may still be starting."""


# a service that is still starting refuses connections, or (behind Docker's port proxy)
# accepts and drops them
_NOT_UP = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)


def http_request(
    method: str, url: str, body: bytes | None, content_type: str, timeout: float, what: str
) -> HttpResult:
    """Send a request; success is a 2xx or 3xx status (3xx not followed).

    Everything (connect, send, response, body) must finish within ``timeout`` seconds.
    A GET is tried again while the server refuses or drops connections (it may still be
    starting), until the time limit; a POST is sent once. Raises HookError naming
    ``what`` for another status, a network error or the time limit.
    """
    deadline = time.monotonic() + timeout
    headers = {"User-Agent": f"kompose/{__version__}"}
    if body is not None:
        headers["Content-Type"] = content_type
    while True:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            return _exchange(request, deadline, timeout, what)
        except _NotAnswering as exc:
            if method != "GET" or time.monotonic() + 0.25 >= deadline:
                raise HookError(f"{what} failed: {exc}") from None
            time.sleep(0.25)


def _exchange(request: urllib.request.Request, deadline: float, timeout: float, what: str) -> HttpResult:
    remaining = max(deadline - time.monotonic(), 0.01)
    try:
        response = _OPENER.open(request, timeout=remaining)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            return HttpResult(exc.code, str(exc.reason))
        detail = _snippet(exc, deadline)
        raise HookError(f"{what} answered {exc.code} {exc.reason}" + (f": {detail}" if detail else "")) from None
    except (TimeoutError, socket.timeout):
        raise HookError(f"{what} timed out after {timeout:g} s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise HookError(f"{what} timed out after {timeout:g} s") from None
        if isinstance(reason, _NOT_UP):
            raise _NotAnswering(reason.strerror or type(reason).__name__) from None
        raise HookError(f"{what} failed: {getattr(reason, 'strerror', None) or reason}") from None
    except _NOT_UP as exc:
        raise _NotAnswering(exc.strerror or "the server closed the connection without answering") from None
    except OSError as exc:
        raise HookError(f"{what} failed: {exc.strerror or exc}") from None
    except http.client.HTTPException as exc:  # not HTTP, a header line too long, too many headers
        raise HookError(f"{what} failed: the server's answer is not HTTP kompose can read ({_describe(exc)})") from None
    except ValueError as exc:  # a URL urllib cannot use after all (InvalidURL, a bad host label)
        raise HookError(f"{what} failed: {exc}") from None
    with response:
        # drain (bounded) so the server sees a complete exchange, within the deadline
        try:
            while response.read(65536):
                if time.monotonic() > deadline:
                    raise HookError(f"{what} timed out after {timeout:g} s (still sending its answer)")
        except (TimeoutError, socket.timeout):
            raise HookError(f"{what} timed out after {timeout:g} s (still sending its answer)") from None
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the status is what counts
        return HttpResult(response.status, response.reason)


def _describe(exc: Exception) -> str:
    """An http.client error in a few words (BadStatusLine carries the whole line it read)."""
    text = str(exc).strip()
    if isinstance(exc, http.client.BadStatusLine):
        return "no HTTP status line"
    if isinstance(exc, http.client.LineTooLong):
        return "a header line too long"
    return f"{type(exc).__name__}: {text[:80]}" if text else type(exc).__name__


def _snippet(response, deadline: float) -> str:
    try:
        if time.monotonic() > deadline:
            return ""
        text = response.read(_BODY_KEEP).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    text = re.sub(r"<[^>]*>", " ", text)  # an HTML error page says little in its tags
    return " ".join(text.split())[:120]


def tcp_open(host: str, port: int, timeout: float, what: str) -> float:
    """Wait until ``host:port`` accepts a TCP connection, trying again until ``timeout``.

    Returns the seconds it took. Raises HookError naming ``what`` when the port stayed
    closed (with the last error) or the name does not resolve.
    """
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with socket.create_connection((host, port), timeout=min(remaining, 5.0)):
                return time.monotonic() - started
        except socket.gaierror as exc:
            raise HookError(f"{what}: cannot resolve {host}: {exc.strerror}") from None
        except (UnicodeError, ValueError) as exc:  # an empty label, a name idna cannot encode
            raise HookError(f"{what}: cannot resolve {host}: {exc}") from None
        except OSError as exc:
            last = exc.strerror or str(exc) or type(exc).__name__
        time.sleep(min(0.25, max(deadline - time.monotonic(), 0)))
    raise HookError(f"{what}: not open within {timeout:g} s ({last})")
