"""Loopback doubles for Google's OAuth token endpoint (HTTPS) and the GCE metadata server (HTTP).

Both mint opaque `ya29.` access tokens into one shared book, so `is_valid_access_token` answers
for tokens from either path, as a registry token server needs when it accepts
`oauth2accesstoken` + token.

- Token endpoint: the JWT-bearer grant a service-account key file drives,
  https://developers.google.com/identity/protocols/oauth2/service-account#httprest
- Metadata server: https://cloud.google.com/compute/docs/metadata/querying-metadata
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.world.faults import DoubleHandler, FaultPlan, LoopbackServer
from tests.world.tls import ServerCert

# google-auth always signs for this audience, whatever token_uri the key file names.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True, kw_only=True)
class ServiceAccount:
    email: str
    key_id: str
    public_key: rsa.RSAPublicKey
    key_file: Path  # service-account JSON, token_uri pointing at the double


@dataclass(frozen=True, kw_only=True)
class IssuedToken:
    email: str
    scopes: tuple[str, ...]
    expires_at: float


class GoogleDouble:
    def __init__(
        self,
        *,
        directory: Path,
        cert: ServerCert,
        project_id: str = "rotator-test",
        clock: Callable[[], float] = time.time,
        access_token_lifetime: int = 3600,
    ) -> None:
        self.directory = directory
        self.project_id = project_id
        self.clock = clock
        self.access_token_lifetime = access_token_lifetime  # seconds; settable mid-session
        self._accounts: dict[str, ServiceAccount] = {}
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()
        self.token_server = LoopbackServer("google-oauth", _TokenHandler, cert=cert)
        self.metadata_server = LoopbackServer("gce-metadata", _MetadataHandler)
        for server in (self.token_server, self.metadata_server):
            server.double = self  # type: ignore[attr-defined] # handlers reach their double
        self.default_account = self.add_service_account("rotator")

    # -- lifecycle and addresses ---------------------------------------------------------------

    def start(self) -> GoogleDouble:
        self.token_server.start()
        self.metadata_server.start()
        return self

    def stop(self) -> None:
        self.token_server.stop()
        self.metadata_server.stop()

    @property
    def token_uri(self) -> str:
        return f"{self.token_server.url}/token"

    @property
    def metadata_host(self) -> str:
        """host:port, the form GCE_METADATA_HOST and GCE_METADATA_IP take."""
        return f"127.0.0.1:{self.metadata_server.port}"

    def metadata_env(self) -> dict[str, str]:
        """Env that points google-auth at the metadata double.

        google-auth reads GCE_METADATA_HOST once, at import of
        google.auth.compute_engine._metadata; in-process tests must also patch
        `_metadata._GCE_METADATA_HOST` (GCE_METADATA_IP is read per call).
        """
        return {"GCE_METADATA_HOST": self.metadata_host, "GCE_METADATA_IP": self.metadata_host}

    @property
    def service_account_file(self) -> Path:
        return self.default_account.key_file

    @property
    def client_email(self) -> str:
        return self.default_account.email

    @property
    def token_faults(self) -> FaultPlan:
        return self.token_server.faults

    @property
    def metadata_faults(self) -> FaultPlan:
        return self.metadata_server.faults

    # -- accounts and tokens -------------------------------------------------------------------

    def add_service_account(self, name: str) -> ServiceAccount:
        """A new account with a fresh key pair; its key file is written under `directory`."""
        email = f"{name}@{self.project_id}.iam.gserviceaccount.com"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        key_file = self.directory / f"{name}-sa.json"
        self.directory.mkdir(parents=True, exist_ok=True)
        key_file.write_text(json.dumps(self.key_file_content(email, key_id, key)))
        account = ServiceAccount(
            email=email, key_id=key_id, public_key=key.public_key(), key_file=key_file
        )
        with self._lock:
            self._accounts[email] = account
        return account

    def key_file_content(self, email: str, key_id: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
        """A service-account JSON; with a foreign `key` it makes a tampered key file."""
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "token_uri": self.token_uri,
        }

    def account(self, email: str) -> ServiceAccount | None:
        with self._lock:
            return self._accounts.get(email)

    def issue_access_token(self, email: str, scopes: tuple[str, ...]) -> tuple[str, int]:
        token = "ya29.c." + secrets.token_urlsafe(48)
        lifetime = self.access_token_lifetime
        with self._lock:
            self._tokens[token] = IssuedToken(
                email=email, scopes=scopes, expires_at=self.clock() + lifetime
            )
        return token, lifetime

    def is_valid_access_token(self, token: str) -> bool:
        with self._lock:
            issued = self._tokens.get(token)
        return issued is not None and issued.expires_at > self.clock()

    def token_info(self, token: str) -> IssuedToken | None:
        with self._lock:
            return self._tokens.get(token)


def _invalid_grant(description: str) -> dict[str, str]:
    return {"error": "invalid_grant", "error_description": description}


class _TokenHandler(DoubleHandler):
    @property
    def double(self) -> GoogleDouble:
        return self.server.double  # type: ignore[attr-defined, no-any-return]

    def route(self) -> None:
        form = self.read_form() if self.command == "POST" else {}
        if self.command != "POST" or self.url_path != "/token":
            self.send_json(404, {"error": "not_found"})
            return
        if form.get("grant_type") != _JWT_BEARER:
            self.send_json(400, {"error": "unsupported_grant_type"})
            return
        claims = self._verified_assertion(form.get("assertion", ""))
        if claims is None:
            return
        scopes = tuple(str(claims.get("scope", "")).split())
        token, lifetime = self.double.issue_access_token(claims["iss"], scopes)
        self.send_json(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})

    def _verified_assertion(self, assertion: str) -> dict[str, Any] | None:
        """The assertion's claims, or None after answering the error Google would give."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            self.send_json(400, _invalid_grant("Invalid JWT: malformed."))
            return None
        account = self.double.account(str(unverified.get("iss", "")))
        if account is None:
            self.send_json(400, _invalid_grant("Invalid grant: account not found"))
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_AUDIENCE, self.double.token_uri],
                options={"verify_exp": False, "require": ["exp", "iat", "aud", "iss"]},
            )
        except jwt.InvalidSignatureError:
            self.send_json(400, _invalid_grant("Invalid JWT Signature."))
            return None
        except jwt.PyJWTError as e:
            self.send_json(400, _invalid_grant(f"Invalid JWT: {e}"))
            return None
        if float(claims["exp"]) <= self.double.clock():
            self.send_json(400, _invalid_grant("Invalid JWT: Token must be a short-lived token"))
            return None
        return claims


class _MetadataHandler(DoubleHandler):
    extra_headers = {"Metadata-Flavor": "Google"}  # noqa: RUF012 - read-only class constant

    @property
    def double(self) -> GoogleDouble:
        return self.server.double  # type: ignore[attr-defined, no-any-return]

    def route(self) -> None:
        # The header is the metadata server's SSRF guard; the real one answers 403 without it.
        if self.headers.get("Metadata-Flavor") != "Google":
            self.send_text(403, "Missing required header: Metadata-Flavor: Google\n")
            return
        path = self.url_path
        account = self.double.default_account
        sa_root = "/computeMetadata/v1/instance/service-accounts/"
        if path == "/":
            self.send_text(200, "computeMetadata/\n")
        elif path == "/computeMetadata/v1/project/project-id":
            self.send_text(200, self.double.project_id)
        elif path == "/computeMetadata/v1/universe/universe-domain":
            self.send_text(200, "googleapis.com")
        elif path == sa_root:
            self.send_text(200, f"default/\n{account.email}/\n")
        elif path.startswith(sa_root):
            name, _, leaf = path.removeprefix(sa_root).partition("/")
            if name not in ("default", account.email):
                self.send_text(404, "Not Found\n")
            else:
                self._service_account(account.email, leaf)
        else:
            self.send_text(404, "Not Found\n")

    def _service_account(self, email: str, leaf: str) -> None:
        if leaf == "" and self.query.get("recursive") == "true":
            info = {"aliases": ["default"], "email": email, "scopes": [_CLOUD_PLATFORM]}
            self.send_json(200, info)
        elif leaf == "email":
            self.send_text(200, email)
        elif leaf == "token":
            requested = self.query.get("scopes")
            scopes = tuple(requested.split(",")) if requested else (_CLOUD_PLATFORM,)
            token, lifetime = self.double.issue_access_token(email, scopes)
            self.send_json(
                200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
            )
        else:
            self.send_text(404, "Not Found\n")
