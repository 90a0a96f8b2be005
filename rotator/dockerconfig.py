"""Render and parse ``.dockerconfigjson``, and the change fingerprint kept beside it.

The format is the one kubelet and ``kubectl create secret docker-registry`` use:
``{"auths": {"<host>": {"username": ..., "password": ..., "auth": base64("user:password")}}}``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rotator.model import Credential

FINGERPRINT_VERSION = "v1"
# scrypt parameters: costly enough that a guessed password cannot be checked against the
# annotation at speed, cheap enough (~10 ms) to compute once per registry per run.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _DIGEST_BYTES = 2**13, 8, 1, 12


class DockerConfigError(ValueError):
    """The bytes are not a usable .dockerconfigjson. The message never quotes the content."""


@dataclass(frozen=True, kw_only=True)
class HostAuth:
    username: str
    password: str = field(repr=False)


def render(credentials: Iterable[Credential]) -> bytes:
    """Canonical bytes: sorted keys and no whitespace, so equal inputs give equal bytes."""
    auths: dict[str, dict[str, str]] = {}
    for cred in credentials:
        if cred.host in auths:
            raise DockerConfigError(f"two credentials for host {cred.host}")
        pair = f"{cred.username}:{cred.password}".encode()
        auths[cred.host] = {
            "username": cred.username,
            "password": cred.password,
            "auth": base64.b64encode(pair).decode("ascii"),
        }
    return json.dumps({"auths": auths}, sort_keys=True, separators=(",", ":")).encode()


def parse(data: bytes) -> dict[str, HostAuth]:
    """host → username/password. Accepts ``auth`` alone, as kubelet does."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DockerConfigError("not valid JSON") from exc
    auths = document.get("auths") if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        raise DockerConfigError('no "auths" object')
    result: dict[str, HostAuth] = {}
    for host, entry in auths.items():
        if not isinstance(entry, dict):
            raise DockerConfigError(f"entry for {host} is not an object")
        username, password = entry.get("username"), entry.get("password")
        if not (isinstance(username, str) and isinstance(password, str)):
            username, password = _split_auth(host, entry.get("auth"))
        result[str(host)] = HostAuth(username=username, password=password)
    return result


def _split_auth(host: str, auth: object) -> tuple[str, str]:
    if not isinstance(auth, str):
        raise DockerConfigError(f"entry for {host} has neither username/password nor auth")
    try:
        decoded = base64.b64decode(auth, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise DockerConfigError(f"auth of {host} is not base64 of user:password") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise DockerConfigError(f"auth of {host} is not base64 of user:password")
    return username, password


def _digest(cred: Credential, salt: bytes) -> str:
    return _scrypt("\0".join((cred.host, cred.username, cred.password)).encode(), salt)


# Secrets written in one run share a salt, so planning a thousand of them costs one scrypt per
# registry and salt rather than one per Secret.
@functools.lru_cache(maxsize=256)
def _scrypt(material: bytes, salt: bytes) -> str:
    digest = hashlib.scrypt(
        material, salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_DIGEST_BYTES
    )
    return digest.hex()


def fingerprint(credentials: Iterable[Credential], salt: bytes) -> str:
    """``v1:<salt>:<registry>=<digest>,...``: tells whether a registry's credential changed,
    without revealing it (salted scrypt of host, username and password)."""
    parts = ",".join(f"{c.registry}={_digest(c, salt)}" for c in sorted(credentials, key=_by_reg))
    return f"{FINGERPRINT_VERSION}:{base64.urlsafe_b64encode(salt).decode()}:{parts}"


def _by_reg(cred: Credential) -> str:
    return cred.registry


@dataclass(frozen=True, kw_only=True)
class Fingerprint:
    salt: bytes
    digests: Mapping[str, str]

    @classmethod
    def parse(cls, text: str | None) -> Fingerprint | None:
        """None for anything not written by this version: the planner then rotates."""
        if not text:
            return None
        version, _, rest = text.partition(":")
        salt_text, _, parts = rest.partition(":")
        if version != FINGERPRINT_VERSION or not parts:
            return None
        try:
            salt = base64.b64decode(salt_text, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return None
        if not salt:
            return None
        digests = dict(p.split("=", 1) for p in parts.split(",") if "=" in p)
        return cls(salt=salt, digests=digests)

    def matches(self, cred: Credential) -> bool:
        stored = self.digests.get(cred.registry)
        return stored is not None and hmac.compare_digest(stored, _digest(cred, self.salt))
