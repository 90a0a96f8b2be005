"""The generic provider: a static username/password read from a file, an environment variable or
a key of a source Secret in one of the configured clusters.

"Minting" only reads the source, and it does so at every ``mint`` call: a password changed in
the file, the environment or the source Secret reaches the target Secrets on the next cycle.

Values are used as they are, with one exception: a value read from a *file* loses ONE trailing
line ending (``\\n`` or ``\\r\\n``), because ``echo`` and editors add one. Nothing else is
stripped: a password may legitimately end with spaces. A value that still holds a line break or
another control character (a second trailing newline, say) is refused, since RFC 7617 allows no
control characters in Basic credentials and such a value is always a mistake in the source.

Error messages name the registry and the source (path, variable, Secret key) and say what to
fix; they never quote the value, not even a part of it.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

from rotator.config import RegistrySpec, ValueSource
from rotator.errors import ConfigError, ProviderError, RotatorError
from rotator.model import Credential
from rotator.providers import SecretReader

# A pull credential is at most a few kilobytes; a larger file is the wrong file (or a device)
# and is refused rather than read whole.
MAX_FILE_BYTES = 64 * 1024

ValueName = Literal["username", "password"]


class GenericProvider:
    """Reads a registry's username and password from their configured sources at every mint."""

    static: bool = True

    def __init__(
        self,
        spec: RegistrySpec,
        read_secret: SecretReader,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if spec.generic is None:
            raise ConfigError(
                f"registry {spec.name!r}: provider generic needs a generic: block "
                "(username or username_from, and password_from)"
            )
        self._registry = spec.name
        self._host = spec.host
        self._options = spec.generic
        self._read_secret = read_secret
        # os.environ itself, not a copy: a changed variable is seen by the next mint.
        self._environ: Mapping[str, str] = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return f"GenericProvider(registry={self._registry!r}, host={self._host!r})"

    def mint(self, now: datetime) -> list[Credential]:
        """One credential for the configured host, read fresh from its sources. Raises
        ProviderError (not retryable, unless reading a source Secret failed transiently)."""
        if self._options.username_from is not None:
            username = self._read("username", self._options.username_from)
        else:
            username = self._options.username or ""
            self._check("username", "the config (generic.username)", username)
        password = self._read("password", self._options.password_from)
        return [
            Credential(
                registry=self._registry,
                host=self._host,
                username=username,
                password=password,
                issued_at=now,
                expires_at=None,
            )
        ]

    # -- sources --------------------------------------------------------------------------------

    def _read(self, name: ValueName, source: ValueSource) -> str:
        if source.file is not None:
            where = f"file {source.file} (generic.{name}_from.file)"
            value = _strip_one_line_ending(
                self._decode(name, where, self._read_file(name, where, source.file))
            )
        elif source.env is not None:
            where = f"environment variable {source.env} (generic.{name}_from.env)"
            env_value = self._environ.get(source.env)
            if env_value is None:
                raise self._error(
                    name,
                    where,
                    "it is not set",
                    "set it in the rotator's environment (the Deployment's env or envFrom) or "
                    f"correct generic.{name}_from.env",
                )
            value = env_value
        elif source.secret is not None:
            ref = source.secret
            where = (
                f"key {ref.key!r} of Secret {ref.namespace}/{ref.name} in cluster {ref.cluster!r} "
                f"(generic.{name}_from.secret)"
            )
            try:
                raw = self._read_secret(
                    cluster=ref.cluster, namespace=ref.namespace, name=ref.name, key=ref.key
                )
            except RotatorError as exc:
                # The reader already said what went wrong (missing, forbidden, unreachable);
                # keep its retryable flag so a flaky API server is retried, RBAC is not.
                raise ProviderError(
                    f"registry {self._registry!r}: cannot read the {name} from {where}: "
                    f"{exc.message}",
                    retryable=exc.retryable,
                ) from exc
            value = self._decode(name, where, raw)
        else:  # ValueSource's validator rules this out; kept for a clear message, not a crash
            raise ConfigError(f"generic.{name}_from: set exactly one of file, env or secret")
        self._check(name, where, value)
        return value

    def _read_file(self, name: ValueName, where: str, path: Path) -> bytes:
        fix = f"correct generic.{name}_from.file or mount the file there"
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError as exc:
            raise self._error(name, where, "no such file", fix) from exc
        except IsADirectoryError as exc:
            raise self._error(name, where, "it is a directory", fix) from exc
        except PermissionError as exc:
            raise self._error(
                name, where, "permission denied", "make it readable by the rotator's user"
            ) from exc
        except OSError as exc:
            raise self._error(name, where, exc.strerror or type(exc).__name__, fix) from exc
        if len(raw) > MAX_FILE_BYTES:
            raise self._error(
                name,
                where,
                f"it is larger than {MAX_FILE_BYTES // 1024} KiB",
                f"point generic.{name}_from.file at a file that holds only the {name}",
            )
        return raw

    # -- checks ---------------------------------------------------------------------------------

    def _decode(self, name: ValueName, where: str, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        # Raised outside the handler so that no context is attached: a UnicodeDecodeError holds
        # the whole value and its repr shows it.
        raise self._error(name, where, "it is not valid UTF-8", f"store the {name} as UTF-8 text")

    def _check(self, name: ValueName, where: str, value: str) -> None:
        if not value.strip():
            raise self._error(
                name,
                where,
                "the value is empty or only whitespace",
                f"put the {name} there (one trailing newline of a file is ignored)",
            )
        # os.environ smuggles undecodable bytes in as lone surrogates, which UTF-8 cannot encode.
        if any(unicodedata.category(char) == "Cs" for char in value):
            raise self._error(
                name, where, "it is not valid UTF-8", f"store the {name} as UTF-8 text"
            )
        if any(unicodedata.category(char) == "Cc" for char in value):
            raise self._error(
                name,
                where,
                "the value contains a line break or another control character (after removing "
                "one trailing newline of a file)",
                "remove it; a second trailing newline or a stray tab is the usual cause",
            )
        if name == "username" and ":" in value:
            # The .dockerconfigjson "auth" field is base64("user:password"), split on the first
            # colon, so a colon in the username cannot be represented.
            raise self._error(
                name, where, "the username contains ':'", "use a username without ':'"
            )

    def _error(self, name: ValueName, where: str, problem: str, fix: str) -> ProviderError:
        return ProviderError(
            f"registry {self._registry!r}: cannot read the {name} from {where}: {problem}; {fix}",
            retryable=False,
        )


def _strip_one_line_ending(value: str) -> str:
    """Remove one trailing ``\\n`` or ``\\r\\n`` and nothing else (see the module docstring)."""
    if value.endswith("\r\n"):
        return value[:-2]
    return value.removesuffix("\n")


def create(spec: RegistrySpec, read_secret: SecretReader) -> GenericProvider:
    """The factory ``rotator.providers.create_provider`` calls for ``provider: generic``."""
    return GenericProvider(spec, read_secret)
