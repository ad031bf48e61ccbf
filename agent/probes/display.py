"""Display check: read the DRM connector in sysfs (connected, enabled, modes, EDID) and, where
a firmware profile is configured, the display's own power state over RS-232 / PJLink / CEC.
The verdict on what was read is agent.checks.display_connector (pure).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from agent.checks.display_connector import ConnectorState, judge_connector, merge
from agent.checks.model import Outcome
from agent.config import Settings
from agent.errors import DeviceNotFound
from agent.messages import message


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def read_connectors(sysfs_root: Path) -> list[ConnectorState]:
    """Every DRM connector (card*-*) under <sysfs_root>/class/drm, sorted by name."""
    drm = sysfs_root / "class" / "drm"
    if not drm.is_dir():
        return []
    found = []
    for entry in sorted(drm.glob("card*-*")):
        try:
            edid = (entry / "edid").read_bytes()
        except OSError:
            edid = b""
        found.append(
            ConnectorState(
                name=entry.name,
                status=_read_text(entry / "status"),
                enabled=_read_text(entry / "enabled"),
                modes=_read_text(entry / "modes").split(),
                edid=edid,
            )
        )
    return found


def pick_connector(connectors: list[ConnectorState], wanted: str) -> ConnectorState:
    if not connectors:
        raise DeviceNotFound(message("display.no_connectors"), message("display.hint.driver"))
    if wanted == "auto":
        connected = [c for c in connectors if c.status == "connected"]
        return connected[0] if connected else connectors[0]
    for conn in connectors:
        if conn.name == wanted or conn.name.split("-", 1)[-1] == wanted:
            return conn
    names = ", ".join(c.name for c in connectors)
    raise DeviceNotFound(
        message("display.connector_missing", connector=wanted),
        message("display.hint.choose_connector", names=names),
    )


def check_display(settings: Settings) -> Outcome:
    cfg = settings.display
    conn = pick_connector(read_connectors(settings.paths.sysfs_root), cfg.connector)
    outcome = judge_connector(conn, cfg)
    if cfg.profile:
        # Display control profiles live with the other firmware profiles.
        power_module = importlib.import_module("agent.probes.display_power")
        outcome = merge(outcome, power_module.query_display_power(settings))
    return outcome
