"""moto's standalone server as the AWS stand-in (ECR, ECR Public, STS).

Caveat from TESTWORLD.md: moto's ECR `expiresAt` is fixed in 2015, so expiry logic is never
tested against it. Faults for AWS calls come from a fault proxy placed in front of it.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import httpx

from tests.world.procs import Process, free_port, wait_for_port, wait_until

# Any keys work; fixed ones keep boto3 from looking for real credentials on the machine.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"


class MotoServer:
    def __init__(self, *, log_path: Path) -> None:
        self.port = free_port()
        # The moto_server script sits next to the interpreter running the tests (the venv's).
        script = Path(sysconfig.get_path("scripts")) / "moto_server"
        self._process = Process(
            name="moto",
            argv=[str(script), "-H", "127.0.0.1", "-p", str(self.port)],
            log_path=log_path,
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> MotoServer:
        self._process.start()
        assert self._process.popen is not None
        try:
            wait_for_port(self.port, timeout=timeout, proc=self._process.popen)
            # The port opens before werkzeug serves; wait for a real answer.
            wait_until(self._answers, timeout=timeout, what="moto_server")
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._process.stop()

    def reset(self) -> None:
        """Forget every resource and call, as a fresh server would."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def client_env(self) -> dict[str, str]:
        """Env for a boto3 process (the rotator) that should talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def log_tail(self, lines: int = 30) -> str:
        return self._process.log_tail(lines)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False
