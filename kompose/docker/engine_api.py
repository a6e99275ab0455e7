"""A small Engine API client for a local engine's unix socket: the calls every db command makes
(ping, listing and inspecting containers, exec create / start / inspect), without the docker SDK.

``import docker`` (requests, urllib3) costs ≈ 0.12 s of CPU on a quiet 2-core host and 0.3 s on a
busy one: more than the whole rest of a small database's export. This client speaks HTTP/1.1
over the socket itself (one kept-alive connection for requests, a fresh one per exec stream,
hijacked as the SDK does), and everything it does not implement is handed to a real
``docker.DockerClient`` made on first use (``__getattr__``), so callers see one client.

Errors are the SDK's own (``docker.errors.NotFound`` / ``APIError``, imported when one is
raised), so every ``except`` written for the SDK holds; code on the happy path must import
``docker.errors`` only after something failed (``errors()`` below).
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

HEADER_LIMIT = 64 * 1024


def errors():
    """(APIError, NotFound) of the SDK: for ``except`` clauses reached after a failure."""
    from docker.errors import APIError, NotFound

    return APIError, NotFound


class _Response:
    """What docker.errors.APIError reads of a response."""

    def __init__(self, status_code: int, reason: str, url: str):
        self.status_code = status_code
        self.reason = reason
        self.url = url


def _raise_for(status: int, reason: str, path: str, body: bytes) -> None:
    from docker.errors import APIError, NotFound

    try:
        explanation = json.loads(body.decode("utf-8", "replace")).get("message") or ""
    except (ValueError, AttributeError):
        explanation = body.decode("utf-8", "replace").strip()
    response = _Response(status, reason, path)
    message = f"{status} Client Error for {path}: {reason}" if status < 500 else \
        f"{status} Server Error for {path}: {reason}"
    raise (NotFound if status == 404 else APIError)(message, response=response, explanation=explanation)


def _read_head(sock: socket.socket) -> tuple[int, str, dict[str, str], bytes]:
    """Read a response's status line and headers; returns any body bytes read past them."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the engine closed the connection")
        data += chunk
        if len(data) > HEADER_LIMIT:
            raise ConnectionError("the engine sent an oversized response header")
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, reason, headers, rest


def _read_exact(sock: socket.socket, have: bytes, size: int) -> tuple[bytes, bytes]:
    data = bytearray(have)
    while len(data) < size:
        chunk = sock.recv(max(size - len(data), 65536))
        if not chunk:
            raise ConnectionError("the engine closed the connection mid-response")
        data += chunk
    return bytes(data[:size]), bytes(data[size:])


def _read_body(sock: socket.socket, headers: Mapping[str, str], rest: bytes, method: str, status: int) -> bytes:
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            while b"\r\n" not in rest:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the engine closed the connection mid-response")
                rest += chunk
            line, _, rest = rest.partition(b"\r\n")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            piece, rest = _read_exact(sock, rest, size + 2)
            if size == 0:
                return bytes(body)
            body += piece[:-2]
    if "content-length" in headers:
        body, _ = _read_exact(sock, rest, int(headers["content-length"]))
        return body
    data = bytearray(rest)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return bytes(data)
        data += chunk


class EngineAPI:
    """The low-level calls kompose's db commands make, as docker.APIClient names them."""

    def __init__(self, path: str, timeout: float, fallback):
        self._path = path
        self._timeout = timeout
        self._fallback = fallback  # -> the SDK's APIClient, for everything else
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self._fallback().api, name)

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self._timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        return sock

    @staticmethod
    def _request_bytes(method: str, path: str, body: bytes | None, extra: str = "") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: kompose\r\n{extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode("latin-1") + (body or b"")

    def _call(self, method: str, path: str, payload: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        if query:
            path += "?" + urlencode(query)
        body = None if payload is None else json.dumps(payload).encode()
        request = self._request_bytes(method, path, body)
        with self._lock:
            for attempt in (0, 1):
                fresh = self._sock is None
                if fresh:
                    self._sock = self._connect()
                try:
                    self._sock.sendall(request)
                    status, reason, headers, rest = _read_head(self._sock)
                    data = _read_body(self._sock, headers, rest, method, status)
                except (ConnectionError, OSError):
                    self._close_locked()
                    if fresh or attempt:  # a kept-alive connection the engine closed meanwhile: once more
                        raise
                    continue
                if headers.get("connection", "").lower() == "close":
                    self._close_locked()
                break
        if status >= 400:
            _raise_for(status, reason, path, data)
        if not data:
            return None
        if headers.get("content-type", "").startswith("application/json"):
            return json.loads(data)
        return data.decode("utf-8", "replace")

    def _close_locked(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    # -- the calls

    def ping(self) -> bool:
        return self._call("GET", "/_ping") == "OK"

    def containers(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[dict]:  # noqa: A002
        query: dict[str, Any] = {"all": "1" if all else "0"}
        if filters:
            query["filters"] = json.dumps({key: value if isinstance(value, list) else [value]
                                           for key, value in filters.items()})
        return self._call("GET", "/containers/json", query=query)

    def inspect_container(self, container: str) -> dict:
        return self._call("GET", f"/containers/{quote(container, safe='')}/json")

    def exec_create(self, container: str, cmd: Sequence[str], stdout: bool = True, stderr: bool = True,
                    stdin: bool = False, tty: bool = False, privileged: bool = False, user: str = "",
                    environment: Mapping[str, str] | None = None, workdir: str | None = None) -> dict:
        payload = {"Container": container, "User": user, "Privileged": privileged, "Tty": tty,
                   "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Cmd": list(cmd),
                   "Env": [f"{key}={value}" for key, value in (environment or {}).items()]}
        if workdir is not None:
            payload["WorkingDir"] = workdir
        return self._call("POST", f"/containers/{quote(container, safe='')}/exec", payload)

    def exec_inspect(self, exec_id: str) -> dict:
        return self._call("GET", f"/exec/{quote(exec_id, safe='')}/json")

    def create_container(self, image: str, command: Sequence[str] | None = None, name: str | None = None,
                         entrypoint: Sequence[str] | None = None, environment: Mapping[str, str] | None = None,
                         user: str = "", labels: Mapping[str, str] | None = None,
                         host_config: Mapping[str, Any] | None = None) -> dict:
        """The helper's create (docker/helper.py): ``host_config`` as the Engine API's HostConfig."""
        payload = {"Image": image, "Cmd": list(command or []), "Entrypoint": list(entrypoint or []) or None,
                   "Env": [f"{key}={value}" for key, value in (environment or {}).items()], "User": user,
                   "Labels": dict(labels or {}), "HostConfig": dict(host_config or {}), "Tty": False,
                   "OpenStdin": False, "StdinOnce": False, "AttachStdin": False, "AttachStdout": False,
                   "AttachStderr": False}
        return self._call("POST", "/containers/create", payload, query={"name": name} if name else None)

    def start(self, container: str) -> None:
        self._call("POST", f"/containers/{quote(container, safe='')}/start")

    def remove_container(self, container: str, v: bool = False, link: bool = False, force: bool = False) -> None:
        self._call("DELETE", f"/containers/{quote(container, safe='')}",
                   query={"v": "1" if v else "0", "link": "1" if link else "0", "force": "1" if force else "0"})

    def wait(self, container: str, timeout: float | None = None, condition: str | None = None) -> dict:
        """Wait on a connection of its own (a dump may take hours: the shared one stays free)."""
        path = f"/containers/{quote(container, safe='')}/wait" + (f"?condition={condition}" if condition else "")
        sock = self._connect()
        try:
            sock.settimeout(timeout)
            sock.sendall(self._request_bytes("POST", path, None))
            status, reason, headers, rest = _read_head(sock)
            data = _read_body(sock, headers, rest, "POST", status)
        finally:
            sock.close()
        if status >= 400:
            _raise_for(status, reason, path, data)
        return json.loads(data)

    def exec_start(self, exec_id: str, detach: bool = False, tty: bool = False, stream: bool = False,
                   socket: bool = False, demux: bool = False):  # noqa: A002 - the SDK's names
        """With ``socket``: the hijacked connection (a socket.socket) carrying the exec's streams."""
        if detach and not socket and not stream:
            # the exec runs on in the engine; the answer is an empty 200 (the import's detached drop)
            self._call("POST", f"/exec/{quote(exec_id, safe='')}/start", {"Detach": True, "Tty": tty})
            return b""
        if not socket or detach:
            return getattr(self._fallback().api, "exec_start")(exec_id, detach=detach, tty=tty, stream=stream,
                                                               socket=socket, demux=demux)
        path = f"/exec/{quote(exec_id, safe='')}/start"
        body = json.dumps({"Detach": False, "Tty": tty}).encode()
        sock = self._connect()
        try:
            sock.sendall(self._request_bytes("POST", path, body, "Connection: Upgrade\r\nUpgrade: tcp\r\n"))
            # the stream follows the headers at once: read them exactly, leave its bytes in the socket
            head = bytearray()
            while not head.endswith(b"\r\n\r\n"):
                peeked = sock.recv(4096, _socket_module.MSG_PEEK)
                if not peeked:
                    raise ConnectionError("the engine closed the exec stream before it started")
                end = (bytes(head) + peeked).find(b"\r\n\r\n")
                take = len(peeked) if end < 0 else end + 4 - len(head)
                head += sock.recv(take)
                if len(head) > HEADER_LIMIT:
                    raise ConnectionError("the engine sent an oversized response header")
            status, reason, headers, _ = _read_head_from(bytes(head))
            if status >= 400:
                data = _read_body(sock, headers, b"", "POST", status)
                _raise_for(status, reason, path, data)
        except BaseException:
            sock.close()
            raise
        return sock


_socket_module = socket


def _read_head_from(head: bytes) -> tuple[int, str, dict[str, str], bytes]:
    lines = head.rstrip(b"\r\n").decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, b""


class LiteContainer:
    """What kompose reads of a docker.models.containers.Container: attrs, id, name, labels, status."""

    def __init__(self, attrs: dict):
        self.attrs = attrs
        self.id = attrs.get("Id", "")
        self.short_id = self.id[:12]
        self.name = (attrs.get("Name") or "").lstrip("/")

    @property
    def labels(self) -> dict:
        return (self.attrs.get("Config") or {}).get("Labels") or {}

    @property
    def status(self) -> str:
        return (self.attrs.get("State") or {}).get("Status", "")


class _Containers:
    def __init__(self, client: "LiteClient"):
        self._client = client

    def get(self, container_id: str) -> LiteContainer:
        return LiteContainer(self._client.api.inspect_container(container_id))

    def __getattr__(self, name: str):
        return getattr(self._client._real().containers, name)


class LiteClient:
    """A docker.DockerClient look-alike for a local unix socket (see the module)."""

    def __init__(self, base_url: str, timeout: float = 60):
        self._base_url = base_url
        self._timeout = timeout
        self._sdk = None
        self._sdk_lock = threading.Lock()
        self.api = EngineAPI(base_url.removeprefix("unix://"), timeout, self._real)
        self.containers = _Containers(self)

    def _real(self):
        with self._sdk_lock:
            if self._sdk is None:
                import docker

                self._sdk = docker.DockerClient(base_url=self._base_url, timeout=self._timeout)
            return self._sdk

    def ping(self) -> bool:
        try:
            return self.api.ping()
        except OSError as exc:
            from docker.errors import DockerException

            raise DockerException(f"Error while fetching server API version: {exc}") from exc

    def info(self) -> dict:
        """The engine's /info (whether it runs rootless: --transport direct asks)."""
        return self.api._call("GET", "/info")

    def close(self) -> None:
        self.api.close()
        if self._sdk is not None:
            self._sdk.close()

    def __getattr__(self, name: str):
        return getattr(self._real(), name)
