"""The real CNCF distribution registry (`docker-registry serve`) over TLS on a free loopback port.

Two modes, the two handshakes of DESIGN.md section 6:

- `htpasswd`: Basic auth against a bcrypt htpasswd file that the registry re-reads when its
  modification time changes, so users can be added and removed while it runs. Every user that
  authenticates may pull and push everything (htpasswd has no ACL).
- `token`: Bearer auth through `TokenServer` (tests/world/tokenserver.py), whose per-user ACL
  decides which scopes a token carries.

Storage is in memory: nothing outlives the process. Usable from pytest (see pytest_registry.py)
and by hand: `python -m tests.world.registry token`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.world.procs import Process, free_port, wait_for_port, wait_until
from tests.world.tls import LocalCA
from tests.world.tokenserver import Access, PasswordCheck, TokenServer

Mode = Literal["htpasswd", "token"]

# Enough for the registry to notice a rewritten htpasswd file; it checks on every request.
_USER_CHANGE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    @property
    def basic(self) -> str:
        """The value of an `Authorization: Basic ...` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="..",service="..",scope=".."` -> ("bearer", {realm, service, scope}).

    A regex rather than a split on commas: a scope value holds commas (`pull,push`).
    """
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(params))


class Registry:
    """One `docker-registry serve` process and, in token mode, its in-process token server."""

    def __init__(
        self,
        *,
        ca: LocalCA,
        directory: Path,
        mode: Mode,
        name: str | None = None,
        verify_password: PasswordCheck | None = None,
    ) -> None:
        if mode not in ("htpasswd", "token"):
            raise ValueError(f"unknown registry mode {mode!r}")
        self.ca = ca
        self.mode: Mode = mode
        self.name = name or f"registry-{mode}"
        self.directory = directory / self.name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port: int | None = None
        self.process: Process | None = None
        self.token_server: TokenServer | None = None
        if mode == "token":
            self.token_server = TokenServer(
                ca=ca,
                directory=self.directory,
                name=f"{self.name}-auth",
                verify_password=verify_password,
            )
        elif verify_password is not None:
            raise ValueError("verify_password needs token mode; htpasswd only knows bcrypt")
        # name -> (password, htpasswd line); the password is kept to probe a removal with it
        self._htpasswd_users: dict[str, tuple[str, str]] = {}
        self._htpasswd_mtime_ns = 0

    # -- where it is --------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`: the registry host as image references and auth files name it."""
        assert self.port is not None, f"{self.name} is not running"
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca_path(self) -> Path:
        return self.ca.ca_path

    @property
    def cert_dir(self) -> Path:
        """A folder holding only `ca.crt`, for containers/image tools (`skopeo --cert-dir`).

        The CA's own folder will not do: containers/image treats every `*.key` there as half
        of a client certificate pair and fails on `ca.key`, which has no `ca.cert`.
        """
        return self.directory / "certs.d"

    @property
    def htpasswd_path(self) -> Path:
        return self.directory / "htpasswd"

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yml"

    def ssl_context(self) -> ssl.SSLContext:
        return self.ca.client_context()

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this registry; env CA bundles and proxies are ignored on purpose."""
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), trust_env=False, **kwargs)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Registry:
        if self.process is not None and self.process.running():
            return self
        self.port = free_port()
        cert = self.ca.issue(self.name)
        self.cert_dir.mkdir(exist_ok=True)
        shutil.copyfile(self.ca.ca_path, self.cert_dir / "ca.crt")
        if self.mode == "htpasswd":
            self._write_htpasswd()
        else:
            assert self.token_server is not None
            self.token_server.start()
        self.config_path.write_text(json.dumps(self._config(cert.cert_path, cert.key_path)))
        self.process = Process(
            name=self.name,
            argv=["docker-registry", "serve", str(self.config_path)],
            log_path=self.directory / "registry.log",
        ).start()
        try:
            wait_for_port(self.port, timeout=15, proc=self.process.popen)
            wait_until(self._answers, timeout=15, what=f"{self.name} /v2/", interval=0.02)
        except (RuntimeError, TimeoutError) as exc:
            tail = self.process.log_tail()
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{tail}") from exc
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.token_server is not None:
            self.token_server.stop()

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process is not None else ""

    def _config(self, cert: Path, key: Path) -> dict[str, Any]:
        auth: dict[str, Any]
        if self.mode == "htpasswd":
            auth = {"htpasswd": {"realm": self.name, "path": str(self.htpasswd_path)}}
        else:
            assert self.token_server is not None
            ts = self.token_server
            auth = {
                "token": {
                    "realm": ts.realm,
                    "service": ts.service,
                    "issuer": ts.issuer,
                    "rootcertbundle": str(ts.rootcertbundle),
                }
            }
        # Written as JSON, which YAML reads as is: no YAML library needed for a config file.
        return {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {"inmemory": {}, "delete": {"enabled": True}},
            "http": {
                "addr": self.host,
                "secret": secrets.token_hex(16),
                "tls": {"certificate": str(cert), "key": str(key)},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": auth,
        }

    def _answers(self) -> bool:
        try:
            with self.client(timeout=1.0) as client:
                return client.get("/v2/").status_code == 401
        except httpx.TransportError:
            return False

    # -- users --------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, access: Access | None = None) -> Credentials:
        """Add (or replace) a user; returns once the registry really accepts the credentials.

        `access` (repository glob -> actions) is for token mode; None there means every action
        on every repository. htpasswd mode has no ACL, so passing `access` there is an error.
        """
        creds = Credentials(name, password)
        if self.mode == "token":
            assert self.token_server is not None
            if access is None:
                self.token_server.add_user(name, password)
            else:
                self.token_server.add_user(name, password, access)
            return creds
        if access is not None:
            raise ValueError("htpasswd mode cannot restrict access; use a token registry")
        self._htpasswd_users[name] = (password, _bcrypt_line(name, password))
        self._write_htpasswd()
        self._wait_for_basic(creds, 200)
        return creds

    def remove_user(self, name: str) -> None:
        """Remove a user; returns once the registry really refuses it (htpasswd mode)."""
        if self.mode == "token":
            assert self.token_server is not None
            self.token_server.remove_user(name)
            return
        removed = self._htpasswd_users.pop(name, None)
        self._write_htpasswd()
        if removed is not None:
            self._wait_for_basic(Credentials(name, removed[0]), 401)

    def _write_htpasswd(self) -> None:
        tmp = self.htpasswd_path.with_suffix(".tmp")
        tmp.write_text("".join(line for _, line in self._htpasswd_users.values()))
        # The registry reloads when the modification time differs from the one it last read.
        # Two rewrites inside one clock tick could share an mtime, so force it to move forward.
        mtime = max(time.time_ns(), self._htpasswd_mtime_ns + 1_000_000)
        os.utime(tmp, ns=(mtime, mtime))
        # Atomic: the registry never reads a half-written file.
        tmp.replace(self.htpasswd_path)
        self._htpasswd_mtime_ns = mtime

    def _basic_status(self, creds: Credentials) -> int:
        with self.client() as client:
            return client.get("/v2/", headers={"Authorization": creds.basic}).status_code

    def _wait_for_basic(self, creds: Credentials, status: int) -> None:
        if not self._running():
            return  # read at start-up
        wait_until(
            lambda: self._basic_status(creds) == status,
            timeout=_USER_CHANGE_TIMEOUT,
            what=f"{self.name}: {creds.username} answering {status}",
            interval=0.02,
        )

    def _running(self) -> bool:
        return self.process is not None and self.process.running()

    # -- the client side of the handshake -------------------------------------------------

    def authorization(self, creds: Credentials, scope: str | None = None) -> str:
        """The `Authorization` header value a client would end up with, found via the challenge.

        Basic challenge -> Basic credentials; Bearer challenge -> a token for `scope` from the
        realm it names. Raises if the realm refuses the credentials.
        """
        with self.client() as client:
            challenge = client.get("/v2/").headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            return creds.basic
        if scheme != "bearer":
            raise RuntimeError(f"{self.name}: unexpected challenge {challenge!r}")
        return "Bearer " + self.fetch_token(params["realm"], params["service"], creds, scope)

    def fetch_token(self, realm: str, service: str, creds: Credentials, scope: str | None) -> str:
        query = {"service": service}
        if scope is not None:
            query["scope"] = scope
        with httpx.Client(verify=self.ssl_context(), trust_env=False, timeout=10.0) as client:
            response = client.get(realm, params=query, headers={"Authorization": creds.basic})
        response.raise_for_status()
        body = response.json()
        return str(body.get("token") or body["access_token"])

    def write_authfile(self, path: Path, creds: Credentials) -> Path:
        """A `.dockerconfigjson`-shaped file naming this registry, for skopeo `--authfile`."""
        entry = {
            "username": creds.username,
            "password": creds.password,
            "auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode(),
        }
        path.write_text(json.dumps({"auths": {self.host: entry}}))
        return path


def _bcrypt_line(name: str, password: str) -> str:
    if ":" in name or "\n" in name or "\n" in password:
        raise ValueError("htpasswd user names cannot hold ':' and neither field a newline")
    # Cost 5 keeps every authenticated request fast; the password goes by stdin, not argv.
    done = subprocess.run(
        ["htpasswd", "-niB", "-C", "5", name],
        input=password.encode(),
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().strip() + "\n"


def main(argv: list[str]) -> int:
    """Run one registry by hand until Ctrl-C, printing what a client needs to reach it."""
    mode: Mode = "token" if argv[1:2] == ["token"] else "htpasswd"
    with tempfile.TemporaryDirectory(prefix="rotator-registry-") as tmp:
        ca = LocalCA.create(Path(tmp) / "ca")
        with Registry(ca=ca, directory=Path(tmp), mode=mode) as registry:
            creds = registry.add_user("admin", secrets.token_urlsafe(12))
            authfile = registry.write_authfile(Path(tmp) / "auth.json", creds)
            print(f"mode:     {registry.mode}")
            print(f"url:      {registry.url}")
            print(f"ca:       {registry.ca_path}")
            print(f"cert-dir: {registry.cert_dir}")
            print(f"authfile: {authfile}")
            print(f"user:     {creds.username} / {creds.password}")
            try:
                while registry._running():
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
