"""A loopback HTTPS double for Entra ID (client credentials) and the ACR token exchange.

One server plays both roles on one port: Entra under `/{tenant}/...` and the registry's token
service under `/oauth2/...`, as the two never share a path. Tokens are RS256 JWTs signed by one
key the double generates, so "was this issued by the double and is it unexpired" is a
signature and `exp` check, with `exp` judged by the injectable clock.

Protocols mimicked:
- https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
- https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md (exchange and token endpoints)
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.world.faults import DoubleHandler, FaultPlan, LoopbackServer
from tests.world.tls import ServerCert

ACR_AUDIENCE = "https://containerregistry.azure.net"
# ACR also accepts ARM-audience tokens unless the registry disables them.
ACCEPTED_EXCHANGE_AUDIENCES = frozenset({ACR_AUDIENCE, "https://management.azure.com"})
ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_ACR_ISSUER = "Azure Container Registry"


@dataclass(frozen=True, kw_only=True)
class EntraApp:
    """A registered application (service principal) and the ways it may prove itself."""

    tenant_id: str
    client_id: str
    object_id: str
    client_secret: str | None = None
    # The exact client_assertion a federated credential trusts (what AKS projects into the pod).
    federated_token: str | None = None


class EntraDouble:
    def __init__(
        self,
        *,
        cert: ServerCert,
        clock: Callable[[], float] = time.time,
        access_token_lifetime: int = 3600,
        refresh_token_lifetime: int = 3 * 3600,
        acr_access_token_lifetime: int = 3600,
    ) -> None:
        self.clock = clock
        # Lifetimes in seconds; plain attributes so a test can shorten them mid-session.
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_lifetime = refresh_token_lifetime
        self.acr_access_token_lifetime = acr_access_token_lifetime
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._apps: dict[tuple[str, str], EntraApp] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer("entra", _EntraHandler, cert=cert)
        self._server.double = self  # type: ignore[attr-defined] # handler reaches its double
        self.default_app = self.register_app()

    # -- lifecycle and addresses ---------------------------------------------------------------

    def start(self) -> EntraDouble:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def authority(self) -> str:
        """What azure-identity takes as `authority` / AZURE_AUTHORITY_HOST."""
        return self.url

    @property
    def acr_host(self) -> str:
        """The registry host whose /oauth2/exchange this double answers."""
        return f"127.0.0.1:{self._server.port}"

    @property
    def faults(self) -> FaultPlan:
        return self._server.faults

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._server.requests

    # The default app, for the common single-app test.
    @property
    def tenant_id(self) -> str:
        return self.default_app.tenant_id

    @property
    def client_id(self) -> str:
        return self.default_app.client_id

    @property
    def client_secret(self) -> str:
        assert self.default_app.client_secret is not None
        return self.default_app.client_secret

    @property
    def federated_token(self) -> str:
        assert self.default_app.federated_token is not None
        return self.default_app.federated_token

    # -- registrations and checks --------------------------------------------------------------

    def register_app(
        self,
        tenant_id: str | None = None,
        *,
        client_secret: str | None = "",
        federated_token: str | None = "",
    ) -> EntraApp:
        """Register an app; an empty string means "generate one", None means "not allowed"."""
        app = EntraApp(
            tenant_id=tenant_id or str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            client_secret=secrets.token_urlsafe(24) if client_secret == "" else client_secret,
            federated_token=(
                secrets.token_urlsafe(48) if federated_token == "" else federated_token
            ),
        )
        with self._lock:
            self._apps[(app.tenant_id, app.client_id)] = app
        return app

    def write_federated_token_file(self, path: Path, app: EntraApp | None = None) -> Path:
        token = (app or self.default_app).federated_token
        assert token is not None, "the app has no federated credential"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token)
        return path

    def app(self, tenant_id: str, client_id: str) -> EntraApp | None:
        with self._lock:
            return self._apps.get((tenant_id, client_id))

    def is_valid_access_token(self, token: str, audience: str | None = None) -> bool:
        claims = self.valid_claims(token)
        return (
            claims is not None
            and claims.get("token_use") == "entra_access"
            and (audience is None or claims.get("aud") == audience)
        )

    def is_valid_refresh_token(self, token: str, service: str | None = None) -> bool:
        """True for an unexpired ACR refresh token this double issued (for `service`, if given).

        A registry token server uses this to accept the token as the password of ACR_USERNAME.
        """
        claims = self.valid_claims(token)
        return (
            claims is not None
            and claims.get("grant_type") == "refresh_token"
            and (service is None or claims.get("aud") == service)
        )

    def decode(self, token: str) -> dict[str, Any]:
        """The claims of a token this double signed, without the expiry check."""
        return dict(
            jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_nbf": False},
            )
        )

    # -- token minting (used by the handler) ---------------------------------------------------

    def valid_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this double signed, or None if forged or expired."""
        try:
            claims = self.decode(token)
        except jwt.PyJWTError:
            return None
        if float(claims.get("exp", 0)) <= self.clock():
            return None
        return claims

    def _sign(self, claims: dict[str, Any], lifetime: int) -> str:
        now = int(self.clock())
        body = {"iat": now, "nbf": now, "exp": now + lifetime, "jti": str(uuid.uuid4()), **claims}
        return jwt.encode(body, self._key, algorithm="RS256", headers={"kid": self._kid})

    def mint_access_token(self, app: EntraApp, audience: str) -> str:
        claims = {
            "aud": audience,
            "iss": f"{self.authority}/{app.tenant_id}/v2.0",
            "tid": app.tenant_id,
            "oid": app.object_id,
            "sub": app.object_id,
            "azp": app.client_id,
            "idtyp": "app",
            "ver": "2.0",
            "token_use": "entra_access",  # not an Entra claim: tells the token kinds apart
        }
        return self._sign(claims, self.access_token_lifetime)

    def mint_refresh_token(self, entra_claims: dict[str, Any], service: str) -> str:
        claims = {
            "aud": service,
            "iss": _ACR_ISSUER,
            "sub": entra_claims["oid"],
            "tenant": entra_claims["tid"],
            "grant_type": "refresh_token",
        }
        return self._sign(claims, self.refresh_token_lifetime)

    def mint_acr_access_token(self, refresh_claims: dict[str, Any], scope: str) -> str:
        access = []
        for item in scope.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {
            "aud": refresh_claims["aud"],
            "iss": _ACR_ISSUER,
            "sub": refresh_claims["sub"],
            "grant_type": "access_token",
            "access": access,
        }
        return self._sign(claims, self.acr_access_token_lifetime)

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self._kid, "use": "sig", "alg": "RS256"}]}


def _oauth_error(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}


def _acr_error(message: str) -> dict[str, Any]:
    return {"errors": [{"code": "UNAUTHORIZED", "message": message}]}


class _EntraHandler(DoubleHandler):
    @property
    def double(self) -> EntraDouble:
        return self.server.double  # type: ignore[attr-defined, no-any-return]

    def route(self) -> None:
        parts = self.url_path.strip("/").split("/")
        if self.command == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            self._openid_configuration(parts[0])
        elif self.command == "GET" and parts[1:] == ["discovery", "v2.0", "keys"]:
            self.send_json(200, self.double.jwks())
        elif self.command == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            self._entra_token(parts[0])
        elif self.command == "POST" and parts == ["oauth2", "exchange"]:
            self._acr_exchange()
        elif self.command == "POST" and parts == ["oauth2", "token"]:
            self._acr_token()
        else:
            self.read_body()
            self.send_json(404, _oauth_error("not_found", f"no route for {self.url_path}"))

    def _openid_configuration(self, tenant: str) -> None:
        base = f"{self.double.authority}/{tenant}"
        self.send_json(
            200,
            {
                "issuer": f"{base}/v2.0",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            },
        )

    def _entra_token(self, tenant: str) -> None:
        form = self.read_form()
        if form.get("grant_type") != "client_credentials":
            self.send_json(400, _oauth_error("unsupported_grant_type", "AADSTS70003"))
            return
        app = self.double.app(tenant, form.get("client_id", ""))
        if app is None:
            description = "AADSTS700016: Application not found in the directory."
            self.send_json(400, _oauth_error("unauthorized_client", description))
            return
        if "client_assertion" in form:
            ok = (
                form.get("client_assertion_type") == _ASSERTION_TYPE
                and app.federated_token is not None
                and secrets.compare_digest(form["client_assertion"], app.federated_token)
            )
            failure = "AADSTS70021: No matching federated identity record found."
        else:
            ok = app.client_secret is not None and secrets.compare_digest(
                form.get("client_secret", ""), app.client_secret
            )
            failure = "AADSTS7000215: Invalid client secret provided."
        if not ok:
            self.send_json(401, _oauth_error("invalid_client", failure))
            return
        scopes = form.get("scope", "").split()
        resources = [s.removesuffix("/.default") for s in scopes if s.endswith("/.default")]
        if len(resources) != 1:
            description = "AADSTS1002012: client credentials need exactly one '/.default' scope."
            self.send_json(400, _oauth_error("invalid_scope", description))
            return
        lifetime = self.double.access_token_lifetime
        token = self.double.mint_access_token(app, resources[0])
        answer = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime}
        self.send_json(200, {**answer, "access_token": token})

    def _acr_exchange(self) -> None:
        form = self.read_form()
        service = form.get("service", "")
        if form.get("grant_type") != "access_token" or not service:
            self.send_json(400, _acr_error("grant_type=access_token and service are required"))
            return
        claims = self.double.valid_claims(form.get("access_token", ""))
        if claims is None or claims.get("token_use") != "entra_access":
            self.send_json(401, _acr_error("the access token is invalid or expired"))
            return
        if claims.get("aud") not in ACCEPTED_EXCHANGE_AUDIENCES:
            self.send_json(401, _acr_error(f"audience {claims.get('aud')!r} is not accepted"))
            return
        if form.get("tenant") and form["tenant"] != claims.get("tid"):
            self.send_json(401, _acr_error("the tenant does not match the access token"))
            return
        self.send_json(200, {"refresh_token": self.double.mint_refresh_token(claims, service)})

    def _acr_token(self) -> None:
        form = self.read_form()
        if form.get("grant_type") != "refresh_token":
            self.send_json(400, _acr_error("only grant_type=refresh_token is supported"))
            return
        token = form.get("refresh_token", "")
        if not self.double.is_valid_refresh_token(token, form.get("service") or None):
            self.send_json(401, _acr_error("the refresh token is invalid or expired"))
            return
        claims = self.double.decode(token)
        access = self.double.mint_acr_access_token(claims, form.get("scope", ""))
        self.send_json(200, {"access_token": access})
