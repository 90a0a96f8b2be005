"""The one HTTP client the verifier talks to registries with, and the limits it always keeps.

- TLS verification always on. ``verify.ca_bundle``, when set, is the only trust anchor for that
  registry and its token realm (else the system store); an ``ssl.SSLContext`` is built here
  because this machine's ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` must not decide it.
- ``trust_env=False``: environment proxies and CA variables do not silently change behaviour.
- No redirect is followed here; the caller decides (the verifier follows none with credentials
  except on the token endpoint, to the same https origin).
- Every request is bounded by ``verify.timeout_seconds`` (each phase, and the body as a whole)
  and every body by ``verify.max_response_bytes``: reading stops beyond it.
- httpx exceptions end here, as ``VerificationError`` raised ``from`` the original. No answer is
  retryable; an unusable URL or an untrusted certificate is not (a CA or hostname problem is
  fixed in the config, not by waiting).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from rotator.config import VerifySpec
from rotator.errors import ConfigError, VerificationError


@dataclass(frozen=True, kw_only=True)
class Answer:
    url: httpx.URL
    status: int
    headers: httpx.Headers
    body: bytes
    complete: bool  # False: the body exceeded max_response_bytes and was not read further


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    except OSError as exc:  # ssl.SSLError is an OSError: unreadable file or not PEM
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot load {ca_bundle} as a PEM CA bundle ({reason}); fix the path or the file",
            path="verify.ca_bundle",
        ) from exc


def _tls_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class RegistryHTTP:
    """An ``httpx.Client`` (connection reuse, thread-safe) wrapped in the limits above."""

    def __init__(self, spec: VerifySpec, *, transport: httpx.BaseTransport | None = None) -> None:
        self.timeout = spec.timeout_seconds
        self.max_bytes = spec.max_response_bytes
        self._client = httpx.Client(
            verify=ssl_context(spec.ca_bundle),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(spec.timeout_seconds),
            # identity: the size cap then bounds the bytes held, not a compressed stream.
            headers={"User-Agent": "rotator-verifier", "Accept-Encoding": "identity"},
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def send(self, method: str, url: httpx.URL, headers: dict[str, str]) -> Answer:
        """One request, its body read up to the cap. Messages never quote request headers."""
        started = time.monotonic()
        what = f"{method} {url.copy_with(query=None)}"
        try:
            with self._client.stream(method, url, headers=headers) as response:
                body, complete = self._read(response, started)
                return Answer(
                    url=url,
                    status=response.status_code,
                    headers=response.headers,
                    body=body,
                    complete=complete,
                )
        except httpx.TimeoutException as exc:
            raise VerificationError(
                f"{what}: no answer within {self.timeout:g}s (verify.timeout_seconds)",
                retryable=True,
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise VerificationError(f"{what}: unusable URL ({exc})", retryable=False) from exc
        except httpx.ConnectError as exc:
            tls = _tls_failure(exc)
            if tls is not None:
                raise VerificationError(
                    f"{what}: TLS certificate not trusted ({tls.verify_message or tls.reason}); "
                    "set verify.ca_bundle to the CA that signed the registry's certificate",
                    retryable=False,
                ) from exc
            raise VerificationError(f"{what}: cannot connect ({exc})", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise VerificationError(
                f"{what}: {type(exc).__name__} ({exc})", retryable=True
            ) from exc

    def _read(self, response: httpx.Response, started: float) -> tuple[bytes, bool]:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return b"", False
        if response.is_stream_consumed:  # a transport that hands over a read response
            return response.content[: self.max_bytes], len(response.content) <= self.max_bytes
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks)[: self.max_bytes], False
            # httpx bounds each read; this bounds the whole body against a slow drip.
            if time.monotonic() - started > self.timeout:
                raise httpx.ReadTimeout("the body took too long", request=response.request)
        return b"".join(chunks), True
