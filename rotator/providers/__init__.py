"""Provider adapters: one module per identity system, loaded lazily by name so a deployment
that uses only ECR never imports azure-identity or google-auth.

Every provider keeps its SDK behind a narrow seam, catches the SDK's exceptions at its edge and
re-raises them as ``ProviderError(..., retryable=...)`` ``from`` the original.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from rotator.config import RegistrySpec
from rotator.model import Credential


class SecretReader(Protocol):
    """Reads one key of a Secret in a configured cluster (a generic provider's source)."""

    def __call__(self, *, cluster: str, namespace: str, name: str, key: str) -> bytes: ...


class Provider(Protocol):
    """Mints pull credentials for one configured registry."""

    # True when "minting" only reads a stored value: such providers are read before planning
    # (it costs nothing) so that a changed source can be noticed.
    static: bool

    def mint(self, now: datetime) -> list[Credential]:
        """Fresh credentials, ``issued_at`` = now. Raises ProviderError."""
        ...


ProviderFactory = Callable[[RegistrySpec, SecretReader], Provider]

_MODULES = {
    "generic": "rotator.providers.generic",
}


def create_provider(spec: RegistrySpec, read_secret: SecretReader) -> Provider:
    """The provider for a registry; its module (and SDK) is imported only now."""
    module = importlib.import_module(_MODULES[spec.provider])
    factory: ProviderFactory = module.create
    return factory(spec, read_secret)
