"""`edge-agent profiles list|show|test` under LANG=vi_VN.UTF-8: the report's own words are
Vietnamese. The real CLI runs in a new interpreter; devices are the recorded emulators.

What the profiles themselves say (vendor, models, notes, the commands sent, a device's answer
and, until agent/profiles/ gives them as messages, a query's reason and hint) is data, taken
out by the values `--json` shows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from tests.fixtures.serial import Device
from tests.test_cli_vietnamese import assert_vietnamese, cli, vi_env


def _values(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _values(value)
    elif isinstance(data, list):
        for value in data:
            yield from _values(value)
    elif data is not None and not isinstance(data, bool):
        yield str(data)


def _names(*args: str) -> tuple[str, ...]:
    """The data `--json` shows for the same command, longest first (so "ab" goes before "a");
    not the short ones ("8", "1"), which would cut words out of the text around them."""
    done = cli(*args, "--json", env=vi_env())
    values = {v for v in _values(json.loads(done.stdout)) if len(v) > 2}
    return tuple(sorted(values, key=len, reverse=True))


def test_list_in_vietnamese() -> None:
    done = cli("profiles", "list")
    assert done.returncode == 0
    assert done.stdout.startswith("hồ sơ")
    names = (*_names("profiles", "list"), "...")
    assert_vietnamese(done.stdout, names)


def test_show_in_vietnamese() -> None:
    done = cli("profiles", "show", "cisco-roomos")
    assert done.returncode == 0
    assert "  hãng:" in done.stdout and "truy vấn" in done.stdout
    assert_vietnamese(done.stdout, _names("profiles", "show", "cisco-roomos"))


def test_test_of_a_silent_device_in_vietnamese(serial_device: Callable[..., Device]) -> None:
    device = serial_device("lg-rs232_generic", "silent")
    args = ("profiles", "test", "lg-rs232", "--port", device.url, "--timeout", "0.3")
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    assert "\nkết quả: KHÔNG ĐẠT - " in done.stdout
    assert "\ncách xử lý: " in done.stdout
    assert_vietnamese(done.stdout, _names(*args))


def test_test_of_a_working_device_in_vietnamese(serial_device: Callable[..., Device]) -> None:
    device = serial_device("cisco-roomos_ce9.15")
    args = ("profiles", "test", "cisco-roomos", "--port", device.url, "--password", "secret")
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    assert "\nkết quả: ĐẠT - " in done.stdout
    assert "truy vấn" in done.stdout.splitlines()[1]
    assert_vietnamese(done.stdout, _names(*args))
