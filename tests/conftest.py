"""The local world's fixtures are pytest plugins under tests/world, one per area."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.world.pytest_base",
    "tests.world.pytest_kube",
    "tests.world.pytest_registry",
    "tests.world.pytest_doubles",
]


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """``rotator.cli.main`` and ``setup_logging`` replace the root logger's handlers, as a
    process entry point should; a test that calls them must not change logging for the next."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
