"""Shared fixtures. Each area keeps its service fixtures in its own plugin module."""

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.i18n import set_language

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.audio",
    "tests.fixtures.video",
    "tests.fixtures.serial",
    "tests.fixtures.sysfs",
    "tests.fixtures.browser",
    "tests.fixtures.postgres",
]


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """A test that runs a CLI command in this process may leave the process language set
    (the CLI sets it once per process, as gettext's model has it): the next test starts in
    English whatever the last one chose."""
    yield
    set_language("en")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A CLI command run in this process sets up logging: the root logger's handler then writes
    to that test's captured stderr, closed once the test ends ("Logging error ... I/O operation
    on closed file" in every later test's output). Put back the handlers there were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the page tests keep their screenshots for a person to look at: $TEST_ARTIFACTS_DIR
    (`./run test` sets it to .run/artifacts, git-ignored; a CI keeps that folder), else there."""
    where = os.environ.get("TEST_ARTIFACTS_DIR")
    path = Path(where) if where else Path(__file__).resolve().parent.parent / ".run" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path
