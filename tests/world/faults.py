"""Fault plans, and the small threaded HTTP(S) server every loopback double is built on.

The two live together because the server is where a double's fault plan is applied: every
request first asks the plan whether it should fail, be slow, or be answered normally, so each
double fails in exactly the same way and a test only has to learn one switch.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from tests.world.tls import ServerCert


@dataclass(frozen=True, kw_only=True)
class Fault:
    """What a double does instead of its normal answer.

    `status=None` means "answer normally", which with a `delay` is the slow mode.
    """

    status: int | None = 503
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    delay: float = 0.0  # seconds slept before answering (or before the error)
    path: str | None = None  # regex the request path must fully match; None matches every path

    @classmethod
    def server_error(cls, status: int = 503, *, path: str | None = None) -> Fault:
        return cls(status=status, path=path)

    @classmethod
    def unauthorized(cls, *, path: str | None = None) -> Fault:
        return cls(status=401, path=path)

    @classmethod
    def throttle(cls, retry_after: int = 1, *, path: str | None = None) -> Fault:
        return cls(status=429, retry_after=retry_after, path=path)

    @classmethod
    def slow(cls, delay: float, *, path: str | None = None) -> Fault:
        return cls(status=None, delay=delay, path=path)

    def matches(self, path: str) -> bool:
        return self.path is None or re.fullmatch(self.path, path) is not None


@dataclass
class FaultPlan:
    """Faults queued for the next requests, then an optional standing mode.

    Queued faults are used up one request each, so a test that queues N failures cannot leak
    them into the next test; a standing mode stays until cleared (prefer `with plan.mode(...)`).
    """

    _queue: list[Fault] = field(default_factory=list)
    _mode: Fault | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    injected: int = 0  # how many requests were answered by a fault, for tests to assert on

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int | None = 503,
        retry_after: int | None = None,
        delay: float = 0.0,
        path: str | None = None,
    ) -> None:
        fault = Fault(status=status, retry_after=retry_after, delay=delay, path=path)
        with self._lock:
            self._queue.extend([fault] * n)

    def set_mode(self, fault: Fault | None) -> None:
        with self._lock:
            self._mode = fault

    @contextmanager
    def mode(self, fault: Fault) -> Iterator[None]:
        self.set_mode(fault)
        try:
            yield
        finally:
            self.set_mode(None)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._mode = None

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._queue):
                if fault.matches(path):
                    del self._queue[index]
                    self.injected += 1
                    return fault
            if self._mode is not None and self._mode.matches(path):
                self.injected += 1
                return self._mode
            return None


class DoubleHandler(BaseHTTPRequestHandler):
    """Request handler with JSON/form helpers; subclasses implement `route`."""

    # HTTP/1.1 so clients keep connections alive as they would against the real service; every
    # answer therefore carries a Content-Length.
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections must not pin a thread for ever.
    timeout = 30
    server: LoopbackServer
    # Headers sent on every answer, including injected faults (the metadata server needs this).
    extra_headers: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    @property
    def url_path(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def read_form(self) -> dict[str, str]:
        parsed = parse_qs(self.read_body().decode(), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.extra_headers, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json", headers)

    def send_text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, text.encode(), "text/plain; charset=utf-8", headers)

    def send_fault(self, fault: Fault) -> None:
        """The body mimics an OAuth error so SDKs parse it rather than choke on it."""
        assert fault.status is not None
        self.read_body()  # drain, or the next request on this connection would read garbage
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        error = {401: "invalid_client", 429: "too_many_requests"}.get(fault.status, "server_error")
        description = f"fault injected by the {self.server.name} double"
        self.send_json(fault.status, {"error": error, "error_description": description}, headers)

    def _dispatch(self) -> None:
        self.server.record(self.command, self.url_path)
        fault = self.server.faults.take(self.url_path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status is not None:
                self.send_fault(fault)
                return
        self.route()

    def route(self) -> None:
        raise NotImplementedError

    def log_message(self, format: str, *args: Any) -> None:
        # The request log is kept in `server.requests`; stderr noise would bury pytest output.
        return


class LoopbackServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer on 127.0.0.1 (port chosen by the kernel), optionally TLS.

    The TLS handshake runs in the per-connection thread, not in the accept loop, so a client
    that connects and never speaks TLS (a port probe) cannot stall the whole server.
    """

    daemon_threads = True

    def __init__(
        self,
        name: str,
        handler: type[BaseHTTPRequestHandler],
        *,
        cert: ServerCert | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.name = name
        self.faults = FaultPlan()
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self._ssl: ssl.SSLContext | None = None
        if cert is not None:
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(str(cert.cert_path), str(cert.key_path))
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def start(self) -> LoopbackServer:
        # A short poll interval: stop() waits up to one interval, and tests stop servers often.
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        # Keep-alive connections would otherwise outlive the server in their handler threads.
        with self._lock:
            for sock in list(self._open):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.server_close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn: socket.socket = request
        if self._ssl is not None:
            try:
                conn = self._ssl.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
        with self._lock:
            self._open.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass  # the client went away; nothing to answer
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()
