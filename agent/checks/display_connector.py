"""The display verdict: one DRM connector's state (as read from sysfs) in, an outcome out,
and the merge with the display's own power report. Pure: no file is read here."""

from __future__ import annotations

from dataclasses import dataclass

from agent.checks.edid import Edid, decode_edid
from agent.checks.model import MetricValue, Outcome, Status, said, worst_status
from agent.config import DisplaySettings
from agent.errors import BadReply
from agent.messages import Message, message


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
        return said(
            Status.FAIL,
            message("display.not_connected", connector=conn.name, state=_state(conn.status)),
            message("display.hint.cable"),
            metrics,
        )
    edid: Edid | None = None
    edid_problem: Message | None = None
    if not conn.edid:
        edid_problem = message("display.no_edid")
    else:
        try:
            edid = decode_edid(conn.edid)
        except BadReply as exc:
            edid_problem = exc.msg or message("display.merged", parts=exc.message)
    if edid is not None:
        metrics |= {
            "manufacturer": edid.manufacturer,
            "product_code": edid.product_code,
            "serial_number": edid.serial_number,
            "monitor_name": edid.monitor_name,
            "edid_checksum_valid": edid.checksum_valid,
        }
        if not edid.checksum_valid:
            edid_problem = message("display.edid_checksum")
    problems: list[tuple[Status, Message, Message]] = []
    if edid_problem is not None:
        problems.append((Status.WARN, edid_problem, message("display.hint.edid")))
    if conn.enabled != "enabled":
        problems.append(
            (Status.WARN, message("display.not_enabled"), message("display.hint.not_enabled"))
        )
    width = _mode_width(conn.modes[0]) if conn.modes else 0
    if width and width < cfg.min_width:
        problems.append(
            (
                Status.WARN,
                message("display.low_mode", mode=conn.modes[0], min_width=cfg.min_width),
                message("display.hint.low_mode"),
            )
        )
    name = (edid.monitor_name or edid.manufacturer) if edid else None
    label = name or message("display.unknown_screen")
    if not problems:
        mode = str(metrics["preferred_mode"])
        return said(
            Status.OK,
            message("display.ok", screen=label, connector=conn.name, mode=mode),
            None,
            metrics,
        )
    status = worst_status(p[0] for p in problems)
    return said(
        status,
        message(
            "display.problems", screen=label, connector=conn.name, problems=[p[1] for p in problems]
        ),
        message("display.hints", hints=[p[2] for p in problems]),
        metrics,
    )


def _state(status: str) -> Message:
    """The connector's sysfs status word, said in the reader's language."""
    if status == "connected":
        return message("display.state.connected")
    if status == "disconnected":
        return message("display.state.disconnected")
    return message("display.state.unknown")


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
    merged = Outcome(status, "; ".join(reasons), "; ".join(hints), metrics)
    if sysfs.reason_msg is None or power.reason_msg is None:
        return merged  # a part only in English: the whole stays English
    hint_msgs = [m for m in (sysfs.hint_msg, power.hint_msg) if m is not None]
    if len(hint_msgs) != len(hints):
        return merged
    reason = message("display.merged", parts=[sysfs.reason_msg, power.reason_msg])
    hint = message("display.hints", hints=hint_msgs) if hint_msgs else None
    return said(status, reason, hint, metrics)
