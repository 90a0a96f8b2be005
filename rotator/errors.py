"""The rotator's error tree. Every SDK or HTTP exception is caught at an adapter edge and
re-raised as one of these with ``from``, carrying a message that says what the user should fix.

::

    RotatorError                      retryable? exit code
    ├── ConfigError                   no         2  bad config or usage (carries the key path)
    ├── ProviderError                 either     3 if retryable, else 4 (provider rejected us)
    ├── VerificationError             either     3 if retryable, else 5 (registry rejected it)
    ├── ClusterError                  either     3  API server unreachable, throttled, failed
    │   ├── PermissionDenied          no         3  RBAC forbids what the config asks for
    │   └── WriteConflict             yes        3  resourceVersion conflicts outlasted retries
    └── PolicyRefusal                 no         6  e.g. a same-name Secret the rotator does not own

No message in this tree may contain a token, a password or ``.dockerconfigjson`` content; bodies
of remote error responses are truncated before they are quoted.
"""

from __future__ import annotations

from enum import IntEnum

MAX_QUOTED_BODY = 200


class ExitCode(IntEnum):
    """Documented exit codes of ``rotator rotate --now`` and ``rotator check-config``."""

    OK = 0
    INTERNAL = 1
    CONFIG = 2
    TRANSIENT = 3
    PROVIDER_REJECTED = 4
    REGISTRY_REJECTED = 5
    REFUSED = 6


class RotatorError(Exception):
    """Base of every error the rotator raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.TRANSIENT


class ConfigError(RotatorError):
    """The configuration (or a command-line argument) is invalid."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message, retryable=False)
        self.path = path

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.CONFIG


class ProviderError(RotatorError):
    """Minting a credential failed: the identity system refused us or could not be reached."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.TRANSIENT if self.retryable else ExitCode.PROVIDER_REJECTED


class VerificationError(RotatorError):
    """The registry handshake failed: the credential was rejected, or the registry was
    unreachable (retryable)."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.TRANSIENT if self.retryable else ExitCode.REGISTRY_REJECTED


class ClusterError(RotatorError):
    """Talking to a cluster's API server failed."""

    retryable = True


class PermissionDenied(ClusterError):
    """The API server answered 403: the rotator's identity lacks an RBAC permission."""

    retryable = False


class WriteConflict(ClusterError):
    """The Secret kept changing under us (409) for longer than the bounded retries."""


class PolicyRefusal(RotatorError):
    """A safety rule forbids the write (for example, the Secret is not owned by the rotator)."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REFUSED


def truncate_body(body: bytes | str, limit: int = MAX_QUOTED_BODY) -> str:
    """A remote error body, shortened so that an echoed credential cannot be quoted in full."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
