"""Build a tiny OCI image in memory and push it over the registry HTTP API.

No skopeo and no image layout on disk: three blobs' worth of bytes and the push protocol
(blob upload = POST for an upload URL, then one PUT with the whole blob; then the manifest PUT).
Authentication follows the registry's challenge, so the same code pushes to a Basic and to a
Bearer registry.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from tests.world.registry import Credentials, Registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# Without an Accept naming the OCI type, the registry answers 404 MANIFEST_UNKNOWN for an OCI
# manifest: every manifest request of the tests sends this.
MANIFEST_ACCEPT = f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TinyImage:
    layer: bytes  # gzip of a one-file tar
    config: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        """The manifest digest, as the registry reports it in Docker-Content-Digest."""
        return sha256_digest(self.manifest)


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def build_tiny_image(content: bytes = b"rotator test world\n") -> TinyImage:
    """A deterministic image (fixed mtimes): the same content always gives the same digest."""
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    diff = tar_buffer.getvalue()
    layer = gzip.compress(diff, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(diff)]},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(OCI_LAYER_GZIP, layer)],
        },
        separators=(",", ":"),
    ).encode()
    return TinyImage(layer=layer, config=config, manifest=manifest)


def _upload_blob(client: httpx.Client, repo: str, data: bytes, auth: str) -> None:
    digest = sha256_digest(data)
    headers = {"Authorization": auth}
    if client.head(f"/v2/{repo}/blobs/{digest}", headers=headers).status_code == 200:
        return
    started = client.post(f"/v2/{repo}/blobs/uploads/", headers=headers)
    if started.status_code != 202:
        raise RuntimeError(f"blob upload to {repo} refused: {started.status_code} {started.text}")
    # Location may be relative or absolute, and carries the upload state in its query: merge the
    # digest into it by hand, as httpx's `params=` would replace that query outright.
    location = httpx.URL(urljoin(f"{client.base_url}/", started.headers["Location"]))
    finished = client.put(
        location.copy_merge_params({"digest": digest}),
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    if finished.status_code != 201:
        raise RuntimeError(f"blob {digest} to {repo}: {finished.status_code} {finished.text}")


def push_image(
    registry: Registry,
    repo: str,
    tag: str,
    username: str,
    password: str,
    *,
    image: TinyImage | None = None,
) -> str:
    """Push `image` (default: the tiny image) as `repo:tag`; returns the manifest digest."""
    image = image or build_tiny_image()
    auth = registry.authorization(Credentials(username, password), f"repository:{repo}:pull,push")
    with registry.client() as client:
        _upload_blob(client, repo, image.layer, auth)
        _upload_blob(client, repo, image.config, auth)
        response = client.put(
            f"/v2/{repo}/manifests/{tag}",
            content=image.manifest,
            headers={"Authorization": auth, "Content-Type": OCI_MANIFEST},
        )
    if response.status_code != 201:
        raise RuntimeError(f"manifest {repo}:{tag}: {response.status_code} {response.text}")
    digest = response.headers.get("Docker-Content-Digest")
    if digest != image.digest:
        raise RuntimeError(f"registry stored {repo}:{tag} as {digest}, expected {image.digest}")
    return image.digest
