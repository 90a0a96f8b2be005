"""The cloud stand-ins and the fault proxy behave as the real services do for our clients."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential, WorkloadIdentityCredential
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import compute_engine
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from tests.world.entra import ACR_AUDIENCE, EntraDouble
from tests.world.faultproxy import (
    FaultProxy,
    conflict,
    delay,
    drop_response,
    server_error,
    throttle,
)
from tests.world.faults import DoubleHandler, Fault, FaultPlan, LoopbackServer
from tests.world.google import GOOGLE_TOKEN_AUDIENCE, GoogleDouble
from tests.world.moto import MotoServer
from tests.world.tls import LocalCA

pytestmark = pytest.mark.integration

ACR_SCOPE = f"{ACR_AUDIENCE}/.default"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
MOTO_ACCOUNT = "123456789012"


def _aws(service: str, endpoint_url: str, **kwargs: object) -> object:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        **kwargs,
    )


@pytest.fixture
def https(test_ca: LocalCA) -> Iterator[httpx.Client]:
    with httpx.Client(verify=test_ca.client_context(), trust_env=False, timeout=5) as client:
        yield client


@pytest.fixture
def google_session(test_ca: LocalCA) -> requests.Session:
    # REQUESTS_CA_BUNDLE on these machines overrides Session.verify unless trust_env is off.
    session = requests.Session()
    session.trust_env = False
    session.verify = str(test_ca.ca_path)
    return session


# -- AWS: moto ---------------------------------------------------------------------------------


def test_moto_ecr_authorization_token_is_basic_aws_credential(moto_server: MotoServer) -> None:
    ecr = _aws("ecr", moto_server.endpoint_url)
    data = ecr.get_authorization_token()["authorizationData"][0]  # type: ignore[attr-defined]

    assert base64.b64decode(data["authorizationToken"]).decode() == (
        f"AWS:{MOTO_ACCOUNT}-auth-token"
    )
    assert data["proxyEndpoint"] == f"https://{MOTO_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"


def test_moto_sts_assume_role_returns_session_credentials(moto_server: MotoServer) -> None:
    sts = _aws("sts", moto_server.endpoint_url)
    role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/puller"

    answer = sts.assume_role(RoleArn=role, RoleSessionName="rotator")  # type: ignore[attr-defined]

    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert answer["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/puller/rotator"
    )


def test_moto_reset_forgets_resources(moto_server: MotoServer) -> None:
    ecr = _aws("ecr", moto_server.endpoint_url)
    ecr.create_repository(repositoryName="team/app")  # type: ignore[attr-defined]

    moto_server.reset()

    assert ecr.describe_repositories()["repositories"] == []  # type: ignore[attr-defined]


# -- Azure: Entra ID and the ACR exchange ------------------------------------------------------


def _secret_credential(entra: EntraDouble, ca: LocalCA, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(
        entra.tenant_id,
        entra.client_id,
        secret,
        authority=entra.authority,
        disable_instance_discovery=True,
        connection_verify=str(ca.ca_path),
    )


def test_client_secret_token_exchanges_for_a_three_hour_acr_refresh_token(
    entra_double: EntraDouble, test_ca: LocalCA, https: httpx.Client
) -> None:
    credential = _secret_credential(entra_double, test_ca, entra_double.client_secret)
    access = credential.get_token(ACR_SCOPE)
    claims = entra_double.decode(access.token)
    assert (claims["aud"], claims["tid"]) == (ACR_AUDIENCE, entra_double.tenant_id)
    assert claims["oid"] == entra_double.default_app.object_id

    service = entra_double.acr_host
    exchange = https.post(
        f"{entra_double.url}/oauth2/exchange",
        data={
            "grant_type": "access_token",
            "service": service,
            "tenant": entra_double.tenant_id,
            "access_token": access.token,
        },
    )

    assert exchange.status_code == 200
    refresh = exchange.json()["refresh_token"]
    exp = jwt.decode(refresh, options={"verify_signature": False})["exp"]
    assert abs(exp - (time.time() + 3 * 3600)) < 60
    assert entra_double.is_valid_refresh_token(refresh, service)
    assert not entra_double.is_valid_refresh_token(refresh, "other.azurecr.io")
    assert not entra_double.is_valid_refresh_token(access.token)  # an Entra token is not one


def test_acr_token_endpoint_grants_the_requested_scope(
    entra_double: EntraDouble, test_ca: LocalCA, https: httpx.Client
) -> None:
    access = _secret_credential(entra_double, test_ca, entra_double.client_secret)
    token = access.get_token(ACR_SCOPE).token
    service = entra_double.acr_host
    refresh = https.post(
        f"{entra_double.url}/oauth2/exchange",
        data={"grant_type": "access_token", "service": service, "access_token": token},
    ).json()["refresh_token"]

    answer = https.post(
        f"{entra_double.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": service,
            "scope": "repository:team/app:pull",
            "refresh_token": refresh,
        },
    )

    assert answer.status_code == 200
    claims = entra_double.decode(answer.json()["access_token"])
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]


def test_refresh_token_expires_after_its_lifetime(
    entra_double: EntraDouble,
    test_ca: LocalCA,
    https: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _secret_credential(entra_double, test_ca, entra_double.client_secret).get_token(
        ACR_SCOPE
    )
    form = {"grant_type": "access_token", "service": "r.example", "access_token": token.token}
    refresh = https.post(f"{entra_double.url}/oauth2/exchange", data=form).json()["refresh_token"]
    start = time.time()

    monkeypatch.setattr(entra_double, "clock", lambda: start + 3 * 3600 + 60)

    assert not entra_double.is_valid_refresh_token(refresh)
    # The Entra token (1 h) has expired by then too, so the exchange refuses it.
    assert https.post(f"{entra_double.url}/oauth2/exchange", data=form).status_code == 401


def test_exchange_rejects_a_token_the_double_did_not_sign(
    entra_double: EntraDouble, https: httpx.Client
) -> None:
    forged = jwt.encode(
        {"aud": ACR_AUDIENCE, "exp": time.time() + 600, "token_use": "entra_access"},
        "a key the double has never seen, long enough for HS256",
        algorithm="HS256",
    )
    answer = https.post(
        f"{entra_double.url}/oauth2/exchange",
        data={"grant_type": "access_token", "service": "r.example", "access_token": forged},
    )

    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_workload_identity_credential_uses_the_federated_token_file(
    entra_double: EntraDouble, test_ca: LocalCA, tmp_path: Path
) -> None:
    token_file = entra_double.write_federated_token_file(tmp_path / "azure-identity-token")
    credential = WorkloadIdentityCredential(
        tenant_id=entra_double.tenant_id,
        client_id=entra_double.client_id,
        token_file_path=str(token_file),
        authority=entra_double.authority,
        connection_verify=str(test_ca.ca_path),
    )

    token = credential.get_token(ACR_SCOPE)

    assert entra_double.is_valid_access_token(token.token, ACR_AUDIENCE)


def test_workload_identity_with_an_unknown_federated_token_fails(
    entra_double: EntraDouble, test_ca: LocalCA, tmp_path: Path
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("a-token-no-app-trusts")
    credential = WorkloadIdentityCredential(
        tenant_id=entra_double.tenant_id,
        client_id=entra_double.client_id,
        token_file_path=str(token_file),
        authority=entra_double.authority,
        connection_verify=str(test_ca.ca_path),
    )

    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        credential.get_token(ACR_SCOPE)


def test_wrong_client_secret_is_refused(entra_double: EntraDouble, test_ca: LocalCA) -> None:
    credential = _secret_credential(entra_double, test_ca, "wrong-secret")

    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(ACR_SCOPE)


# -- Google: token endpoint and metadata server ------------------------------------------------


def test_service_account_key_file_refreshes_against_the_double(
    google_double: GoogleDouble, google_session: requests.Session
) -> None:
    credentials = service_account.Credentials.from_service_account_file(
        str(google_double.service_account_file), scopes=[CLOUD_PLATFORM]
    )

    credentials.refresh(Request(google_session))

    assert google_double.is_valid_access_token(credentials.token)
    info = google_double.token_info(credentials.token)
    assert info is not None
    assert (info.email, info.scopes) == (google_double.client_email, (CLOUD_PLATFORM,))
    assert credentials.expiry is not None


def test_service_account_with_a_foreign_key_is_rejected(
    google_double: GoogleDouble, google_session: requests.Session, tmp_path: Path
) -> None:
    account = google_double.default_account
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tampered = tmp_path / "tampered-sa.json"
    tampered.write_text(
        json.dumps(google_double.key_file_content(account.email, account.key_id, foreign))
    )
    credentials = service_account.Credentials.from_service_account_file(
        str(tampered), scopes=[CLOUD_PLATFORM]
    )

    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        credentials.refresh(Request(google_session))


def test_compute_engine_credentials_get_a_token_from_the_metadata_double(
    gce_metadata: GoogleDouble,
) -> None:
    session = requests.Session()
    session.trust_env = False
    credentials = compute_engine.Credentials()

    credentials.refresh(Request(session))

    assert gce_metadata.is_valid_access_token(credentials.token)
    assert credentials.service_account_email == gce_metadata.client_email


def test_google_auth_default_finds_the_metadata_double(
    gce_metadata: GoogleDouble, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import google.auth  # noqa: PLC0415 - the package name clashes with the google module above

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud ADC file of the machine
    session = requests.Session()
    session.trust_env = False

    credentials, project = google.auth.default(request=Request(session))

    assert isinstance(credentials, compute_engine.Credentials)
    assert project == gce_metadata.project_id


def test_metadata_double_requires_the_metadata_flavor_header(
    google_double: GoogleDouble,
) -> None:
    url = f"{google_double.metadata_server.url}/computeMetadata/v1/project/project-id"

    refused = httpx.get(url, trust_env=False)
    answered = httpx.get(url, headers={"Metadata-Flavor": "Google"}, trust_env=False)

    assert refused.status_code == 403
    assert (answered.status_code, answered.text) == (200, google_double.project_id)
    assert answered.headers["Metadata-Flavor"] == "Google"


# -- Fault plans, observed by a client of each double ------------------------------------------


@dataclass(frozen=True)
class Target:
    faults: FaultPlan
    call: Callable[[], httpx.Response]  # a request the double answers with 200


def _google_assertion(double: GoogleDouble) -> str:
    key_file = json.loads(double.service_account_file.read_text())
    now = int(time.time())
    claims = {
        "iss": double.client_email,
        "aud": GOOGLE_TOKEN_AUDIENCE,
        "scope": CLOUD_PLATFORM,
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, key_file["private_key"], algorithm="RS256")


@pytest.fixture(params=["entra", "google-token", "gce-metadata"])
def target(
    request: pytest.FixtureRequest,
    entra_double: EntraDouble,
    google_double: GoogleDouble,
    https: httpx.Client,
) -> Target:
    if request.param == "entra":
        url = f"{entra_double.url}/{entra_double.tenant_id}/v2.0/.well-known/openid-configuration"
        return Target(entra_double.faults, lambda: https.get(url))
    if request.param == "google-token":
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _google_assertion(google_double),
        }
        return Target(
            google_double.token_faults, lambda: https.post(google_double.token_uri, data=form)
        )
    url = f"{google_double.metadata_server.url}/computeMetadata/v1/instance/service-accounts/"
    return Target(
        google_double.metadata_faults,
        lambda: https.get(f"{url}default/token", headers={"Metadata-Flavor": "Google"}),
    )


@pytest.mark.parametrize("status", [500, 503, 401])
def test_queued_error_is_answered_once_then_service_resumes(target: Target, status: int) -> None:
    target.faults.fail_next(2, status=status)

    assert [target.call().status_code for _ in range(3)] == [status, status, 200]


def test_throttle_answers_429_with_retry_after(target: Target) -> None:
    with target.faults.mode(Fault.throttle(retry_after=7)):
        throttled = target.call()

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert target.call().status_code == 200


def test_slow_mode_delays_a_normal_answer(target: Target) -> None:
    with target.faults.mode(Fault.slow(0.3)):
        started = time.monotonic()
        answer = target.call()
        elapsed = time.monotonic() - started

    assert answer.status_code == 200
    assert elapsed >= 0.3


def test_slow_mode_trips_a_client_timeout(google_double: GoogleDouble) -> None:
    url = f"{google_double.metadata_server.url}/computeMetadata/v1/project/project-id"
    google_double.metadata_faults.fail_next(status=None, delay=0.5)

    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, headers={"Metadata-Flavor": "Google"}, timeout=0.1, trust_env=False)


def test_fault_limited_to_a_path_spares_the_others(
    entra_double: EntraDouble, test_ca: LocalCA, https: httpx.Client
) -> None:
    entra_double.faults.set_mode(Fault.server_error(path="/oauth2/exchange"))
    token = _secret_credential(entra_double, test_ca, entra_double.client_secret).get_token(
        ACR_SCOPE
    )

    answer = https.post(
        f"{entra_double.url}/oauth2/exchange",
        data={"grant_type": "access_token", "service": "r.example", "access_token": token.token},
    )

    assert answer.status_code == 503


def test_unauthorized_mode_fails_azure_identity(
    entra_double: EntraDouble, test_ca: LocalCA
) -> None:
    credential = _secret_credential(entra_double, test_ca, entra_double.client_secret)

    with entra_double.faults.mode(Fault.unauthorized()), pytest.raises(ClientAuthenticationError):
        credential.get_token(ACR_SCOPE)


# -- The fault proxy ---------------------------------------------------------------------------


class _Upstream(DoubleHandler):
    """Echoes what it received and remembers every write, to prove what reached it."""

    def route(self) -> None:
        body = self.read_body()
        writes: list[tuple[str, str, bytes, str | None]] = self.server.writes  # type: ignore[attr-defined]
        if self.command in ("POST", "PUT", "PATCH", "DELETE"):
            writes.append((self.command, self.path, body, self.headers.get("Authorization")))
        if self.url_path == "/chunked":
            self._send_chunked([b"first,", b"second,", b"third"])
        elif self.url_path == "/gzip":
            packed = gzip.compress(b"compressed payload")
            self.send_body(200, packed, "text/plain", {"Content-Encoding": "gzip"})
        else:
            echo = {"method": self.command, "path": self.path, "body": body.decode()}
            self.send_json(200, {**echo, "authorization": self.headers.get("Authorization")})

    def _send_chunked(self, chunks: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def upstream(test_ca: LocalCA) -> Iterator[LoopbackServer]:
    server = LoopbackServer("upstream", _Upstream, cert=test_ca.issue("upstream"))
    server.writes = []  # type: ignore[attr-defined]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(fault_proxy: Callable[[str], FaultProxy], upstream: LoopbackServer) -> FaultProxy:
    return fault_proxy(upstream.url)


SECRET_PATH = "/api/v1/namespaces/team/secrets/pull"
SECRET_RE = r"/api/v1/namespaces/[^/]+/secrets/[^/]+"
AUTH = {"Authorization": "Bearer admin-token"}


def test_proxy_passes_requests_through_unchanged(
    proxy: FaultProxy, upstream: LoopbackServer, https: httpx.Client
) -> None:
    answer = https.put(f"{proxy.url}{SECRET_PATH}?dryRun=All", content=b'{"a":1}', headers=AUTH)

    assert answer.json() == {
        "method": "PUT",
        "path": f"{SECRET_PATH}?dryRun=All",
        "body": '{"a":1}',
        "authorization": "Bearer admin-token",
    }
    assert upstream.writes == [  # type: ignore[attr-defined]
        ("PUT", f"{SECRET_PATH}?dryRun=All", b'{"a":1}', "Bearer admin-token")
    ]
    assert proxy.count("PUT", SECRET_PATH) == 1


def test_proxy_relays_chunked_and_compressed_bodies(proxy: FaultProxy, https: httpx.Client) -> None:
    chunked = https.get(f"{proxy.url}/chunked")
    packed = https.get(f"{proxy.url}/gzip")

    assert (chunked.status_code, chunked.text) == (200, "first,second,third")
    assert chunked.headers["Transfer-Encoding"] == "chunked"
    assert (packed.headers["Content-Encoding"], packed.text) == ("gzip", "compressed payload")


def test_proxy_answers_conflict_as_a_kubernetes_status(
    proxy: FaultProxy, upstream: LoopbackServer, https: httpx.Client
) -> None:
    rule = proxy.add_rule("PUT", SECRET_RE, conflict(), times=1)

    first = https.put(f"{proxy.url}{SECRET_PATH}", content=b"{}", headers=AUTH)
    second = https.put(f"{proxy.url}{SECRET_PATH}", content=b"{}", headers=AUTH)

    assert first.status_code == 409
    status = first.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Conflict", 409)
    assert status["details"] == {"kind": "secrets", "name": "pull"}
    assert second.status_code == 200
    assert len(upstream.writes) == 1  # type: ignore[attr-defined]
    assert (rule.matched, rule.fired) == (2, 1)


def test_proxy_throttles_with_retry_after(proxy: FaultProxy, https: httpx.Client) -> None:
    proxy.add_rule("GET", SECRET_RE, throttle(retry_after=3))

    answer = https.get(f"{proxy.url}{SECRET_PATH}")

    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "3")
    assert answer.json()["reason"] == "TooManyRequests"
    assert answer.json()["details"]["retryAfterSeconds"] == 3


def test_proxy_fails_only_the_nth_matching_request(proxy: FaultProxy, https: httpx.Client) -> None:
    proxy.add_rule(None, SECRET_RE, server_error(), nth=2)

    statuses = [https.get(f"{proxy.url}{SECRET_PATH}").status_code for _ in range(3)]

    assert statuses == [200, 500, 200]
    assert proxy.count("GET", SECRET_PATH) == 3


def test_proxy_delays_then_forwards(
    proxy: FaultProxy, upstream: LoopbackServer, https: httpx.Client
) -> None:
    proxy.add_rule("POST", SECRET_RE, delay(0.3))

    started = time.monotonic()
    answer = https.post(f"{proxy.url}{SECRET_PATH}", content=b"{}")

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.3
    assert len(upstream.writes) == 1  # type: ignore[attr-defined]


def test_proxy_drops_the_response_after_the_write_landed(
    proxy: FaultProxy, upstream: LoopbackServer, https: httpx.Client
) -> None:
    proxy.add_rule("POST", SECRET_RE, drop_response(), times=1)

    with pytest.raises(httpx.RemoteProtocolError):
        https.post(f"{proxy.url}{SECRET_PATH}", content=b'{"v":1}', headers=AUTH)

    assert upstream.writes == [  # type: ignore[attr-defined]
        ("POST", SECRET_PATH, b'{"v":1}', "Bearer admin-token")
    ]
    assert https.post(f"{proxy.url}{SECRET_PATH}", content=b"{}").status_code == 200


def test_proxy_handles_concurrent_clients(proxy: FaultProxy, https: httpx.Client) -> None:
    statuses: list[int] = []

    def call() -> None:
        statuses.append(https.get(f"{proxy.url}{SECRET_PATH}").status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 8
    assert proxy.count("GET", SECRET_PATH) == 8


def test_proxy_in_front_of_moto_injects_aws_server_errors(
    fault_proxy: Callable[[str], FaultProxy], moto_server: MotoServer, test_ca: LocalCA
) -> None:
    proxy = fault_proxy(moto_server.endpoint_url)
    ecr = _aws(
        "ecr",
        proxy.url,
        verify=str(test_ca.ca_path),
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    proxy.add_rule("POST", "/", server_error(), times=1)

    with pytest.raises(ClientError) as failure:
        ecr.get_authorization_token()  # type: ignore[attr-defined]
    answer = ecr.get_authorization_token()  # type: ignore[attr-defined]

    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert answer["authorizationData"][0]["proxyEndpoint"].endswith(".amazonaws.com")
    assert proxy.count("POST", "/") == 2
