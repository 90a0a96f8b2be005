"""Fixtures for the cloud stand-ins (moto, Entra/ACR, Google) and the fault proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.world.entra import EntraDouble
from tests.world.faultproxy import FaultProxy
from tests.world.google import GoogleDouble
from tests.world.moto import MotoServer
from tests.world.tls import LocalCA, ServerCert

FaultProxyFactory = Callable[..., FaultProxy]


@pytest.fixture(scope="session")
def moto_server(world_dir: Path) -> Iterator[MotoServer]:
    server = MotoServer(log_path=world_dir / "logs" / "moto.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def entra_double(test_ca: LocalCA) -> Iterator[EntraDouble]:
    double = EntraDouble(cert=test_ca.issue("entra")).start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="session")
def google_double(world_dir: Path, test_ca: LocalCA) -> Iterator[GoogleDouble]:
    double = GoogleDouble(directory=world_dir / "google", cert=test_ca.issue("google")).start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture
def gce_metadata(google_double: GoogleDouble, monkeypatch: pytest.MonkeyPatch) -> GoogleDouble:
    """Points google-auth in this process at the metadata double, for one test.

    google-auth reads GCE_METADATA_HOST only when its _metadata module is imported, so the
    module attribute is patched as well as the environment.
    """
    from google.auth.compute_engine import _metadata  # noqa: PLC0415 - only tests that ask

    for name, value in google_double.metadata_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", google_double.metadata_host)
    return google_double


@pytest.fixture(scope="session")
def _fault_proxy_cert(test_ca: LocalCA) -> ServerCert:
    return test_ca.issue("faultproxy")


@pytest.fixture
def fault_proxy(test_ca: LocalCA, _fault_proxy_cert: ServerCert) -> Iterator[FaultProxyFactory]:
    """`fault_proxy(upstream_url, tls=True) -> FaultProxy`, started; all stopped after the test.

    The proxy serves TLS with a test-CA certificate and verifies an https upstream with the
    test CA; `tls=False` serves plain HTTP.
    """
    proxies: list[FaultProxy] = []

    def start(upstream_url: str, *, tls: bool = True) -> FaultProxy:
        proxy = FaultProxy(
            upstream_url,
            cert=_fault_proxy_cert if tls else None,
            upstream_ca=test_ca.ca_path,
        )
        proxies.append(proxy.start())
        return proxy

    try:
        yield start
    finally:
        for proxy in proxies:
            proxy.stop()


@pytest.fixture(autouse=True)
def _clear_double_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fault mode left on by one test must not fail the next one that shares the double."""
    yield
    if "entra_double" in request.fixturenames:
        request.getfixturevalue("entra_double").faults.clear()
    if "google_double" in request.fixturenames:
        google: GoogleDouble = request.getfixturevalue("google_double")
        google.token_faults.clear()
        google.metadata_faults.clear()
