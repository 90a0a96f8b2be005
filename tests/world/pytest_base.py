"""Fixtures every area of the local world shares: a work folder and the test CA."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.world.tls import LocalCA


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("world")


@pytest.fixture(scope="session")
def test_ca(world_dir: Path) -> LocalCA:
    return LocalCA.create(world_dir / "ca")
