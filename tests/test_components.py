"""The one component list: settings sections, probes, command choices and the birth record all
come from agent.components."""

import importlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from agent.commands.actions import RunChecksArgs
from agent.components import COMPONENTS, TABLE
from agent.config import ComponentSettings, Settings
from agent.errors import ConfigError
from agent.runtime.reports import meta_payload
from agent.selftest.runner import build_probes
from agent.transport.mqtt import Protocol

SITE = {"site_id": "s1", "name": "Site 1", "tier": "commune"}


def test_the_list_is_the_six_components_in_report_order():
    assert COMPONENTS == ("camera", "microphone", "display", "codec", "ptz", "network")
    assert tuple(TABLE) == COMPONENTS


@pytest.mark.parametrize("name", COMPONENTS)
def test_each_component_has_a_settings_section_and_a_probe(name):
    settings = Settings.model_validate({"site": SITE})
    assert isinstance(settings.component(name), ComponentSettings)
    spec = TABLE[name]
    assert callable(getattr(importlib.import_module(spec.probe_module), spec.probe_function))


def test_probes_are_built_for_the_named_components_only():
    settings = Settings.model_validate({"site": SITE})
    specs = build_probes(settings, ["network", "ptz"])
    assert [s.component for s in specs] == ["network", "ptz"]
    with pytest.raises(ConfigError, match="unknown component"):
        build_probes(settings, ["speaker"])


def test_run_checks_accepts_the_components_and_nothing_else():
    assert RunChecksArgs.model_validate({"components": ",".join(COMPONENTS)}).components == list(
        COMPONENTS
    )
    with pytest.raises(ValidationError):
        RunChecksArgs.model_validate({"components": ["speaker"]})


def test_the_birth_record_names_each_components_device():
    settings = Settings.model_validate(
        {
            "site": SITE,
            "camera": {"source": "/dev/video2"},
            "microphone": {"device": 3},
            "display": {"connector": "HDMI-A-2", "profile": "lg-rs232", "port": "/dev/ttyS1"},
            "codec": {"port": "/dev/ttyUSB3"},
            "ptz": {"profile": "visca", "port": "/dev/ttyUSB4"},
            "network": {
                "targets": [
                    {"name": "a", "host": "10.0.0.1", "port": 1883},
                    {"name": "b", "host": "10.0.0.2", "port": 443},
                ]
            },
        }
    )
    meta = meta_payload(settings, Protocol.V5, datetime(2025, 1, 1, tzinfo=UTC))
    devices = {c.component: (c.device, c.profile) for c in meta.components}
    assert devices == {
        "camera": ("/dev/video2", None),
        "microphone": ("3", None),
        "display": ("/dev/ttyS1", "lg-rs232"),
        "codec": ("/dev/ttyUSB3", "cisco-roomos"),
        "ptz": ("/dev/ttyUSB4", "visca"),
        "network": ("10.0.0.1:1883,10.0.0.2:443", None),
    }
    no_port = Settings.model_validate({"site": SITE, "display": {"connector": "HDMI-A-2"}})
    meta = meta_payload(no_port, Protocol.V5, datetime(2025, 1, 1, tzinfo=UTC))
    display = next(c for c in meta.components if c.component == "display")
    assert (display.device, display.profile) == ("HDMI-A-2", None)
    network = next(c for c in meta.components if c.component == "network")
    assert network.device is None
