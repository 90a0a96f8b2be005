"""The registry v2 pull-auth handshake (DESIGN.md §6): proves a credential before it is written.

``GET /v2/`` → 200 (open registry) or 401 with a challenge; answer ``Basic`` with the credential
itself or ``Bearer`` with a token from the realm; ``GET /v2/`` again must answer 200. With a probe
configured, ``HEAD /v2/<repository>/manifests/<reference>`` must answer 200 too: a token server
grants the intersection of what was asked and what the user may do, so an issued token proves
authentication, not pull rights (https://distribution.github.io/distribution/spec/auth/token/).

Transport limits (TLS, CA bundle, timeouts, size cap, no env) live in ``registry_http``. Here:
no redirect is followed with credentials, except on the token endpoint to the same https origin
(3 hops at most); no credential goes to a realm that ``check_realm`` refuses. 408, 429 and 5xx
are retryable; a rejection (401/403), a missing probe image (404), a bad challenge, an unsafe
realm or a missing token are not.
"""

from __future__ import annotations

import base64
import json
import re
from types import TracebackType

import httpx

from rotator.challenge import ChallengeError, check_realm, parse_challenges, pick_challenge
from rotator.config import ProbeSpec, VerifySpec
from rotator.errors import VerificationError, truncate_body
from rotator.model import Credential
from rotator.registry_http import Answer, RegistryHTTP

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
_TOKEN_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A bearer token goes into a header: printable ASCII without spaces, nothing else.
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class Verifier:
    """The handshake for one registry's ``VerifySpec``; one HTTP client, reused and shared.

    Safe to call from several threads. ``transport`` replaces the network (unit tests only).
    """

    def __init__(self, spec: VerifySpec, *, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        self.http = RegistryHTTP(spec, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def verify_credential(self, credential: Credential) -> None:
        self.verify(credential.username, credential.password, credential.host)

    def verify(self, username: str, password: str, host: str) -> None:
        """Return if the registry accepts the credential (and it can pull the probe); else raise
        ``VerificationError``, whose ``retryable`` says whether waiting could help."""
        if ":" in username:
            raise VerificationError(
                f"username {username!r} contains ':', which Basic auth cannot carry (RFC 7617)",
                retryable=False,
            )
        if not host or any(c in host for c in "/@?#\\ "):
            raise VerificationError(f"{host!r} is not a registry host[:port]", retryable=False)
        base = (self.spec.endpoint or f"https://{host}").rstrip("/")
        _Handshake(self, base, username, password).run()


class _Handshake:
    """The state of one ``verify`` call; never shared between threads."""

    def __init__(self, verifier: Verifier, base: str, username: str, password: str) -> None:
        self.verifier = verifier
        self.base = base
        self.username = username
        raw = f"{username}:{password}".encode()
        self.basic = "Basic " + base64.b64encode(raw).decode("ascii")
        # Never quoted back, even if a remote body echoes them.
        self.hidden = [s for s in (password, self.basic.split(" ", 1)[1]) if s]

    def quote(self, answer: Answer) -> str:
        text = answer.body.decode("utf-8", "replace")
        for secret in self.hidden:
            text = text.replace(secret, "***")
        return truncate_body(text) if text.strip() else "(empty body)"

    def get(self, url: str | httpx.URL, authorization: str | None = None) -> Answer:
        headers = {"Authorization": authorization} if authorization else {}
        return self.verifier.http.send("GET", httpx.URL(url), headers)

    def head_manifest(self, url: str, authorization: str | None) -> Answer:
        # Without an Accept naming its type, an OCI manifest answers 404 MANIFEST_UNKNOWN.
        headers = {"Accept": MANIFEST_ACCEPT}
        if authorization:
            headers["Authorization"] = authorization
        return self.verifier.http.send("HEAD", httpx.URL(url), headers)

    def fail(self, answer: Answer, what: str, fix: str) -> VerificationError:
        retry = _retryable(answer.status)
        hint = "; the registry is failing or throttling, retry later" if retry else f"; {fix}"
        return VerificationError(
            f"{what} answered {answer.status}: {self.quote(answer)}{hint}", retryable=retry
        )

    def run(self) -> None:
        v2 = f"{self.base}/v2/"
        first = self.get(v2)
        authorization: str | None = None
        if first.status == 401:
            authorization = self.authorize(first)
            second = self.get(v2, authorization)
            if second.status in (401, 403) and authorization.startswith("Bearer "):
                raise VerificationError(
                    f"{self.base} refused the token its token endpoint issued to user "
                    f"{self.username!r} ({second.status}: {self.quote(second)}); the registry "
                    "and its token server disagree (service, issuer or signing certificate)",
                    retryable=False,
                )
            if second.status in (401, 403):
                raise VerificationError(
                    f"{self.base} rejected the credential of user {self.username!r} "
                    f"({second.status}: {self.quote(second)}); the username or password is "
                    "wrong, expired or revoked",
                    retryable=False,
                )
            if second.status != 200:
                raise self.fail(second, f"GET {v2}", "check verify.endpoint")
        elif first.status != 200:  # 200 without credentials: an open registry, still fine
            raise self.fail(first, f"GET {v2}", "is verify.endpoint a registry v2 API?")
        if self.verifier.spec.probe is not None:
            self.probe(self.verifier.spec.probe, authorization)

    def authorize(self, answer: Answer) -> str:
        """The Authorization value that answers the challenge of ``answer`` (a 401)."""
        header = ", ".join(answer.headers.get_list("www-authenticate"))
        where = f"{answer.url.copy_with(query=None)}"
        try:
            challenge = pick_challenge(parse_challenges(header))
            if challenge.scheme == "basic":
                return self.basic
            realm = check_realm(challenge.params.get("realm", ""))
        except ChallengeError as exc:
            shown = truncate_body(header) if header else "no WWW-Authenticate header"
            raise VerificationError(
                f"{where}: cannot answer the registry's challenge ({shown}): {exc}; "
                "credentials were not sent",
                retryable=False,
            ) from exc
        query: dict[str, str] = {}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        probe = self.verifier.spec.probe
        if probe is not None:  # without a probe, the token proves authentication only
            query["scope"] = f"repository:{probe.repository}:pull"
        return "Bearer " + self.token(httpx.URL(realm).copy_merge_params(query))

    def token(self, url: httpx.URL) -> str:
        realm = url.copy_with(query=None)
        answer = self.get(url, self.basic)
        for _ in range(_TOKEN_REDIRECTS):
            if answer.status not in _REDIRECTS:
                break
            target = url.join(answer.headers.get("location", ""))
            if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
                raise VerificationError(
                    f"token endpoint {realm} redirected to {target.copy_with(query=None)}; "
                    "credentials are only re-sent to the same https origin",
                    retryable=False,
                )
            url, answer = target, self.get(target, self.basic)
        if answer.status in (401, 403):
            raise VerificationError(
                f"token endpoint {realm} rejected user {self.username!r} ({answer.status}: "
                f"{self.quote(answer)}); the username or password is wrong, expired or revoked",
                retryable=False,
            )
        if answer.status != 200:
            raise self.fail(answer, f"token endpoint {realm}", "check the registry's auth setup")
        if not answer.complete:
            raise VerificationError(
                f"token endpoint {realm} answered more than "
                f"{self.verifier.http.max_bytes} bytes (verify.max_response_bytes)",
                retryable=False,
            )
        try:
            document = json.loads(answer.body)
        except ValueError as exc:  # body not quoted: a 200 from a token endpoint is secret
            raise VerificationError(
                f"token endpoint {realm} did not answer JSON", retryable=False
            ) from exc
        found = isinstance(document, dict) and (
            document.get("token") or document.get("access_token")
        )
        if not isinstance(found, str) or not _HEADER_SAFE.match(found):
            keys = sorted(document) if isinstance(document, dict) else type(document).__name__
            raise VerificationError(
                f"token endpoint {realm} answered no usable token or access_token (got {keys})",
                retryable=False,
            )
        self.hidden.append(found)
        return found

    def probe(self, probe: ProbeSpec, authorization: str | None) -> None:
        sep = "@" if probe.reference.startswith("sha256:") else ":"
        image = f"{probe.repository}{sep}{probe.reference}"
        url = f"{self.base}/v2/{probe.repository}/manifests/{probe.reference}"
        answer = self.head_manifest(url, authorization)
        if answer.status == 401 and authorization is None:
            # /v2/ was open but the repository is not: answer the repository's challenge.
            authorization = self.authorize(answer)
            answer = self.head_manifest(url, authorization)
        if answer.status in (401, 403):
            raise VerificationError(
                f"credential authenticates but cannot pull {image} from {self.base} "
                f"({answer.status}); grant user {self.username!r} pull on {probe.repository} "
                "or change verify.probe",
                retryable=False,
            )
        if answer.status == 404:
            raise VerificationError(
                f"probe image {image} not found on {self.base} (404); push it or change "
                "verify.probe",
                retryable=False,
            )
        if answer.status != 200:
            raise self.fail(answer, f"HEAD {url}", "check verify.probe")


def verify_credential(
    credential: Credential, spec: VerifySpec, *, transport: httpx.BaseTransport | None = None
) -> None:
    """One-shot ``Verifier(spec).verify_credential(credential)``; a long-lived caller keeps a
    ``Verifier`` per registry instead, for connection reuse."""
    with Verifier(spec, transport=transport) as verifier:
        verifier.verify_credential(credential)
