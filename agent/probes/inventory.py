"""What the machine has: the inventory a technician needs to fill in the settings file."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from agent.checks.edid import decode_edid
from agent.errors import BadReply
from agent.i18n import Lang, say
from agent.messages import Message, message, render
from agent.probes.display import read_connectors


def video_devices() -> list[dict[str, Any]]:
    by_id = {os.path.realpath(p): p for p in glob.glob("/dev/v4l/by-id/*")}
    found = []
    for dev in sorted(glob.glob("/dev/video*")):
        name_file = Path(f"/sys/class/video4linux/{Path(dev).name}/name")
        name = name_file.read_text().strip() if name_file.exists() else ""
        found.append({"path": dev, "name": name, "by_id": by_id.get(os.path.realpath(dev))})
    return found


def audio_devices() -> list[dict[str, Any]]:
    try:
        import sounddevice as sd  # noqa: PLC0415 - heavy; only when asked
    except OSError as exc:
        return [{"error": message("devices.no_portaudio", error=str(exc)).model_dump()}]
    found = []
    for index, dev in enumerate(sd.query_devices()):
        found.append(
            {
                "index": index,
                "name": dev["name"],
                "inputs": dev["max_input_channels"],
                "outputs": dev["max_output_channels"],
                "rate": dev["default_samplerate"],
            }
        )
    return found


def serial_ports() -> list[dict[str, Any]]:
    from serial.tools import list_ports  # noqa: PLC0415

    by_id = {os.path.realpath(p): p for p in glob.glob("/dev/serial/by-id/*")}
    return [
        {
            "path": port.device,
            "description": port.description,
            "by_id": by_id.get(os.path.realpath(port.device)),
        }
        for port in sorted(list_ports.comports(), key=lambda p: p.device)
    ]


def displays(sysfs_root: Path) -> list[dict[str, Any]]:
    found = []
    for conn in read_connectors(sysfs_root):
        entry: dict[str, Any] = {"connector": conn.name, "status": conn.status}
        if conn.edid:
            try:
                edid = decode_edid(conn.edid)
                entry |= {"monitor": edid.monitor_name, "manufacturer": edid.manufacturer}
            except BadReply as exc:
                entry["edid_error"] = exc.message
        entry["modes"] = conn.modes[:3]
        found.append(entry)
    return found


def leds(sysfs_root: Path) -> list[dict[str, Any]]:
    return [{"name": p.name} for p in sorted((sysfs_root / "class" / "leds").glob("*"))]


def inventory(sysfs_root: Path) -> dict[str, list[dict[str, Any]]]:
    return {
        "video": video_devices(),
        "audio": audio_devices(),
        "serial": serial_ports(),
        "display": displays(sysfs_root),
        "leds": leds(sysfs_root),
    }


# The sections' and fields' labels (the keys stay English in --json: scripts read them).
_LABELS = {
    "video": "devices.label.video",
    "audio": "devices.label.audio",
    "serial": "devices.label.serial",
    "display": "devices.label.display",
    "leds": "devices.label.leds",
    "path": "devices.label.path",
    "name": "devices.label.name",
    "by_id": "devices.label.by_id",
    "index": "devices.label.index",
    "inputs": "devices.label.inputs",
    "outputs": "devices.label.outputs",
    "rate": "devices.label.rate",
    "description": "devices.label.description",
    "connector": "devices.label.connector",
    "status": "devices.label.status",
    "monitor": "devices.label.monitor",
    "manufacturer": "devices.label.manufacturer",
    "edid_error": "devices.label.edid_error",
    "modes": "devices.label.modes",
    "error": "devices.label.error",
}
# A connector's state as sysfs writes it.
_STATES = {"connected": "devices.state.connected", "disconnected": "devices.state.disconnected"}


def render_inventory(inv: dict[str, list[dict[str, Any]]], lang: Lang = "en") -> str:
    def label(key: str) -> str:
        return say(_LABELS[key], lang) if key in _LABELS else key

    def shown(key: str, value: Any) -> Any:
        if key == "status" and value in _STATES:
            return say(_STATES[value], lang)
        if key == "error" and isinstance(value, dict):  # a message: {"id": ..., "params": ...}
            return render(Message.model_validate(value), lang)
        return value

    lines = []
    for section, items in inv.items():
        lines.append(f"{label(section)}:")
        if not items:
            lines.append("  " + say("devices.none_found", lang))
        for item in items:
            lines.append(
                "  "
                + "  ".join(f"{label(k)}={shown(k, v)}" for k, v in item.items() if v is not None)
            )
    return "\n".join(lines)
