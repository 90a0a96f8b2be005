""".dockerconfigjson rendering and parsing, and the change fingerprint: exact bytes, and no
secret material in errors or fingerprints."""

from __future__ import annotations

import base64
import traceback
from datetime import UTC, datetime

import pytest

from rotator.dockerconfig import (
    DockerConfigError,
    Fingerprint,
    HostAuth,
    fingerprint,
    parse,
    render,
)
from rotator.model import Credential

CANARY = "Canary-Pa55w0rd-7f3a"
CANARY_B64 = base64.b64encode(CANARY.encode()).decode()
ISSUED = datetime(2024, 5, 1, tzinfo=UTC)
SALT = b"0123456789abcdef"


def cred(
    registry: str = "harbor",
    host: str = "harbor.example.com",
    username: str = "robot",
    password: str = "s3cret",
) -> Credential:
    return Credential(
        registry=registry,
        host=host,
        username=username,
        password=password,
        issued_at=ISSUED,
        expires_at=None,
    )


def test_render_exact_bytes_for_one_host() -> None:
    assert render([cred()]) == (
        b'{"auths":{"harbor.example.com":'
        b'{"auth":"cm9ib3Q6czNjcmV0","password":"s3cret","username":"robot"}}}'
    )


def test_render_sorts_hosts_and_keeps_colons_in_passwords() -> None:
    nexus = cred("nexus", "nexus.example.com:8443", "bot", "pa:ss")
    assert render([nexus, cred()]) == (
        b'{"auths":{"harbor.example.com":'
        b'{"auth":"cm9ib3Q6czNjcmV0","password":"s3cret","username":"robot"},'
        b'"nexus.example.com:8443":'
        b'{"auth":"Ym90OnBhOnNz","password":"pa:ss","username":"bot"}}}'
    )


def test_render_is_canonical_whatever_the_input_order() -> None:
    a, b = cred(), cred("nexus", "nexus.example.com")
    assert render([a, b]) == render([b, a])


def test_render_refuses_two_credentials_for_one_host_without_quoting_them() -> None:
    with pytest.raises(DockerConfigError) as info:
        render([cred(password=CANARY), cred(registry="other", password=CANARY + "2")])
    assert str(info.value) == "two credentials for host harbor.example.com"


def test_parse_round_trips_render() -> None:
    nexus = cred("nexus", "nexus.example.com:8443", "bot", "pa:ss")
    assert parse(render([cred(), nexus])) == {
        "harbor.example.com": HostAuth(username="robot", password="s3cret"),
        "nexus.example.com:8443": HostAuth(username="bot", password="pa:ss"),
    }


def test_parse_accepts_auth_only_entries_and_splits_on_the_first_colon() -> None:
    auth = base64.b64encode(b"AWS:tok:en").decode()
    data = f'{{"auths":{{"123.dkr.ecr.eu-west-1.amazonaws.com":{{"auth":"{auth}"}}}}}}'
    assert parse(data.encode()) == {
        "123.dkr.ecr.eu-west-1.amazonaws.com": HostAuth(username="AWS", password="tok:en")
    }


def test_parse_prefers_username_and_password_over_auth() -> None:
    data = b'{"auths":{"h":{"username":"u","password":"p","auth":"eDp5"}}}'
    assert parse(data) == {"h": HostAuth(username="u", password="p")}


def test_parse_accepts_an_empty_auths_object() -> None:
    assert parse(b'{"auths":{}}') == {}


def test_host_auth_repr_hides_the_password() -> None:
    assert CANARY not in repr(HostAuth(username="robot", password=CANARY))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(f"auths: {CANARY}".encode(), "not valid JSON", id="not-json"),
        pytest.param(b"\xff" + CANARY.encode(), "not valid JSON", id="not-utf8"),
        pytest.param(f'["{CANARY}"]'.encode(), 'no "auths" object', id="json-list"),
        pytest.param(
            f'{{"credsStore":"{CANARY}"}}'.encode(), 'no "auths" object', id="missing-auths"
        ),
        pytest.param(f'{{"auths":["{CANARY}"]}}'.encode(), 'no "auths" object', id="auths-list"),
        pytest.param(
            f'{{"auths":{{"h":"{CANARY}"}}}}'.encode(), "entry for h is not an object", id="entry"
        ),
        pytest.param(
            f'{{"auths":{{"h":{{"password":"{CANARY}"}}}}}}'.encode(),
            "entry for h has neither username/password nor auth",
            id="password-without-username",
        ),
        pytest.param(
            f'{{"auths":{{"h":{{"auth":"{CANARY}!"}}}}}}'.encode(),
            "auth of h is not base64 of user:password",
            id="auth-not-base64",
        ),
        pytest.param(
            f'{{"auths":{{"h":{{"auth":"{CANARY_B64}"}}}}}}'.encode(),
            "auth of h is not base64 of user:password",
            id="auth-without-colon",
        ),
    ],
)
def test_parse_errors_never_quote_the_content(data: bytes, message: str) -> None:
    with pytest.raises(DockerConfigError) as info:
        parse(data)
    assert str(info.value) == message
    # The whole traceback, chained causes included, is what a log would show.
    formatted = "".join(traceback.format_exception(info.value))
    assert CANARY not in formatted
    assert CANARY_B64 not in formatted


def test_fingerprint_format() -> None:
    text = fingerprint([cred()], SALT)
    version, salt, parts = text.split(":")
    assert version == "v1"
    assert base64.urlsafe_b64decode(salt) == SALT
    registry, digest = parts.split("=")
    assert registry == "harbor"
    assert len(digest) == 24
    assert int(digest, 16) >= 0


def test_fingerprint_is_deterministic_for_a_salt_and_sorted_by_registry() -> None:
    a, b = cred(), cred("nexus", "nexus.example.com")
    assert fingerprint([b, a], SALT) == fingerprint([a, b], SALT)
    assert fingerprint([a, b], SALT).split(":")[2].startswith("harbor=")
    assert fingerprint([a], SALT) != fingerprint([a], b"another-salt-123")


def test_fingerprint_round_trip_matches_the_same_credential() -> None:
    a, b = cred(), cred("nexus", "nexus.example.com", "bot", "other")
    stored = Fingerprint.parse(fingerprint([a, b], SALT))
    assert stored is not None
    assert stored.salt == SALT
    assert stored.matches(a)
    assert stored.matches(b)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(cred(password="s3cret2"), id="password"),
        pytest.param(cred(username="robot2"), id="username"),
        pytest.param(cred(host="harbor2.example.com"), id="host"),
        pytest.param(cred(registry="unknown"), id="registry-not-in-fingerprint"),
    ],
)
def test_fingerprint_mismatch(changed: Credential) -> None:
    stored = Fingerprint.parse(fingerprint([cred()], SALT))
    assert stored is not None
    assert not stored.matches(changed)


def test_fingerprint_never_contains_the_password_or_its_base64() -> None:
    secret = cred(username="robot", password=CANARY)
    text = fingerprint([secret], SALT)
    forms = [
        CANARY,
        CANARY_B64,
        base64.urlsafe_b64encode(CANARY.encode()).decode(),
        base64.b64encode(f"robot:{CANARY}".encode()).decode(),
        CANARY.encode().hex(),
    ]
    for form in forms:
        assert form not in text
        assert form[:12] not in text


@pytest.mark.parametrize(
    "text",
    [None, "", "v2:MDEy:harbor=abc", "v1:MDEy:", "v1", "v1:abc:harbor=abc"],
)
def test_fingerprint_parse_of_foreign_text_is_none(text: str | None) -> None:
    assert Fingerprint.parse(text) is None
