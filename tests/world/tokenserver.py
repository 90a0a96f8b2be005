"""A small Docker registry token server (the `auth.token` realm of the distribution registry).

It speaks the real wire protocol: `GET /token?service=..&scope=..` with Basic auth answers a JSON
`{token, access_token, expires_in, issued_at}`; the token is an ES256 JWT whose `x5c` header
carries a signing certificate chained to the CA named in the registry's `rootcertbundle`.

Scopes are honoured the way real token servers do it: the token grants the intersection of what
was asked and what the user's ACL allows, so a token being issued proves nothing about pull
rights. Only the registry's answer to the token proves that.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hmac
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.world.tls import LocalCA

# repository glob (fnmatch: `*` also crosses `/`) -> actions ("pull", "push", "delete" or "*")
Access = Mapping[str, Collection[str]]
PasswordCheck = Callable[[str, str], bool]

FULL_ACCESS: Access = {"*": ("*",)}


@dataclass(frozen=True)
class Grant:
    """One `access` entry of a token, as the registry reads it."""

    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class IssuedToken:
    """What the server handed out, kept so tests can assert on the scopes a client asked for."""

    subject: str
    requested: tuple[str, ...]
    granted: tuple[Grant, ...]
    token: str


@dataclass(frozen=True)
class _User:
    password: str | None  # None: only the verify_password hook can authenticate this name
    access: dict[str, frozenset[str]]


def parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    """`type:name:actions`; the name may itself hold a colon (a `host:port/...` resource)."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return kind, name, frozenset(a for a in actions.split(",") if a)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    # A client that connects and then says nothing must not pin a thread for ever.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        self.server.owner.log(format % args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._json(HTTPStatus.NOT_FOUND, _errors("NOT_FOUND", "no such endpoint"))
            return
        self.server.owner.handle_token(self, parse_qs(url.query))

    def _json(
        self, status: HTTPStatus, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: TokenServer


def _errors(code: str, message: str) -> dict[str, Any]:
    # The registry's own error envelope: clients such as containers/image turn a 401 carrying it
    # into "unauthorized: ...", which is what the tests look for.
    return {"errors": [{"code": code, "message": message, "detail": None}]}


@dataclass
class TokenServer:
    """A threaded HTTPS token server on its own free 127.0.0.1 port, in this process."""

    ca: LocalCA
    directory: Path
    name: str = "tokenserver"
    service: str = "rotator-test-registry"
    issuer: str = "rotator-test-token-server"
    ttl_seconds: int = 300
    # Tried when the stored password does not match (or none is stored): the hook an ACR-style
    # refresh token accepted as password for user 00000000-0000-0000-0000-000000000000 plugs into.
    verify_password: PasswordCheck | None = None
    rootcertbundle: Path = field(init=False)  # the signing CA, for the registry config
    issued: list[IssuedToken] = field(default_factory=list, init=False)
    _users: dict[str, _User] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _httpd: _HTTPServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _log: list[str] = field(default_factory=list, init=False)
    _signing_key: bytes = field(init=False, repr=False)
    _x5c: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # A signing CA of its own, apart from the TLS CA, as real deployments keep them; the
        # registry trusts only this CA (rootcertbundle) and finds the leaf in the x5c header.
        signing_ca = trustme.CA(organization_unit_name="token signing")
        signer = signing_ca.issue_cert(f"{self.name}-signer")
        self.rootcertbundle = self.directory / f"{self.name}-signing-ca.crt"
        signing_ca.cert_pem.write_to_path(str(self.rootcertbundle))
        self._signing_key = signer.private_key_pem.bytes()
        leaf = x509.load_pem_x509_certificate(signer.cert_chain_pems[0].bytes())
        self._x5c = [base64.b64encode(leaf.public_bytes(Encoding.DER)).decode()]

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> TokenServer:
        if self._httpd is not None:
            return self
        cert = self.ca.issue(self.name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert.cert_path), str(cert.key_path))
        # Port 0: the kernel picks, so there is no window in which another process takes it.
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        # The handshake is left to the handler thread; done in accept() it would let one
        # silent client stall every other request.
        httpd.socket = context.wrap_socket(
            httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"{self.name}-serve"
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, f"{self.name} is not running"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    # -- users --------------------------------------------------------------------------------

    def add_user(self, name: str, password: str | None, access: Access = FULL_ACCESS) -> None:
        user = _User(password, {glob: frozenset(acts) for glob, acts in access.items()})
        with self._lock:
            self._users[name] = user

    def remove_user(self, name: str) -> None:
        with self._lock:
            self._users.pop(name, None)

    def authenticate(self, name: str, password: str) -> bool:
        with self._lock:
            user = self._users.get(name)
            hook = self.verify_password
        stored = user.password if user is not None else None
        # Constant time, like a real server; the cost is nil here.
        if stored is not None and hmac.compare_digest(stored.encode(), password.encode()):
            return True
        return hook is not None and hook(name, password)

    def allowed(self, name: str, repository: str) -> frozenset[str]:
        with self._lock:
            user = self._users.get(name)
        if user is None:
            return frozenset()
        actions: set[str] = set()
        for glob, acts in user.access.items():
            if fnmatch.fnmatchcase(repository, glob):
                actions |= acts
        return frozenset(actions)

    def grants(self, name: str, scopes: Iterable[str]) -> tuple[Grant, ...]:
        """What was asked intersected with what the ACL allows; unknown scopes get nothing."""
        out: list[Grant] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None or parsed[0] != "repository":
                continue
            kind, repository, wanted = parsed
            allowed = self.allowed(name, repository)
            if "*" in allowed:
                granted = wanted
            elif "*" in wanted:
                # Asking for everything yields what the user may do, not a wildcard.
                granted = allowed
            else:
                granted = wanted & allowed
            if granted:
                out.append(Grant(kind, repository, tuple(sorted(granted))))
        return tuple(out)

    # -- tokens -------------------------------------------------------------------------------

    def mint(self, subject: str, grants: Iterable[Grant], *, ttl_seconds: int | None = None) -> str:
        """Sign a token directly, e.g. an already expired one (negative ttl) for a test."""
        now = int(time.time())
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        claims = {
            "iss": self.issuer,
            # A plain string: distribution 2.8.2 rejects a list here as "malformed token".
            "aud": self.service,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "access": [grant.claim() for grant in grants],
        }
        return jwt.encode(claims, self._signing_key, algorithm="ES256", headers={"x5c": self._x5c})

    def handle_token(self, request: _Handler, query: Mapping[str, list[str]]) -> None:
        challenge = {"WWW-Authenticate": f'Basic realm="{self.realm}"'}
        credentials = _basic_credentials(request.headers.get("Authorization", ""))
        if credentials is None:
            request._json(
                HTTPStatus.UNAUTHORIZED,
                _errors("UNAUTHORIZED", "authentication required"),
                challenge,
            )
            return
        username, password = credentials
        if not self.authenticate(username, password):
            request._json(
                HTTPStatus.UNAUTHORIZED,
                _errors("UNAUTHORIZED", "authentication required"),
                challenge,
            )
            return
        if query.get("service") != [self.service]:
            request._json(HTTPStatus.BAD_REQUEST, _errors("INVALID_SERVICE", "unknown service"))
            return
        # Docker sends one `scope` parameter per scope; OAuth2-style clients join them by spaces.
        requested = tuple(s for value in query.get("scope", []) for s in value.split())
        grants = self.grants(username, requested)
        token = self.mint(username, grants)
        with self._lock:
            self.issued.append(IssuedToken(username, requested, grants, token))
        issued_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        request._json(
            HTTPStatus.OK,
            {
                "token": token,
                "access_token": token,
                "expires_in": self.ttl_seconds,
                "issued_at": issued_at,
            },
        )

    def log(self, line: str) -> None:
        with self._lock:
            self._log.append(line)

    def log_tail(self, lines: int = 30) -> str:
        with self._lock:
            return "\n".join(self._log[-lines:])


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None
