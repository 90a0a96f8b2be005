"""The registry handshake against the real distribution registry: Basic (htpasswd) and Bearer
(token server with per-user ACLs), over TLS signed by the test CA, with `team/app:v1` pushed."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from rotator.config import ProbeSpec, VerifySpec
from rotator.errors import VerificationError
from rotator.verifier import Verifier
from tests.world.procs import free_port
from tests.world.pytest_registry import RegistryWorld
from tests.world.tokenserver import TokenServer

pytestmark = pytest.mark.integration

BOTH = pytest.mark.parametrize("world_name", ["basic_registry", "token_registry"])


@pytest.fixture
def world(request: pytest.FixtureRequest, world_name: str) -> RegistryWorld:
    return request.getfixturevalue(world_name)  # type: ignore[no-any-return]


def _spec(world: RegistryWorld, *, reference: str | None = None, **kwargs: object) -> VerifySpec:
    probe = ProbeSpec(repository=world.repo, reference=reference or world.tag)
    return VerifySpec.model_validate(
        {"probe": probe, "ca_bundle": world.ca_path, "timeout_seconds": 5.0, **kwargs}
    )


def _rejection(spec: VerifySpec, username: str, password: str, host: str) -> VerificationError:
    with Verifier(spec) as verifier, pytest.raises(VerificationError) as caught:
        verifier.verify(username, password, host)
    return caught.value


def _token_server(world: RegistryWorld) -> TokenServer:
    assert world.registry.token_server is not None
    return world.registry.token_server


@BOTH
def test_good_credential_passes_handshake_and_probe(world: RegistryWorld) -> None:
    with Verifier(_spec(world)) as verifier:
        verifier.verify(world.puller.username, world.puller.password, world.host)


@BOTH
def test_good_credential_passes_without_probe(world: RegistryWorld) -> None:
    with Verifier(_spec(world, probe=None)) as verifier:
        verifier.verify(world.puller.username, world.puller.password, world.host)


@BOTH
def test_probe_by_digest_passes(world: RegistryWorld) -> None:
    with Verifier(_spec(world, reference=world.digest)) as verifier:
        verifier.verify(world.puller.username, world.puller.password, world.host)


def test_bearer_token_is_asked_for_pull_on_the_probe_repository_only(
    token_registry: RegistryWorld,
) -> None:
    server = _token_server(token_registry)
    name = f"scope-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    token_registry.registry.add_user(name, password, {"team/*": ["pull"]})
    with Verifier(_spec(token_registry)) as verifier:
        verifier.verify(name, password, token_registry.host)
    with Verifier(_spec(token_registry, probe=None)) as verifier:
        verifier.verify(name, password, token_registry.host)
    asked = [t.requested for t in server.issued if t.subject == name]
    assert asked == [("repository:team/app:pull",), ()]


@BOTH
def test_wrong_password_is_rejected_and_never_quoted(world: RegistryWorld) -> None:
    canary = "canary-" + secrets.token_hex(8)
    error = _rejection(_spec(world), world.puller.username, canary, world.host)
    assert error.retryable is False
    assert "rejected" in str(error)
    assert "username or password" in str(error)
    assert canary not in str(error)
    assert canary not in repr(error)


def test_wrong_password_on_bearer_is_refused_at_the_token_endpoint(
    token_registry: RegistryWorld,
) -> None:
    error = _rejection(
        _spec(token_registry), token_registry.puller.username, "wrong", token_registry.host
    )
    assert error.retryable is False
    assert str(error).startswith(f"token endpoint {_token_server(token_registry).realm} rejected")


def test_user_without_pull_right_is_rejected_by_the_probe(token_registry: RegistryWorld) -> None:
    outsider = token_registry.outsider
    assert outsider is not None
    error = _rejection(
        _spec(token_registry), outsider.username, outsider.password, token_registry.host
    )
    assert error.retryable is False
    assert "credential authenticates but cannot pull team/app:v1" in str(error)


def test_user_without_pull_right_passes_when_no_probe_is_configured(
    token_registry: RegistryWorld,
) -> None:
    # The documented limit: without a probe the handshake proves authentication only.
    outsider = token_registry.outsider
    assert outsider is not None
    with Verifier(_spec(token_registry, probe=None)) as verifier:
        verifier.verify(outsider.username, outsider.password, token_registry.host)


@BOTH
def test_missing_probe_tag_is_rejected_as_not_found(world: RegistryWorld) -> None:
    error = _rejection(
        _spec(world, reference="no-such-tag"),
        world.puller.username,
        world.puller.password,
        world.host,
    )
    assert error.retryable is False
    assert "probe image team/app:no-such-tag not found" in str(error)


def test_unreachable_port_is_retryable(basic_registry: RegistryWorld) -> None:
    host = f"127.0.0.1:{free_port()}"
    error = _rejection(_spec(basic_registry), "puller", "whatever", host)
    assert error.retryable is True
    assert "cannot connect" in str(error)


@BOTH
def test_registry_signed_by_an_untrusted_ca_is_a_non_retryable_tls_failure(
    world: RegistryWorld,
) -> None:
    error = _rejection(
        _spec(world, ca_bundle=None), world.puller.username, world.puller.password, world.host
    )
    assert error.retryable is False
    assert "TLS certificate not trusted" in str(error)
    assert "verify.ca_bundle" in str(error)


def test_endpoint_override_is_where_the_handshake_runs(basic_registry: RegistryWorld) -> None:
    spec = _spec(basic_registry, endpoint=basic_registry.url)
    with Verifier(spec) as verifier:
        verifier.verify(
            basic_registry.puller.username, basic_registry.puller.password, "registry.invalid"
        )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (not even a TLS handshake)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_registry_that_never_answers_times_out_retryably(
    basic_registry: RegistryWorld, silent_port: int
) -> None:
    spec = _spec(basic_registry, timeout_seconds=0.3)
    error = _rejection(spec, "puller", "whatever", f"127.0.0.1:{silent_port}")
    assert error.retryable is True
    assert "no answer within 0.3s" in str(error)


@BOTH
def test_one_verifier_serves_several_threads(world: RegistryWorld) -> None:
    failures: list[BaseException] = []
    lock = threading.Lock()

    def check(_: int) -> None:
        try:
            verifier.verify(world.puller.username, world.puller.password, world.host)
        except VerificationError as exc:
            with lock:
                failures.append(exc)

    with Verifier(_spec(world)) as verifier, ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(check, range(12)))
    assert failures == []


def test_environment_proxies_and_ca_variables_change_nothing(
    basic_registry: RegistryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, "/nonexistent/ca.pem")
    with Verifier(_spec(basic_registry)) as verifier:
        verifier.verify(
            basic_registry.puller.username, basic_registry.puller.password, basic_registry.host
        )
