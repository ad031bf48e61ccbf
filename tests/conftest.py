"""Shared fixtures. Each area keeps its service fixtures in its own plugin module."""

from collections.abc import Iterator

import pytest

from agent.i18n import set_language

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.audio",
    "tests.fixtures.video",
    "tests.fixtures.serial",
    "tests.fixtures.sysfs",
]


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """A test that runs a CLI command in this process may leave the process language set
    (the CLI sets it once per process, as gettext's model has it): the next test starts in
    English whatever the last one chose."""
    yield
    set_language("en")
