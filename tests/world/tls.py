"""One throw-away certificate authority for every TLS server of the local world."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True, kw_only=True)
class ServerCert:
    cert_path: Path  # leaf then chain, PEM
    key_path: Path


@dataclass(frozen=True, kw_only=True)
class LocalCA:
    """The CA, written to disk once, and a way to issue leaf certificates for loopback names."""

    ca: trustme.CA
    directory: Path

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(directory / "ca.crt"))
        ca.private_key_pem.write_to_path(str(directory / "ca.key"))
        return cls(ca=ca, directory=directory)

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def issue(self, name: str, *hosts: str) -> ServerCert:
        """A serving certificate for 127.0.0.1 and localhost (plus any extra hosts)."""
        leaf = self.ca.issue_cert("127.0.0.1", "localhost", *hosts)
        cert_path = self.directory / f"{name}.crt"
        key_path = self.directory / f"{name}.key"
        with cert_path.open("wb") as out:
            for blob in leaf.cert_chain_pems:
                out.write(blob.bytes())
        leaf.private_key_pem.write_to_path(str(key_path))
        return ServerCert(cert_path=cert_path, key_path=key_path)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))
