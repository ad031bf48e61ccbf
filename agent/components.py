"""The site's components: the one list the rest of the agent derives from.

A component's name is its settings section (`[camera]`), the `component` of every report,
a choice of `edge-agent check` and of the `run-checks` command. Each has a probe, imported
only when that component is checked (so the idle daemon never loads OpenCV or PortAudio),
and says which device it uses, for the birth record the centre shows.

Stdlib only, and Settings is a type here, never an import: agent.config imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from agent.config import Settings

ComponentName = Literal["camera", "microphone", "display", "codec", "ptz", "network"]
COMPONENTS: tuple[str, ...] = get_args(ComponentName)  # in report order

Device = tuple[str | None, str | None]  # (device, firmware profile) as the meta record shows


@dataclass(frozen=True)
class ComponentSpec:
    probe_module: str
    probe_function: str  # takes the whole Settings, returns an Outcome
    device: Callable[[Settings], Device]


def _network_targets(s: Settings) -> Device:
    return ",".join(f"{t.host}:{t.port}" for t in s.network.targets) or None, None


TABLE: dict[str, ComponentSpec] = {
    "camera": ComponentSpec(
        "agent.probes.camera", "check_camera", lambda s: (s.camera.source, None)
    ),
    "microphone": ComponentSpec(
        "agent.probes.microphone", "check_microphone", lambda s: (str(s.microphone.device), None)
    ),
    "display": ComponentSpec(
        "agent.probes.display",
        "check_display",
        lambda s: (s.display.port or s.display.connector, s.display.profile),
    ),
    "codec": ComponentSpec(
        "agent.probes.codec", "check_codec", lambda s: (s.codec.port, s.codec.profile)
    ),
    "ptz": ComponentSpec("agent.probes.ptz", "check_ptz", lambda s: (s.ptz.port, s.ptz.profile)),
    "network": ComponentSpec("agent.probes.network", "check_network", _network_targets),
}
if tuple(TABLE) != COMPONENTS:  # a name added to one and not the other
    raise RuntimeError(f"agent.components: TABLE {tuple(TABLE)} != COMPONENTS {COMPONENTS}")
