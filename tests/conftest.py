"""The local world's fixtures are pytest plugins under tests/world, one per area."""

pytest_plugins = [
    "tests.world.pytest_base",
    "tests.world.pytest_kube",
    "tests.world.pytest_registry",
    "tests.world.pytest_doubles",
]
