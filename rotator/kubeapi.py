"""The lean HTTP path to a Kubernetes API server, and the one place its errors are translated.

Requests go through the ``ApiClient``'s own ``param_serialize`` (URL, auth headers, token
refresh hooks) and ``call_api`` (its urllib3 pool, TLS settings, proxy), but bodies are plain
dicts and responses are ``json.loads``-ed bytes: the generated models' validation and
deserialization cost more than the HTTP round trip on loopback. ``send`` is the bare call the
benchmark's floor uses, so both sides share the client, the pool and the timeout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from rotator.errors import ClusterError, PermissionDenied, WriteConflict, truncate_body

# (connect, read) seconds. Connecting to an API server is quick or hopeless; a LIST of every
# managed Secret of a large cluster may take a while to stream.
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
Timeout = float | tuple[float, float]
Query = Sequence[tuple[str, str]]
_JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
_REDACTED = "<redacted>"
# Validation messages quote the rejected value (`data[x]: Invalid value: "..."`); the API
# server redacts .dockerconfigjson itself, but other data keys are echoed, so never trust that.
_INVALID_VALUE = re.compile(r'(Invalid value: )("(?:[^"\\]|\\.)*"|\S+)')
_VERB_OF_METHOD = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}


class Limiter(Protocol):
    def acquire(self) -> float: ...


class ApiConflict(WriteConflict):
    """A 409 from the API server. ``reason`` is the Status reason: ``AlreadyExists`` when a
    create met a same-name object, ``Conflict`` when a replace carried a stale resourceVersion."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a request does, for error messages: ``list secrets in all namespaces``."""

    cluster: str
    method: str
    path: str
    resource: str
    namespace: str | None = None  # None: cluster-wide (or a cluster-scoped resource)
    name: str | None = None
    verb: str | None = None  # RBAC verb; derived from the method when not given

    @property
    def rbac_verb(self) -> str:
        return self.verb or _VERB_OF_METHOD.get(self.method, self.method.lower())

    @property
    def scope(self) -> str:
        return f"in namespace {self.namespace!r}" if self.namespace else "in all namespaces"

    def describe(self) -> str:
        what = f"{self.resource}/{self.name}" if self.name else self.resource
        return f"cluster {self.cluster!r}: {self.rbac_verb} {what} {self.scope}"


def send(
    client: kubernetes.client.ApiClient,
    method: str,
    path: str,
    *,
    query: Query = (),
    body: dict[str, Any] | None = None,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> tuple[int, bytes]:
    """One bare request with the client's auth, TLS and pool; returns (status, raw body).

    Raises the client's ApiException (TLS failures) and urllib3 errors unchanged.
    """
    method, url, headers, _, _ = client.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query) or None,
        header_params=dict(_JSON_HEADERS),
        auth_settings=["BearerToken"],
    )
    # The body goes straight to the REST layer (which json.dumps it): param_serialize would
    # walk it through sanitize_for_serialization for nothing.
    response = client.call_api(method, url, headers, body, None, _request_timeout=timeout)
    data = response.read()  # type: ignore[no-untyped-call]  # RESTResponse.read is unannotated
    return int(response.status), bytes(data)


class KubeApi:
    """A cluster's API server, rate limited, with errors mapped onto the RotatorError tree."""

    def __init__(
        self,
        cluster: str,
        client: kubernetes.client.ApiClient,
        limiter: Limiter,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.limiter = limiter
        self.timeout = timeout

    def _exchange(
        self, request: Request, query: Query, body: dict[str, Any] | None
    ) -> tuple[int, bytes]:
        self.limiter.acquire()
        try:
            return send(
                self.client,
                request.method,
                request.path,
                query=query,
                body=body,
                timeout=self.timeout,
            )
        except ApiException as exc:  # the client turns TLS failures into status-0 exceptions
            reason = str(exc.reason or "")
            broken_trust = "CERTIFICATE_VERIFY_FAILED" in reason
            raise ClusterError(
                f"{request.describe()}: TLS handshake with the API server failed "
                f"({truncate_body(reason)}); check the cluster's certificate-authority",
                retryable=not broken_trust,
            ) from exc
        except ConfigException as exc:  # an exec plugin or token file failed on refresh
            raise ClusterError(
                f"{request.describe()}: refreshing the cluster credentials failed "
                f"({truncate_body(str(exc))})",
                retryable=True,
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            # MaxRetryError wraps what actually happened (refused, timed out, reset).
            cause = getattr(exc, "reason", None)
            what = type(cause if isinstance(cause, Exception) else exc).__name__
            raise ClusterError(
                f"{request.describe()}: API server unreachable or too slow ({what})",
                retryable=True,
            ) from exc

    def call(
        self,
        request: Request,
        *,
        query: Query = (),
        body: dict[str, Any] | None = None,
        redact: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Send ``request`` and return the decoded JSON of a 2xx answer; else raise.

        ``redact``: strings (secret values) that must never appear in an error message.
        """
        status, raw = self._exchange(request, query, body)
        if 200 <= status < 300:
            return _decode(request, status, raw)
        raise error_for(request, status, raw, redact=redact)

    def call_optional(self, request: Request, *, query: Query = ()) -> dict[str, Any] | None:
        """Like ``call`` for a read, but a 404 answers None."""
        status, raw = self._exchange(request, query, None)
        if status == 404:
            return None
        if 200 <= status < 300:
            return _decode(request, status, raw)
        raise error_for(request, status, raw)


def _decode(request: Request, status: int, raw: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise ClusterError(
            f"{request.describe()}: the API server answered {status} with a body that is not JSON"
        ) from exc
    if not isinstance(decoded, dict):
        raise ClusterError(
            f"{request.describe()}: the API server answered {status} with JSON "
            "that is not an object"
        )
    return decoded


def _status(raw: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove quoted rejected values and every known secret string from a server message."""
    for value in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(value, _REDACTED)
    return _INVALID_VALUE.sub(lambda m: m.group(1) + _REDACTED, text)


def secret_forms(data: Mapping[str, bytes], encoded: Mapping[str, str]) -> Iterator[str]:
    """Every form in which the data being written could be echoed back by the server.

    A generator: it only runs when an error message has to be scrubbed, never on success.
    """
    yield from encoded.values()
    for raw in data.values():
        text = raw.decode("utf-8", "replace")
        yield text
        try:
            stack: list[Any] = [json.loads(text)]
        except ValueError:
            continue
        while stack:  # the auth, password and token leaves of a .dockerconfigjson
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, str) and len(node) >= 6:
                yield node


def _rbac_hint(request: Request) -> str:
    if request.namespace:
        grant = f"a Role and RoleBinding in namespace {request.namespace!r} (or a ClusterRole)"
    else:
        grant = "a ClusterRole and ClusterRoleBinding"
    return (
        f'missing RBAC rule: apiGroups [""], resources [{request.resource!r}], '
        f"verbs [{request.rbac_verb!r}]; grant it to the rotator's identity with {grant}"
    )


def error_for(
    request: Request, status: int, raw: bytes, *, redact: Iterable[str] = ()
) -> ClusterError:
    """The RotatorError for a non-2xx answer; the server's message is scrubbed and truncated."""
    body = _status(raw)
    reason = str(body.get("reason") or "")
    said = scrub(str(body.get("message") or raw.decode("utf-8", "replace")), redact)
    quoted = truncate_body(said)
    details = body.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    terminating = isinstance(causes, list) and any(
        isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes
    )
    where = request.describe()
    if status == 403:
        if terminating:
            return ClusterError(
                f"{where}: namespace {request.namespace!r} is being deleted; nothing can be "
                "created in it",
                retryable=False,
            )
        return PermissionDenied(f"{where}: forbidden (403); {_rbac_hint(request)}")
    if status == 409:
        reason = reason or ("AlreadyExists" if request.method == "POST" else "Conflict")
        return ApiConflict(f"{where}: conflict (409 {reason}): {quoted}", reason=reason)
    message, retryable = _explain(status, quoted)
    return ClusterError(f"{where}: {message}", retryable=retryable)


def _explain(status: int, quoted: str) -> tuple[str, bool]:
    """Message and retryable flag of the answers that need no more than the status."""
    if status == 401:
        return (
            "the API server rejected the credentials (401); check the kubeconfig user or the "
            "service-account token",
            False,
        )
    if status == 404:
        return f"not found (404): {quoted}; the namespace or object is gone", False
    if status in (400, 422):
        return f"rejected by the API server ({status}): {quoted}", False
    return f"API server answered {status}: {quoted}", status == 429 or status >= 500
