"""The registry part of the local world is real: real handshakes, real scopes, a real client."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import httpx
import jwt
import pytest

from tests.world.image import MANIFEST_ACCEPT
from tests.world.pytest_registry import RegistryWorld, skopeo_inspect
from tests.world.registry import Credentials, parse_challenge
from tests.world.tokenserver import TokenServer

pytestmark = pytest.mark.integration

BOTH = pytest.mark.parametrize("world_name", ["basic_registry", "token_registry"])


@pytest.fixture
def world(request: pytest.FixtureRequest, world_name: str) -> RegistryWorld:
    return request.getfixturevalue(world_name)  # type: ignore[no-any-return]


def _token_server(world: RegistryWorld) -> TokenServer:
    assert world.registry.token_server is not None
    return world.registry.token_server


def _get_v2(world: RegistryWorld, authorization: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    with world.registry.client() as client:
        return client.get("/v2/", headers=headers)


def _head_manifest(world: RegistryWorld, authorization: str) -> httpx.Response:
    with world.registry.client() as client:
        return client.head(
            f"/v2/{world.repo}/manifests/{world.tag}",
            headers={"Authorization": authorization, "Accept": MANIFEST_ACCEPT},
        )


def _request_token(
    world: RegistryWorld, creds: Credentials, scope: str, service: str | None = None
) -> httpx.Response:
    ts = _token_server(world)
    with httpx.Client(verify=world.registry.ssl_context(), trust_env=False) as client:
        return client.get(
            ts.realm,
            params={"service": service or ts.service, "scope": scope},
            headers={"Authorization": creds.basic},
        )


def _claims(token: str) -> dict[str, object]:
    # The registry checks the signature; here only what the token says is of interest.
    return jwt.decode(token, options={"verify_signature": False})


def _skopeo_inspect(
    world: RegistryWorld, creds: Credentials, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return skopeo_inspect(world, world.registry.write_authfile(tmp_path / "auth.json", creds))


# -- htpasswd (Basic) -----------------------------------------------------------------------


def test_basic_registry_challenges_with_basic_realm(basic_registry: RegistryWorld) -> None:
    response = _get_v2(basic_registry)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (f'Basic realm="{basic_registry.registry.name}"')


def test_basic_registry_accepts_the_right_password_only(basic_registry: RegistryWorld) -> None:
    wrong = Credentials(basic_registry.puller.username, "not-the-password")

    assert _get_v2(basic_registry, basic_registry.puller.basic).status_code == 200
    assert _get_v2(basic_registry, wrong.basic).status_code == 401


def test_basic_registry_serves_the_pushed_manifest(basic_registry: RegistryWorld) -> None:
    response = _head_manifest(basic_registry, basic_registry.puller.basic)

    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == basic_registry.digest


def test_basic_registry_user_added_and_removed_at_run_time(
    basic_registry: RegistryWorld,
) -> None:
    registry = basic_registry.registry
    creds = registry.add_user(f"late-{secrets.token_hex(4)}", secrets.token_urlsafe(12))

    assert _get_v2(basic_registry, creds.basic).status_code == 200

    registry.remove_user(creds.username)

    assert _get_v2(basic_registry, creds.basic).status_code == 401


# -- token (Bearer) -------------------------------------------------------------------------


def test_token_registry_challenges_with_bearer_realm_and_service(
    token_registry: RegistryWorld,
) -> None:
    ts = _token_server(token_registry)

    response = _get_v2(token_registry)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{ts.realm}",service="{ts.service}"'
    )


def test_pull_token_opens_the_pushed_manifest(token_registry: RegistryWorld) -> None:
    ts = _token_server(token_registry)

    response = _request_token(token_registry, token_registry.puller, "repository:team/app:pull")

    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == ts.ttl_seconds
    assert body["issued_at"].endswith("Z")
    claims = _claims(body["token"])
    assert claims["aud"] == ts.service
    assert claims["iss"] == ts.issuer
    assert claims["sub"] == token_registry.puller.username
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    assert "x5c" in jwt.get_unverified_header(body["token"])

    head = _head_manifest(token_registry, f"Bearer {body['token']}")

    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == token_registry.digest


def test_token_grants_only_the_intersection_of_asked_and_allowed(
    token_registry: RegistryWorld,
) -> None:
    response = _request_token(
        token_registry, token_registry.puller, "repository:team/app:pull,push,delete"
    )

    assert response.status_code == 200
    assert _claims(response.json()["token"])["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull"]}
    ]


def test_token_for_a_scope_outside_the_acl_is_empty_and_the_registry_refuses_it(
    token_registry: RegistryWorld,
) -> None:
    outsider = token_registry.outsider
    assert outsider is not None

    response = _request_token(token_registry, outsider, "repository:team/app:pull")

    # Real token servers issue the token anyway, with the intersection: nothing.
    assert response.status_code == 200
    token = response.json()["token"]
    assert _claims(token)["access"] == []

    head = _head_manifest(token_registry, f"Bearer {token}")

    # distribution 2.8.2 answers an insufficient scope with 401 (not 403) and says so.
    assert head.status_code == 401
    scheme, params = parse_challenge(head.headers["WWW-Authenticate"])
    assert scheme == "bearer"
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "repository:team/app:pull"


def test_token_for_an_unknown_scope_type_is_empty(token_registry: RegistryWorld) -> None:
    response = _request_token(token_registry, token_registry.pusher, "registry:catalog:*")

    assert response.status_code == 200
    assert _claims(response.json()["token"])["access"] == []


def test_token_server_refuses_a_wrong_password(token_registry: RegistryWorld) -> None:
    wrong = Credentials(token_registry.puller.username, "not-the-password")

    response = _request_token(token_registry, wrong, "repository:team/app:pull")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_token_server_refuses_another_service(token_registry: RegistryWorld) -> None:
    response = _request_token(
        token_registry, token_registry.puller, "repository:team/app:pull", service="elsewhere"
    )

    assert response.status_code == 400


def test_token_registry_user_added_at_run_time(
    token_registry: RegistryWorld, tmp_path: Path
) -> None:
    creds = token_registry.registry.add_user(
        f"late-{secrets.token_hex(4)}", secrets.token_urlsafe(12), {"team/app": ["pull"]}
    )

    result = _skopeo_inspect(token_registry, creds, tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Digest"] == token_registry.digest


def test_password_hook_accepts_what_the_acl_does_not_store(
    token_registry: RegistryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shape of the ACR case: a fixed user name whose "password" is a token checked elsewhere.
    acr_user = "00000000-0000-0000-0000-000000000000"
    ts = _token_server(token_registry)
    ts.add_user(acr_user, None, {"team/*": ["pull"]})
    monkeypatch.setattr(ts, "verify_password", lambda user, pw: pw == "refresh-token")
    try:
        accepted = _request_token(
            token_registry, Credentials(acr_user, "refresh-token"), "repository:team/app:pull"
        )
        refused = _request_token(
            token_registry, Credentials(acr_user, "other"), "repository:team/app:pull"
        )
    finally:
        ts.remove_user(acr_user)

    assert accepted.status_code == 200
    assert refused.status_code == 401
    head = _head_manifest(token_registry, f"Bearer {accepted.json()['token']}")
    assert head.status_code == 200


# -- an independent client: skopeo (containers/image, as CRI-O and podman) -------------------


@BOTH
def test_skopeo_inspects_with_the_right_credentials(world: RegistryWorld, tmp_path: Path) -> None:
    result = _skopeo_inspect(world, world.puller, tmp_path)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Digest"] == world.digest


@BOTH
def test_skopeo_says_unauthorized_for_a_wrong_password(
    world: RegistryWorld, tmp_path: Path
) -> None:
    wrong = Credentials(world.puller.username, "not-the-password")

    result = _skopeo_inspect(world, wrong, tmp_path)

    assert result.returncode != 0
    assert "unauthorized" in result.stderr
