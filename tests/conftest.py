"""Shared fixtures. Each area keeps its service fixtures in its own plugin module."""

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.audio",
    "tests.fixtures.video",
    "tests.fixtures.serial",
    "tests.fixtures.sysfs",
]
