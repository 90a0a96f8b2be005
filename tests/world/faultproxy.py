"""A fault-injecting HTTP(S) reverse proxy for the faults real servers will not make on demand.

Placed in front of the kube API server (or a registry, or moto), it passes everything through
unchanged except requests that match a rule: those get a 409/429/500 Kubernetes Status, a
delay, or are forwarded and then left unanswered (the write happened, the response is lost),
the case that makes a client's retry meet its own earlier write.

TLS is terminated here, so the client must trust the proxy's certificate and authenticate with
a bearer token (client certificates cannot pass through); the upstream is verified with the CA.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.world.faults import LoopbackServer
from tests.world.tls import ServerCert

# Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection, never forwarded; the
# body is re-framed on each side, so its framing headers are rebuilt rather than copied.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, kw_only=True)
class Respond:
    """Answer with a Kubernetes Status instead of forwarding."""

    status: int
    reason: str  # the Status `reason`, e.g. Conflict
    retry_after: int | None = None  # seconds


@dataclass(frozen=True, kw_only=True)
class Delay:
    """Wait, then forward: a slow upstream as the client sees it."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class DropResponse:
    """Forward, read the upstream's full answer, then close the connection without a reply."""


Action = Respond | Delay | DropResponse


def conflict() -> Respond:
    return Respond(status=409, reason="Conflict")


def throttle(retry_after: int = 1) -> Respond:
    return Respond(status=429, reason="TooManyRequests", retry_after=retry_after)


def server_error(status: int = 500) -> Respond:
    reason = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}.get(status, "")
    return Respond(status=status, reason=reason)


def delay(seconds: float) -> Delay:
    return Delay(seconds=seconds)


def drop_response() -> DropResponse:
    return DropResponse()


@dataclass(kw_only=True)
class Rule:
    """Requests whose method (None: any) and path (regex, full match, query excluded) match.

    `nth` fires only on the Nth matching request (1-based); `times` caps how often it fires
    (None: every match). `matched` and `fired` are counters for assertions.
    """

    method: str | None
    path: str
    action: Action
    nth: int | None = None
    times: int | None = None
    matched: int = 0
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(
            self._pattern.fullmatch(path)
        )


class FaultProxy:
    def __init__(
        self,
        upstream_url: str,
        *,
        cert: ServerCert | None,
        upstream_ca: Path | None = None,
        upstream_timeout: float = 30.0,
    ) -> None:
        """`cert=None` serves plain HTTP; `upstream_ca` verifies an https upstream."""
        self.upstream_url = upstream_url.rstrip("/")
        verify: ssl.SSLContext | bool = True
        if upstream_ca is not None:
            verify = ssl.create_default_context(cafile=str(upstream_ca))
        # trust_env=False: the machine's *_CA_BUNDLE and proxy variables must not apply here.
        self._client = httpx.Client(verify=verify, timeout=upstream_timeout, trust_env=False)
        self._rules: list[Rule] = []
        self._seen: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = LoopbackServer("faultproxy", _ProxyHandler, cert=cert)
        self._server.proxy = self  # type: ignore[attr-defined] # handler reaches its proxy

    def start(self) -> FaultProxy:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        self._client.close()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    def add_rule(
        self,
        method: str | None,
        path: str,
        action: Action,
        *,
        nth: int | None = None,
        times: int | None = None,
    ) -> Rule:
        rule = Rule(method=method, path=path, action=action, nth=nth, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def count(self, method: str, path: str) -> int:
        """Requests seen (whether faulted or forwarded) with exactly this method and path."""
        with self._lock:
            return self._seen[(method, path)]

    def count_matching(self, method: str | None, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(
                n
                for (m, p), n in self._seen.items()
                if (method is None or m == method) and pattern.fullmatch(p)
            )

    @property
    def seen(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._seen)

    def reset_counts(self) -> None:
        with self._lock:
            self._seen.clear()

    def _observe(self, method: str, path: str) -> Action | None:
        """Count the request and pick the first rule that fires for it."""
        with self._lock:
            self._seen[(method, path)] += 1
            chosen: Rule | None = None
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                # Every matching rule counts the request, so `nth` does not depend on order.
                rule.matched += 1
                if chosen is not None:
                    continue
                if rule.nth is not None and rule.matched != rule.nth:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                chosen = rule
            if chosen is None:
                return None
            chosen.fired += 1
            return chosen.action


def kubernetes_status(respond: Respond, path: str) -> dict[str, Any]:
    """The Status body the API server would send, so client libraries parse it as usual."""
    details: dict[str, Any] = {}
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
        if rest:
            details["kind"] = rest[0]
        if len(rest) > 1:
            details["name"] = rest[1]
    if respond.status == 409:
        target = f'{details.get("kind", "object")} "{details.get("name", "")}"'
        message = (
            f"Operation cannot be fulfilled on {target}: the object has been modified; "
            "please apply your changes to the latest version and try again"
        )
    elif respond.status == 429:
        message = "Too many requests, please try again later."
        details["retryAfterSeconds"] = respond.retry_after or 1
    else:
        message = "Internal error occurred: fault injected by the fault proxy"
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": respond.reason,
        "details": details,
        "code": respond.status,
    }


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections must not pin a thread for ever
    server: LoopbackServer

    @property
    def proxy(self) -> FaultProxy:
        return self.server.proxy  # type: ignore[attr-defined, no-any-return]

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return  # counts are kept in the proxy; stderr noise would bury pytest output

    def _handle(self) -> None:
        path = urlsplit(self.path).path
        body = self._read_request_body()
        action = self.proxy._observe(self.command, path)
        if isinstance(action, Respond):
            self._send_status(action, path)
            return
        if isinstance(action, Delay):
            time.sleep(action.seconds)
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        # httpx.Request, not client.build_request: the latter adds the client's default
        # headers (Accept-Encoding among them), and the upstream must see the client's own.
        request = httpx.Request(
            self.command,
            self.proxy.upstream_url + self.path,
            headers=headers,
            content=body or None,  # no invented Content-Length: 0 on a bodyless GET
        )
        try:
            response = self.proxy._client.send(request, stream=True)
        except httpx.HTTPError as e:
            self._send_json(502, {"kind": "Status", "code": 502, "message": str(e)})
            return
        try:
            if isinstance(action, DropResponse):
                response.read()  # the upstream has fully answered: the write really happened
                self.close_connection = True
                return
            self._relay(response)
        finally:
            response.close()

    def _read_request_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers: dropped, nothing here uses them
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline()

    def _relay(self, response: httpx.Response) -> None:
        self.send_response_only(response.status_code, response.reason_phrase)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if (
            self.command == "HEAD"
            or response.status_code in _NO_BODY_STATUSES
            or response.status_code < 200
        ):
            self.end_headers()
            return
        if "content-length" in response.headers:
            self.end_headers()
            for chunk in response.iter_raw():  # raw: a gzip body stays gzip, length unchanged
                self.wfile.write(chunk)
            return
        if self.request_version != "HTTP/1.1":
            self.close_connection = True  # HTTP/1.0 frames an unsized body by closing
            self.end_headers()
            for chunk in response.iter_raw():
                self.wfile.write(chunk)
            return
        # Unsized upstream body (chunked): re-chunk as it arrives, so watches stream too.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.iter_raw():
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _send_status(self, respond: Respond, path: str) -> None:
        headers = {} if respond.retry_after is None else {"Retry-After": str(respond.retry_after)}
        self._send_json(respond.status, kubernetes_status(respond, path), headers)

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
