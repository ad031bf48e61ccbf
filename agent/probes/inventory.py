"""What the machine has: the inventory a technician needs to fill in the settings file."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from agent.checks.edid import decode_edid
from agent.errors import BadReply
from agent.i18n import N_, Lang, translate
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
        return [{"error": f"{exc}; install libportaudio2"}]
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
    "video": N_("video"),
    "audio": N_("audio"),
    "serial": N_("serial"),
    "display": N_("display"),
    "leds": N_("leds"),
    "path": N_("path"),
    "name": N_("name"),
    "by_id": N_("by_id"),
    "index": N_("index"),
    "inputs": N_("inputs"),
    "outputs": N_("outputs"),
    "rate": N_("rate"),
    "description": N_("description"),
    "connector": N_("connector"),
    "status": N_("status"),
    "monitor": N_("monitor"),
    "manufacturer": N_("manufacturer"),
    "edid_error": N_("edid_error"),
    "modes": N_("modes"),
    "error": N_("error"),
}
_NONE_FOUND = N_("(none found)")
# A connector's state as sysfs writes it.
_STATES = {"connected": N_("connected"), "disconnected": N_("disconnected")}


def render_inventory(inv: dict[str, list[dict[str, Any]]], lang: Lang = "en") -> str:
    def label(key: str) -> str:
        return translate(_LABELS[key], lang) if key in _LABELS else key

    def shown(key: str, value: Any) -> Any:
        if key == "status" and value in _STATES:
            return translate(_STATES[value], lang)
        return value

    lines = []
    for section, items in inv.items():
        lines.append(f"{label(section)}:")
        if not items:
            lines.append("  " + translate(_NONE_FOUND, lang))
        for item in items:
            lines.append(
                "  "
                + "  ".join(f"{label(k)}={shown(k, v)}" for k, v in item.items() if v is not None)
            )
    return "\n".join(lines)
