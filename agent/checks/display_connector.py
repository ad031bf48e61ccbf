"""The display verdict: one DRM connector's state (as read from sysfs) in, an outcome out,
and the merge with the display's own power report. Pure: no file is read here."""

from __future__ import annotations

from dataclasses import dataclass

from agent.checks.edid import Edid, decode_edid
from agent.checks.model import MetricValue, Outcome, Status, worst_status
from agent.config import DisplaySettings
from agent.errors import BadReply


@dataclass(frozen=True)
class ConnectorState:
    name: str  # e.g. card0-HDMI-A-1
    status: str  # connected | disconnected | unknown
    enabled: str
    modes: list[str]
    edid: bytes


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
