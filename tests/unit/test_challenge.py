"""WWW-Authenticate parsing, the token-realm safety rules, and the verifier's decisions on canned
answers (httpx.MockTransport: no network). The real handshakes are in
tests/integration/test_verifier.py."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rotator.challenge import (
    Challenge,
    ChallengeError,
    UnsafeRealmError,
    check_realm,
    parse_challenges,
    pick_challenge,
)
from rotator.config import ProbeSpec, VerifySpec
from rotator.errors import ConfigError, VerificationError
from rotator.model import Credential
from rotator.verifier import MANIFEST_ACCEPT, Verifier, verify_credential

# -- parsing -------------------------------------------------------------------------------------


def test_basic_challenge() -> None:
    assert parse_challenges('Basic realm="Registry Realm"') == (
        Challenge(scheme="basic", params={"realm": "Registry Realm"}),
    )


def test_bearer_challenge_keeps_commas_inside_quotes() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/app:pull,push"'
    )
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:team/app:pull,push",
    }


def test_scheme_and_parameter_names_are_case_insensitive() -> None:
    (challenge,) = parse_challenges('BEARER Realm="https://a/t", SERVICE=reg')
    assert challenge.scheme == "bearer"
    assert challenge.params == {"realm": "https://a/t", "service": "reg"}


def test_values_keep_their_case() -> None:
    (challenge,) = parse_challenges('Bearer realm="https://A/Token",service=Reg')
    assert challenge.params == {"realm": "https://A/Token", "service": "Reg"}


def test_quoted_pairs_are_unescaped() -> None:
    (challenge,) = parse_challenges(r'Basic realm="say \"hi\" \\ bye", x="\a"')
    assert challenge.params == {"realm": 'say "hi" \\ bye', "x": "a"}


def test_empty_quoted_value_is_allowed() -> None:
    assert parse_challenges('Basic realm=""')[0].params == {"realm": ""}


def test_whitespace_around_equals_and_commas() -> None:
    (challenge,) = parse_challenges('Bearer  realm = "https://a/t" ,\tservice= s ')
    assert challenge.params == {"realm": "https://a/t", "service": "s"}


def test_several_challenges_in_one_header() -> None:
    header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    assert parse_challenges(header) == (
        Challenge(
            scheme="newauth", params={"realm": "apps", "type": "1", "title": 'Login to "apps"'}
        ),
        Challenge(scheme="basic", params={"realm": "simple"}),
    )


def test_several_header_lines_joined() -> None:
    lines = ['Basic realm="r"', 'Bearer realm="https://a/t",service="s"']
    assert [c.scheme for c in parse_challenges(", ".join(lines))] == ["basic", "bearer"]


def test_token68_and_bare_schemes() -> None:
    header = 'Negotiate, NTLM abc+/def==, Basic realm="x"'
    assert parse_challenges(header) == (
        Challenge(scheme="negotiate"),
        Challenge(scheme="ntlm", token68="abc+/def=="),
        Challenge(scheme="basic", params={"realm": "x"}),
    )


def test_empty_list_elements_are_skipped() -> None:
    assert parse_challenges(' , ,Basic realm="x" ,, ') == (
        Challenge(scheme="basic", params={"realm": "x"}),
    )


@pytest.mark.parametrize(
    "header",
    [
        "",
        " , ,",
        'Basic realm="unterminated',
        'Basic realm="ends in backslash\\',
        'Basic realm="a", realm="b"',
        'Bearer realm="x" service="y"',
        'Basic realm="x",service=',
        '"quoted" realm=x',
        "Basic=realm",
        'Basic realm="line\x01break"',
        "Basic realm=a b",
    ],
)
def test_malformed_headers_raise_challenge_error(header: str) -> None:
    with pytest.raises(ChallengeError):
        parse_challenges(header)


_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=8)
_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(
    schemes=st.lists(st.sampled_from(["Basic", "Bearer", "x-Custom"]), min_size=1, max_size=3),
    params=st.lists(st.dictionaries(_NAMES, _VALUES, min_size=1, max_size=4), min_size=3),
)
def test_any_rendered_header_parses_back(schemes: list[str], params: list[dict[str, str]]) -> None:
    header = ", ".join(
        f"{scheme} " + ", ".join(f"{k}={_quote(v)}" for k, v in p.items())
        for scheme, p in zip(schemes, params, strict=False)
    )
    parsed = parse_challenges(header)
    assert [c.scheme for c in parsed] == [s.lower() for s in schemes]
    assert [dict(c.params) for c in parsed] == params[: len(schemes)]


@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_challenge_error_only(header: str) -> None:
    with contextlib.suppress(ChallengeError):
        parse_challenges(header)


def test_bearer_is_preferred_to_basic_whatever_the_order() -> None:
    challenges = parse_challenges('Basic realm="r", Bearer realm="https://a/t"')
    assert pick_challenge(challenges).scheme == "bearer"


def test_unsupported_schemes_only_are_refused_by_name() -> None:
    with pytest.raises(ChallengeError, match="offers only negotiate, ntlm"):
        pick_challenge(parse_challenges("NTLM, Negotiate abc="))


# -- realm safety --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "realm",
    [
        "https://auth.docker.io/token",
        "https://127.0.0.1:5001/token",
        "https://10.1.2.3/token?account=x",
        "https://[::1]:8443/token",
        "https://[fec0::1]/token",  # site-local (deprecated), not link-local
        "https://169.255.0.1/token",
        "https://1e100.net/token",
        "HTTPS://Auth.Example/token",
    ],
)
def test_safe_realms_are_accepted(realm: str) -> None:
    assert check_realm(realm) == realm


@pytest.mark.parametrize(
    ("realm", "why"),
    [
        ("http://auth.example/token", "not https"),
        ("HTTP://auth.example/token", "not https"),
        ("ftp://auth.example/token", "not https"),
        ("/token", "not https"),
        ("", "not https"),
        ("https:///token", "names no host"),
        ("https://user:pw@auth.example/token", "user information"),
        ("https://auth.example:99999/token", "not a valid URL"),
        ("https://[::1/token", "not a valid URL"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://169.254.0.1:443/token", "link-local"),
        ("https://169.254.169.254./token", "link-local"),
        ("https://2852039166/token", "link-local"),  # 169.254.169.254 as one number
        ("https://0xa9fea9fe/token", "link-local"),
        ("https://0251.0376.0251.0376/token", "link-local"),
        ("https://169.254.43518/token", "link-local"),
        ("https://[fe80::1]/token", "link-local"),
        ("https://[FEBF::abcd]/token", "link-local"),
        ("https://[fe80::1%25eth0]/token", "link-local"),
        ("https://[::ffff:169.254.169.254]/token", "link-local"),
        ("https://0.0.0.0/token", "unspecified"),
        ("https://[::]/token", "unspecified"),
    ],
)
def test_unsafe_realms_are_refused(realm: str, why: str) -> None:
    with pytest.raises(UnsafeRealmError, match=why):
        check_realm(realm)


# -- verifier decisions on canned answers --------------------------------------------------------

HOST = "registry.example"
REALM = "https://auth.example/token"
CANARY = "canary-P4ssw0rd-7f3a9c"
CANARY_B64 = base64.b64encode(f"robot:{CANARY}".encode()).decode()
TOKEN = "canary-token-91bd0e"
BEARER = f'Bearer realm="{REALM}",service="registry.example"'

Handler = Callable[[httpx.Request], httpx.Response]


class Registry:
    """A canned registry: answers by (method, host, path); records every request."""

    def __init__(self, routes: dict[tuple[str, str, str], Handler]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.host, request.url.path)
        handler = self.routes.get(key)
        return handler(request) if handler is not None else httpx.Response(404)


def _spec(probe: bool = True, **kwargs: object) -> VerifySpec:
    value = {"repository": "team/app", "reference": "v1"} if probe else None
    return VerifySpec.model_validate({"probe": value, **kwargs})


def _fails(registry: Registry, spec: VerifySpec | None = None) -> VerificationError:
    with (
        Verifier(spec or _spec(), transport=httpx.MockTransport(registry)) as verifier,
        pytest.raises(VerificationError) as caught,
    ):
        verifier.verify("robot", CANARY, HOST)
    error = caught.value
    for text in (str(error), repr(error)):
        for secret in (CANARY, CANARY_B64, TOKEN):
            assert secret not in text
    return error


def _passes(registry: Registry, spec: VerifySpec | None = None) -> None:
    with Verifier(spec or _spec(), transport=httpx.MockTransport(registry)) as verifier:
        verifier.verify("robot", CANARY, HOST)


def _challenge(header: str) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": header})

    return answer


def _echo(status: int, headers: dict[str, str] | None = None) -> Handler:
    """A server that quotes the request's Authorization back, as a careless one might."""

    def answer(request: httpx.Request) -> httpx.Response:
        echoed = request.headers.get("authorization", "")
        body = json.dumps({"errors": [{"message": f"bad {echoed} for {CANARY}"}]})
        return httpx.Response(status, headers=headers, text=body)

    return answer


def _token(body: object) -> Handler:
    return lambda _: httpx.Response(200, json=body)


def _bearer_registry(token_handler: Handler, v2: Handler | None = None) -> Registry:
    return Registry(
        {
            ("GET", HOST, "/v2/"): v2 or _challenge(BEARER),
            ("GET", "auth.example", "/token"): token_handler,
            ("HEAD", HOST, "/v2/team/app/manifests/v1"): lambda _: httpx.Response(200),
        }
    )


def test_bearer_handshake_sends_what_the_spec_says() -> None:
    registry = _bearer_registry(_token({"access_token": TOKEN}))
    _passes(registry)
    first, token, second, head = registry.requests
    assert "authorization" not in first.headers
    assert token.url.params["service"] == "registry.example"
    assert token.url.params["scope"] == "repository:team/app:pull"
    assert token.headers["authorization"] == f"Basic {CANARY_B64}"
    assert second.headers["authorization"] == f"Bearer {TOKEN}"
    assert head.headers["authorization"] == f"Bearer {TOKEN}"
    assert head.headers["accept"] == MANIFEST_ACCEPT
    assert all(r.headers["accept-encoding"] == "identity" for r in registry.requests)


def test_no_probe_means_no_scope() -> None:
    registry = _bearer_registry(_token({"token": TOKEN}))
    _passes(registry, _spec(probe=False))
    assert [r.method for r in registry.requests] == ["GET", "GET", "GET"]
    assert "scope" not in registry.requests[1].url.params


def test_basic_handshake_retries_v2_with_basic_credentials() -> None:
    registry = Registry(
        {
            ("GET", HOST, "/v2/"): _challenge('basic realm="Registry"'),
            ("HEAD", HOST, "/v2/team/app/manifests/v1"): lambda _: httpx.Response(200),
        }
    )
    _passes(registry)
    assert registry.requests[1].headers["authorization"] == f"Basic {CANARY_B64}"


def test_open_registry_passes_without_sending_credentials() -> None:
    registry = Registry({("GET", HOST, "/v2/"): lambda _: httpx.Response(200)})
    _passes(registry, _spec(probe=False))
    assert all("authorization" not in r.headers for r in registry.requests)


def test_open_v2_but_closed_repository_answers_the_repository_challenge() -> None:
    registry = Registry(
        {
            ("GET", HOST, "/v2/"): lambda _: httpx.Response(200),
            ("HEAD", HOST, "/v2/team/app/manifests/v1"): _challenge('Basic realm="r"'),
        }
    )
    _passes(registry)
    assert registry.requests[-1].headers["authorization"] == f"Basic {CANARY_B64}"


def test_endpoint_override_replaces_the_host() -> None:
    registry = Registry({("GET", "mirror.example", "/v2/"): lambda _: httpx.Response(200)})
    _passes(registry, _spec(probe=False, endpoint="https://mirror.example/"))


@pytest.mark.parametrize(
    "realm",
    ["http://auth.example/token", "https://169.254.169.254/token", "https://[fe80::1]/token"],
)
def test_unsafe_realm_gets_no_credentials(realm: str) -> None:
    registry = _bearer_registry(_token({"token": TOKEN}), _challenge(f'Bearer realm="{realm}"'))
    error = _fails(registry)
    assert error.retryable is False
    assert "credentials were not sent" in str(error)
    assert len(registry.requests) == 1


@pytest.mark.parametrize(
    "header",
    ["", 'Bearer service="s"', "Negotiate", 'Basic realm="x', 'Bearer realm="https://a/t" s="x"'],
)
def test_unusable_challenge_is_not_retryable(header: str) -> None:
    v2: Handler = lambda _: httpx.Response(  # noqa: E731 - a one-line canned answer
        401, headers={"WWW-Authenticate": header} if header else {}
    )
    error = _fails(Registry({("GET", HOST, "/v2/"): v2}))
    assert error.retryable is False
    assert "cannot answer the registry's challenge" in str(error)


def test_rejected_basic_credential_is_not_retryable_and_echo_is_masked() -> None:
    registry = Registry(
        {
            ("GET", HOST, "/v2/"): lambda r: (
                _echo(401)(r)
                if "authorization" in r.headers
                else httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            )
        }
    )
    error = _fails(registry)
    assert error.retryable is False
    assert "rejected the credential of user 'robot'" in str(error)
    assert "***" in str(error)


def test_token_endpoint_rejection_is_not_retryable() -> None:
    error = _fails(_bearer_registry(_echo(401)))
    assert error.retryable is False
    assert str(error).startswith(f"token endpoint {REALM} rejected user 'robot' (401")


def test_registry_refusing_its_own_token_is_explained() -> None:
    v2 = _challenge(BEARER)
    registry = _bearer_registry(
        _token({"token": TOKEN}),
        lambda r: _echo(401)(r) if "authorization" in r.headers else v2(r),
    )
    error = _fails(registry)
    assert error.retryable is False
    assert "registry and its token server disagree" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        {"refresh_token": TOKEN},
        {"token": ""},
        {"token": 42},
        {"token": "has space"},
        {"token": "line\nbreak"},
        [TOKEN],
    ],
)
def test_missing_or_unusable_token_is_not_retryable(body: object) -> None:
    error = _fails(_bearer_registry(_token(body)))
    assert error.retryable is False
    assert "no usable token" in str(error)


def test_token_endpoint_answering_non_json_is_not_retryable() -> None:
    error = _fails(_bearer_registry(lambda _: httpx.Response(200, text=f"<html>{TOKEN}")))
    assert error.retryable is False
    assert "did not answer JSON" in str(error)


def test_oversized_token_answer_is_refused() -> None:
    error = _fails(_bearer_registry(_token({"token": "x" * 5000})), _spec(max_response_bytes=1024))
    assert error.retryable is False
    assert "more than 1024 bytes" in str(error)


def test_error_bodies_are_read_only_up_to_the_cap() -> None:
    huge = httpx.Response(503, content=iter([b"e" * 1000] * 100))
    error = _fails(
        Registry({("GET", HOST, "/v2/"): lambda _: huge}), _spec(max_response_bytes=1024)
    )
    assert error.retryable is True
    assert len(str(error)) < 400


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True)])
def test_server_trouble_is_retryable(status: int, retryable: bool) -> None:
    assert _fails(Registry({("GET", HOST, "/v2/"): _echo(status)})).retryable is retryable
    assert _fails(_bearer_registry(_echo(status))).retryable is retryable


def test_same_origin_token_redirect_is_followed() -> None:
    moved: Handler = lambda _: httpx.Response(  # noqa: E731 - a one-line canned answer
        307, headers={"Location": "/v2/token?service=registry.example"}
    )
    registry = _bearer_registry(moved)
    registry.routes["GET", "auth.example", "/v2/token"] = _token({"token": TOKEN})
    _passes(registry)
    assert registry.requests[2].headers["authorization"] == f"Basic {CANARY_B64}"


@pytest.mark.parametrize(
    "location", ["https://elsewhere.example/token", "http://auth.example/token"]
)
def test_token_redirect_to_another_origin_is_refused(location: str) -> None:
    registry = _bearer_registry(lambda _: httpx.Response(302, headers={"Location": location}))
    error = _fails(registry)
    assert error.retryable is False
    assert "only re-sent to the same https origin" in str(error)
    assert [r.url.host for r in registry.requests] == [HOST, "auth.example"]


def test_redirect_on_v2_is_not_followed() -> None:
    moved = httpx.Response(301, headers={"Location": "https://elsewhere.example/v2/"})
    error = _fails(Registry({("GET", HOST, "/v2/"): lambda _: moved}))
    assert error.retryable is False
    assert "answered 301" in str(error)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "credential authenticates but cannot pull team/app:v1"),
        (403, "credential authenticates but cannot pull team/app:v1"),
        (404, "probe image team/app:v1 not found"),
    ],
)
def test_probe_refusals_are_not_retryable(status: int, message: str) -> None:
    registry = _bearer_registry(_token({"token": TOKEN}))
    registry.routes["HEAD", HOST, "/v2/team/app/manifests/v1"] = lambda _: httpx.Response(status)
    error = _fails(registry)
    assert error.retryable is False
    assert message in str(error)


def test_probe_by_digest_is_named_with_an_at_sign() -> None:
    digest = "sha256:" + "a" * 64
    spec = VerifySpec(probe=ProbeSpec(repository="team/app", reference=digest))
    registry = Registry({("GET", HOST, "/v2/"): lambda _: httpx.Response(200)})
    assert f"team/app@{digest} not found" in str(_fails(registry, spec))


def test_network_failure_is_retryable_and_chained() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = _fails(Registry({("GET", HOST, "/v2/"): refuse}))
    assert error.retryable is True
    assert isinstance(error.__cause__, httpx.ConnectError)


def test_timeout_is_retryable() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    error = _fails(_bearer_registry(slow))
    assert error.retryable is True
    assert "no answer within 10s" in str(error)


def test_username_with_a_colon_is_refused_before_any_request() -> None:
    registry = Registry({})
    with (
        Verifier(_spec(), transport=httpx.MockTransport(registry)) as verifier,
        pytest.raises(VerificationError, match="contains ':'") as caught,
    ):
        verifier.verify("a:b", CANARY, HOST)
    assert caught.value.retryable is False
    assert registry.requests == []


def test_verify_credential_uses_the_credential_host_and_hides_its_password() -> None:
    credential = Credential(
        registry="main",
        host=HOST,
        username="robot",
        password=CANARY,
        issued_at=datetime(2025, 1, 1, tzinfo=UTC),
        expires_at=None,
    )
    registry = Registry({("GET", HOST, "/v2/"): _challenge('Basic realm="r"')})
    verify_credential(credential, _spec(probe=False), transport=httpx.MockTransport(registry))
    registry.routes["GET", HOST, "/v2/"] = lambda r: (
        _echo(401)(r)
        if "authorization" in r.headers
        else httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    )
    with pytest.raises(VerificationError) as caught:
        verify_credential(credential, _spec(probe=False), transport=httpx.MockTransport(registry))
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)


def test_unreadable_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate")
    for path in (bundle, tmp_path / "missing.pem"):
        with pytest.raises(ConfigError, match=r"verify\.ca_bundle"):
            Verifier(_spec(ca_bundle=path))
