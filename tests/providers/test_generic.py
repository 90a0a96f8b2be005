"""The generic provider: username/password from a file, an environment variable or a source
Secret (through a fake of our own SecretReader protocol; the real-cluster read is an integration
test). No network."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rotator.config import RegistrySpec
from rotator.errors import ClusterError, PermissionDenied, ProviderError
from rotator.model import Credential
from rotator.providers import create_provider
from rotator.providers.generic import MAX_FILE_BYTES, GenericProvider
from tests.providers.contract import check_failure_contract, check_provider_contract

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
# Ends with spaces on purpose: those are part of the password and must survive.
CANARY = "canary-s3cr3t-Zq9  "
SECRET_REF = {"cluster": "hub", "namespace": "ops", "name": "harbor-robot", "key": "password"}


@dataclass
class FakeSecretReader:
    """Our SecretReader protocol over a dict; records the reads it served."""

    values: dict[tuple[str, str, str, str], bytes] = field(default_factory=dict)
    error: Exception | None = None
    reads: list[tuple[str, str, str, str]] = field(default_factory=list)

    def __call__(self, *, cluster: str, namespace: str, name: str, key: str) -> bytes:
        self.reads.append((cluster, namespace, name, key))
        if self.error is not None:
            raise self.error
        try:
            return self.values[(cluster, namespace, name, key)]
        except KeyError:
            raise ClusterError(
                f"Secret {namespace}/{name} in cluster {cluster!r} has no key {key!r}",
                retryable=False,
            ) from None

    def put(self, value: bytes, **ref: str) -> None:
        merged = {**SECRET_REF, **ref}
        self.values[(merged["cluster"], merged["namespace"], merged["name"], merged["key"])] = value


def make_spec(password_from: dict[str, Any], **generic: Any) -> RegistrySpec:
    options: dict[str, Any] = {"password_from": password_from, **generic}
    if "username_from" not in options:
        options.setdefault("username", "robot")
    return RegistrySpec.model_validate(
        {"name": "harbor", "provider": "generic", "host": "harbor.example:8443", "generic": options}
    )


def make_provider(
    password_from: dict[str, Any],
    *,
    reader: FakeSecretReader | None = None,
    environ: dict[str, str] | None = None,
    **generic: Any,
) -> GenericProvider:
    return GenericProvider(
        make_spec(password_from, **generic),
        reader or FakeSecretReader(),
        environ={} if environ is None else environ,
    )


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


# -- the shared contract ----------------------------------------------------------------------


def test_file_source_passes_the_provider_contract(tmp_path: Path) -> None:
    path = write(tmp_path / "password", CANARY + "\n")
    creds = check_provider_contract(
        make_provider({"file": str(path)}), NOW, registry="harbor", secrets=[CANARY]
    )
    assert len(creds) == 1
    cred = creds[0]
    assert (cred.registry, cred.host, cred.username) == ("harbor", "harbor.example:8443", "robot")
    assert cred.password == CANARY
    assert cred.issued_at == NOW
    assert cred.expires_at is None


def test_env_source_passes_the_provider_contract() -> None:
    provider = make_provider({"env": "HARBOR_PASSWORD"}, environ={"HARBOR_PASSWORD": CANARY})
    [cred] = check_provider_contract(provider, NOW, registry="harbor")
    assert cred.password == CANARY


def test_secret_source_passes_the_provider_contract_and_reads_the_configured_key() -> None:
    reader = FakeSecretReader()
    reader.put(CANARY.encode())
    provider = make_provider({"secret": SECRET_REF}, reader=reader)
    [cred] = check_provider_contract(provider, NOW, registry="harbor")
    assert cred.password == CANARY
    assert reader.reads == [("hub", "ops", "harbor-robot", "password")]


def test_the_provider_is_static() -> None:
    assert GenericProvider.static is True
    assert make_provider({"env": "P"}).static is True


# -- where values come from ---------------------------------------------------------------------


def test_username_can_come_from_a_file_an_env_var_or_a_secret(tmp_path: Path) -> None:
    reader = FakeSecretReader()
    reader.put(b"robot$from-secret", key="username")
    reader.put(CANARY.encode())
    environ = {"HARBOR_USER": "robot$from-env", "HARBOR_PASSWORD": CANARY}
    user_file = write(tmp_path / "username", "robot$from-file\n")
    cases = {
        "robot$from-file": {"file": str(user_file)},
        "robot$from-env": {"env": "HARBOR_USER"},
        "robot$from-secret": {"secret": {**SECRET_REF, "key": "username"}},
    }
    for expected, source in cases.items():
        provider = make_provider(
            {"env": "HARBOR_PASSWORD"}, reader=reader, environ=environ, username_from=source
        )
        [cred] = check_provider_contract(provider, NOW)
        assert cred.username == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (CANARY + "\n", CANARY),
        (CANARY, CANARY),
        ("pa ss  \n", "pa ss  "),
        ("pa ss  \r\n", "pa ss  "),
        ("  leading\n", "  leading"),
        ("wörd-ünïcode\n", "wörd-ünïcode"),
    ],
    ids=["newline", "none", "spaces-kept", "crlf", "leading-spaces-kept", "unicode"],
)
def test_a_file_loses_exactly_one_trailing_newline(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = write(tmp_path / "password", content)
    [cred] = make_provider({"file": str(path)}).mint(NOW)
    assert cred.password == expected


def test_env_and_secret_values_are_taken_as_they_are() -> None:
    reader = FakeSecretReader()
    reader.put(b"trailing-spaces  ")
    [from_env] = make_provider({"env": "P"}, environ={"P": " spaced "}).mint(NOW)
    [from_secret] = make_provider({"secret": SECRET_REF}, reader=reader).mint(NOW)
    assert from_env.password == " spaced "
    assert from_secret.password == "trailing-spaces  "


def test_a_changed_file_is_read_by_the_next_mint(tmp_path: Path) -> None:
    path = write(tmp_path / "password", "canary-first\n")
    provider = make_provider({"file": str(path)})
    [first] = provider.mint(NOW)
    write(path, "canary-second\n")
    [second] = provider.mint(NOW + timedelta(minutes=1))
    assert (first.password, second.password) == ("canary-first", "canary-second")
    assert second.issued_at == NOW + timedelta(minutes=1)


def test_a_changed_env_var_or_secret_is_read_by_the_next_mint() -> None:
    environ = {"P": "canary-first"}
    reader = FakeSecretReader()
    reader.put(b"canary-first")
    from_env = make_provider({"env": "P"}, environ=environ)
    from_secret = make_provider({"secret": SECRET_REF}, reader=reader)
    assert from_env.mint(NOW)[0].password == from_secret.mint(NOW)[0].password == "canary-first"
    environ["P"] = "canary-second"
    reader.put(b"canary-second")
    assert from_env.mint(NOW)[0].password == from_secret.mint(NOW)[0].password == "canary-second"


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATOR_TEST_GENERIC_PASSWORD", "canary-from-os-environ")
    provider = GenericProvider(
        make_spec({"env": "ROTATOR_TEST_GENERIC_PASSWORD"}), FakeSecretReader()
    )
    assert provider.mint(NOW)[0].password == "canary-from-os-environ"
    monkeypatch.setenv("ROTATOR_TEST_GENERIC_PASSWORD", "canary-changed")
    assert provider.mint(NOW)[0].password == "canary-changed"


# -- failures: each names the registry and the source, says what to fix, never the value ------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    error = check_failure_contract(
        lambda: make_provider({"file": str(path)}), CANARY, retryable=False
    )
    assert error.message == (
        f"registry 'harbor': cannot read the password from file {path} "
        "(generic.password_from.file): no such file; "
        "correct generic.password_from.file or mount the file there"
    )


def test_file_source_that_is_a_directory(tmp_path: Path) -> None:
    error = check_failure_contract(
        lambda: make_provider({"file": str(tmp_path)}), CANARY, retryable=False
    )
    assert f"file {tmp_path} (generic.password_from.file): it is a directory" in error.message


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "password", CANARY)
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anyway: have the OS answer as it would for others
        real_open = Path.open

        def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", denied)
    error = check_failure_contract(
        lambda: make_provider({"file": str(path)}), CANARY, retryable=False
    )
    assert "permission denied; make it readable by the rotator's user" in error.message


def test_file_path_through_a_regular_file_reports_the_os_error(tmp_path: Path) -> None:
    parent = write(tmp_path / "not-a-dir", CANARY)
    error = check_failure_contract(
        lambda: make_provider({"file": str(parent / "password")}), CANARY, retryable=False
    )
    assert f"file {parent / 'password'} (generic.password_from.file): Not a directory" in (
        error.message
    )


@pytest.mark.parametrize("content", ["", "\n", "   \n", "\r\n"], ids=repr)
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "password", content)
    error = check_failure_contract(
        lambda: make_provider({"file": str(path)}), CANARY, retryable=False
    )
    assert "(generic.password_from.file): the value is empty or only whitespace; " in error.message
    assert "put the password there" in error.message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "password", CANARY.encode() + b"\xff\xfe")
    error = check_failure_contract(
        lambda: make_provider({"file": str(path)}), CANARY, retryable=False
    )
    assert error.message.endswith(
        "(generic.password_from.file): it is not valid UTF-8; store the password as UTF-8 text"
    )
    assert error.__cause__ is None
    assert error.__context__ is None


def test_oversized_file_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path / "password", CANARY * (MAX_FILE_BYTES // len(CANARY) + 1))
    error = check_failure_contract(
        lambda: make_provider({"file": str(path)}), CANARY, retryable=False
    )
    assert "it is larger than 64 KiB; point generic.password_from.file at a file" in error.message


@pytest.mark.parametrize(
    "content", [CANARY + "\n\n", CANARY + "\r", "canary\tpass", CANARY + "\x00"], ids=repr
)
def test_value_with_a_control_character_left(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "password", content)
    error = check_failure_contract(
        lambda: make_provider({"file": str(path)}), CANARY, retryable=False
    )
    assert "contains a line break or another control character" in error.message
    assert "a second trailing newline" in error.message


def test_unset_env_var() -> None:
    error = check_failure_contract(
        lambda: make_provider({"env": "HARBOR_PASSWORD"}, environ={"OTHER": CANARY}),
        CANARY,
        retryable=False,
    )
    assert error.message == (
        "registry 'harbor': cannot read the password from environment variable HARBOR_PASSWORD "
        "(generic.password_from.env): it is not set; set it in the rotator's environment "
        "(the Deployment's env or envFrom) or correct generic.password_from.env"
    )


@pytest.mark.parametrize("value", ["", "  "], ids=repr)
def test_empty_env_var(value: str) -> None:
    error = check_failure_contract(
        lambda: make_provider({"env": "HARBOR_PASSWORD"}, environ={"HARBOR_PASSWORD": value}),
        CANARY,
        retryable=False,
    )
    assert "environment variable HARBOR_PASSWORD (generic.password_from.env): the value is" in (
        error.message
    )


def test_env_var_with_undecodable_bytes() -> None:
    # What os.environ holds for bytes that are not UTF-8 (PEP 383 surrogateescape).
    value = (CANARY.encode() + b"\xff").decode("utf-8", "surrogateescape")
    error = check_failure_contract(
        lambda: make_provider({"env": "HARBOR_PASSWORD"}, environ={"HARBOR_PASSWORD": value}),
        CANARY,
        retryable=False,
    )
    assert "(generic.password_from.env): it is not valid UTF-8" in error.message


def test_secret_value_that_is_not_utf8() -> None:
    reader = FakeSecretReader()
    reader.put(CANARY.encode() + b"\xc3")
    error = check_failure_contract(
        lambda: make_provider({"secret": SECRET_REF}, reader=reader), CANARY, retryable=False
    )
    assert error.message == (
        "registry 'harbor': cannot read the password from key 'password' of Secret "
        "ops/harbor-robot in cluster 'hub' (generic.password_from.secret): it is not valid "
        "UTF-8; store the password as UTF-8 text"
    )


def test_empty_secret_value() -> None:
    reader = FakeSecretReader()
    reader.put(b"")
    error = check_failure_contract(
        lambda: make_provider({"secret": SECRET_REF}, reader=reader), CANARY, retryable=False
    )
    assert "(generic.password_from.secret): the value is empty" in error.message


@pytest.mark.parametrize(
    "reader_error",
    [
        ClusterError("cluster 'hub': API server unreachable; check the kubeconfig"),
        PermissionDenied("cluster 'hub': cannot get secrets in ops; grant get on secrets"),
        ClusterError("Secret ops/harbor-robot not found", retryable=False),
    ],
    ids=["transient", "forbidden", "missing"],
)
def test_secret_reader_failure_keeps_its_retryable_flag(reader_error: ClusterError) -> None:
    reader = FakeSecretReader(error=reader_error)
    error = check_failure_contract(
        lambda: make_provider({"secret": SECRET_REF}, reader=reader),
        CANARY,
        retryable=reader_error.retryable,
    )
    assert error.__cause__ is reader_error
    assert error.message == (
        "registry 'harbor': cannot read the password from key 'password' of Secret "
        f"ops/harbor-robot in cluster 'hub' (generic.password_from.secret): {reader_error.message}"
    )


def test_missing_secret_key_from_the_reader() -> None:
    reader = FakeSecretReader()
    reader.put(CANARY.encode(), key="other")
    error = check_failure_contract(
        lambda: make_provider({"secret": SECRET_REF}, reader=reader), CANARY, retryable=False
    )
    assert "has no key 'password'" in error.message


def test_secret_reader_bugs_are_not_disguised_as_provider_errors() -> None:
    reader = FakeSecretReader(error=RuntimeError("a bug in the reader"))
    with pytest.raises(RuntimeError, match="a bug in the reader"):
        make_provider({"secret": SECRET_REF}, reader=reader).mint(NOW)


def test_username_source_errors_name_the_username(tmp_path: Path) -> None:
    error = check_failure_contract(
        lambda: make_provider(
            {"env": "P"}, environ={"P": CANARY}, username_from={"file": str(tmp_path / "absent")}
        ),
        CANARY,
        retryable=False,
    )
    assert "cannot read the username from file" in error.message
    assert "correct generic.username_from.file" in error.message


def test_username_with_a_colon_is_refused() -> None:
    error = check_failure_contract(
        lambda: make_provider(
            {"env": "P"}, environ={"P": CANARY, "U": "robot:x"}, username_from={"env": "U"}
        ),
        CANARY,
        retryable=False,
    )
    assert "environment variable U (generic.username_from.env): the username contains ':'" in (
        error.message
    )


def test_empty_literal_username_is_refused_even_if_the_config_let_it_through() -> None:
    # The config refuses it too; the provider does not rely on that (specs can be copied).
    spec = make_spec({"env": "P"})
    assert spec.generic is not None
    spec = spec.model_copy(update={"generic": spec.generic.model_copy(update={"username": ""})})
    error = check_failure_contract(
        lambda: GenericProvider(spec, FakeSecretReader(), environ={"P": CANARY}),
        CANARY,
        retryable=False,
    )
    assert "cannot read the username from the config (generic.username): the value is" in (
        error.message
    )


# -- loading --------------------------------------------------------------------------------------


def test_create_provider_loads_the_generic_provider_by_name(tmp_path: Path) -> None:
    reader = FakeSecretReader()
    reader.put(CANARY.encode())
    provider = create_provider(make_spec({"secret": SECRET_REF}), reader)
    assert isinstance(provider, GenericProvider)
    check_provider_contract(provider, NOW, registry="harbor", secrets=[CANARY])
    assert reader.reads == [("hub", "ops", "harbor-robot", "password")]


def test_provider_repr_names_the_registry_only() -> None:
    provider = make_provider({"env": "P"}, environ={"P": CANARY})
    assert repr(provider) == "GenericProvider(registry='harbor', host='harbor.example:8443')"


# -- the contract itself catches what it is for ------------------------------------------------


@dataclass
class LeakyProvider:
    """Fails mint; ``in_message`` / ``in_repr`` choose where it leaks its password."""

    password: str = field(repr=False)
    in_message: bool = False
    in_repr: bool = False
    static: bool = False

    def __repr__(self) -> str:
        return f"LeakyProvider({self.password if self.in_repr else '***'})"

    def mint(self, now: datetime) -> list[Credential]:
        try:
            raise ValueError(f"SDK says: bad token {self.password}")
        except ValueError:
            detail = self.password if self.in_message else "bad token"
            raise ProviderError(f"refused: {detail}", retryable=True) from None


def test_the_failure_contract_catches_a_secret_in_a_hidden_context() -> None:
    with pytest.raises(AssertionError, match="canary leaks through ValueError"):
        # "from None" hides the SDK error from tracebacks, but it is still the context.
        check_failure_contract(lambda: LeakyProvider(CANARY), CANARY)


def test_the_failure_contract_catches_a_leaking_message() -> None:
    with pytest.raises(AssertionError, match="canary leaks through ProviderError"):
        check_failure_contract(lambda: LeakyProvider(CANARY, in_message=True), CANARY)


def test_the_failure_contract_catches_a_leaking_provider_repr() -> None:
    class Quiet(LeakyProvider):
        def mint(self, now: datetime) -> list[Credential]:
            raise ProviderError("refused", retryable=True)

    with pytest.raises(AssertionError, match="repr shows the canary"):
        check_failure_contract(lambda: Quiet(CANARY, in_repr=True), CANARY)


def test_the_provider_contract_catches_a_naive_expiry() -> None:
    class Naive:
        static = False

        def mint(self, now: datetime) -> list[Credential]:
            naive = now.replace(tzinfo=None) + timedelta(hours=1)
            cred = Credential(
                registry="r",
                host="h",
                username="u",
                password=CANARY,
                issued_at=now,
                expires_at=naive,
            )
            return [cred]

    with pytest.raises(AssertionError, match="expires_at must be timezone-aware UTC"):
        check_provider_contract(Naive(), NOW)
