"""The contract every provider passes (generic now; ECR, ACR and GAR later).

Call these from each provider's test module with a provider built on fakes of its seam::

    creds = check_provider_contract(provider, NOW)
    error = check_failure_contract(lambda: provider_with_bad_secret, canary=SECRET)

Test passwords and canaries must be distinctive strings (``canary-...``), so that finding one in
a ``repr`` or a message cannot be a coincidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from rotator.errors import ProviderError
from rotator.model import Credential
from rotator.providers import Provider


def _is_utc(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def check_provider_contract(
    provider: Provider,
    now: datetime,
    *,
    registry: str | None = None,
    secrets: Iterable[str] = (),
) -> list[Credential]:
    """Mint once and check what every provider promises; returns the credentials for further
    provider-specific assertions. ``registry``: the config name every credential must carry.
    ``secrets``: inputs of the provider (keys, client secrets) that must not show in its repr."""
    assert _is_utc(now), "the test must pass a timezone-aware UTC now"
    assert isinstance(getattr(provider, "static", None), bool), "provider.static must be a bool"

    creds = provider.mint(now)

    assert isinstance(creds, list), f"mint must return a list, got {type(creds).__name__}"
    assert creds, "mint must return at least one credential"
    hosts = [c.host for c in creds]
    assert len(hosts) == len(set(hosts)), f"hosts must be unique, got {hosts}"
    for cred in creds:
        assert isinstance(cred, Credential), f"not a Credential: {type(cred).__name__}"
        for field in ("registry", "host", "username", "password"):
            value = getattr(cred, field)
            assert isinstance(value, str), f"{field} must be a str"
            assert value, f"{field} must not be empty (host {cred.host!r})"
        if registry is not None:
            assert cred.registry == registry
        shown = repr(cred)
        assert "password=" not in shown, "Credential.repr must not show the password field"
        assert cred.password not in shown, f"the password appears in repr: {cred.host}"
        assert cred.password not in repr(creds), "the password appears in repr of the list"
        assert cred.issued_at == now, "issued_at must be the now passed to mint"
        assert _is_utc(cred.issued_at), "issued_at must be timezone-aware UTC"
        if cred.expires_at is not None:
            assert _is_utc(cred.expires_at), "expires_at must be timezone-aware UTC"
            assert cred.expires_at > cred.issued_at, "expires_at must be after issued_at"
    for secret in (*secrets, *(c.password for c in creds)):
        assert secret not in repr(provider), "the provider's repr shows a secret"
    return creds


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception linked to it, by ``from`` or by being raised while handling
    it, even a context hidden by ``from None``: error reporters keep those too."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return seen


def check_failure_contract(
    make_failing_provider: Callable[[], Provider],
    canary: str,
    *,
    now: datetime | None = None,
    retryable: bool | None = None,
) -> ProviderError:
    """Build a provider whose source or identity system fails while ``canary`` (a secret it was
    given or was served) is in play, mint, and check the failure: a ProviderError with a bool
    ``retryable`` (equal to ``retryable`` when given), a message, and the canary nowhere in the
    message, the repr, the chained causes or the provider's repr. Returns the error."""
    moment = now or datetime(2030, 1, 1, tzinfo=UTC)
    provider = make_failing_provider()
    with pytest.raises(ProviderError) as caught:
        provider.mint(moment)
    error = caught.value

    assert isinstance(error.retryable, bool), "ProviderError.retryable must be a bool"
    if retryable is not None:
        assert error.retryable is retryable, f"retryable is {error.retryable}, want {retryable}"
    assert error.message.strip(), "a ProviderError needs a message saying what to fix"
    for link in _chain(error):
        for text in (str(link), repr(link), *(str(arg) for arg in link.args)):
            assert canary not in text, f"the canary leaks through {type(link).__name__}"
    assert canary not in repr(provider), "the provider's repr shows the canary"
    return error
