"""Display check: the DRM connector in sysfs (connected, enabled, modes, EDID) and, where a
firmware profile is configured, the display's own power state over RS-232 / PJLink / CEC.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from agent.checks.model import MetricValue, Outcome, Status, worst_status
from agent.config import DisplaySettings, Settings
from agent.errors import BadReply, DeviceNotFound
from agent.probes.edid import Edid, decode_edid


@dataclass(frozen=True)
class ConnectorState:
    name: str  # e.g. card0-HDMI-A-1
    status: str  # connected | disconnected | unknown
    enabled: str
    modes: list[str]
    edid: bytes


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
        raise DeviceNotFound(
            "display: no DRM connector found (no graphics driver?)",
            "check that the graphics driver is loaded; `edge-agent devices` lists outputs",
        )
    if wanted == "auto":
        connected = [c for c in connectors if c.status == "connected"]
        return connected[0] if connected else connectors[0]
    for conn in connectors:
        if conn.name == wanted or conn.name.split("-", 1)[-1] == wanted:
            return conn
    names = ", ".join(c.name for c in connectors)
    raise DeviceNotFound(
        f"display connector {wanted}: not found",
        f"this machine has: {names}; set display.connector to one of them",
    )


def judge_connector(conn: ConnectorState, cfg: DisplaySettings) -> Outcome:
    """Pure verdict on one connector's sysfs state."""
    metrics: dict[str, MetricValue] = {
        "connector": conn.name,
        "connected": conn.status == "connected",
        "enabled": conn.enabled == "enabled",
        "preferred_mode": conn.modes[0] if conn.modes else None,
    }
    if conn.status != "connected":
        return Outcome(
            Status.FAIL,
            f"display on {conn.name}: {conn.status or 'unknown'}",
            "check the HDMI cable at both ends and that the screen is switched on "
            "(some screens in standby report disconnected)",
            metrics,
        )
    edid: Edid | None = None
    edid_problem = ""
    if not conn.edid:
        edid_problem = "no EDID"
    else:
        try:
            edid = decode_edid(conn.edid)
        except BadReply as exc:
            edid_problem = exc.message
    if edid is not None:
        metrics |= {
            "manufacturer": edid.manufacturer,
            "product_code": edid.product_code,
            "serial_number": edid.serial_number,
            "monitor_name": edid.monitor_name,
            "edid_checksum_valid": edid.checksum_valid,
        }
        if not edid.checksum_valid:
            edid_problem = "EDID checksum invalid"
    problems: list[tuple[Status, str, str]] = []
    if edid_problem:
        problems.append(
            (
                Status.WARN,
                edid_problem,
                "the cable or an HDMI switch may be faulty; try a direct cable",
            )
        )
    if conn.enabled != "enabled":
        problems.append(
            (
                Status.WARN,
                "connected but not enabled",
                "the desktop is not using this output; restart the display session",
            )
        )
    width = _mode_width(conn.modes[0]) if conn.modes else 0
    if width and width < cfg.min_width:
        problems.append(
            (
                Status.WARN,
                f"best mode {conn.modes[0]} below {cfg.min_width} px wide",
                "use the HDMI input of the TV, not a VGA adapter",
            )
        )
    label = (edid.monitor_name or edid.manufacturer) if edid else "unknown screen"
    if not problems:
        return Outcome(
            Status.OK, f"{label} on {conn.name}, {metrics['preferred_mode']}", "", metrics
        )
    status = worst_status(p[0] for p in problems)
    return Outcome(
        status,
        f"{label} on {conn.name}: " + "; ".join(p[1] for p in problems),
        "; ".join(p[2] for p in problems),
        metrics,
    )


def _mode_width(mode: str) -> int:
    try:
        return int(mode.split("x", 1)[0])
    except ValueError:
        return 0


def merge(sysfs: Outcome, power: Outcome) -> Outcome:
    """One outcome from the connector check and the display's own power report."""
    status = worst_status([sysfs.status, power.status])
    metrics = dict(sysfs.metrics) | {f"power_{k}": v for k, v in power.metrics.items()}
    reasons = [sysfs.reason, power.reason]
    hints = [h for h in (sysfs.hint, power.hint) if h]
    return Outcome(status, "; ".join(reasons), "; ".join(hints), metrics)


def check_display(settings: Settings) -> Outcome:
    cfg = settings.display
    conn = pick_connector(read_connectors(settings.paths.sysfs_root), cfg.connector)
    outcome = judge_connector(conn, cfg)
    if cfg.profile:
        # Display control profiles live with the other firmware profiles.
        power_module = importlib.import_module("agent.probes.display_power")
        outcome = merge(outcome, power_module.query_display_power(settings))
    return outcome
