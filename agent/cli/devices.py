"""`edge-agent devices`: list cameras, audio devices, serial ports, screens and LEDs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.config import PathSettings, load_settings
from agent.errors import ConfigError
from agent.i18n import LANGUAGES, select_language, t
from agent.probes.inventory import inventory, render_inventory


def _devices(args: argparse.Namespace) -> int:
    # Works before the settings file exists: that is when a technician needs it most.
    try:
        sysfs_root = load_settings(args.config).paths.sysfs_root
    except ConfigError:
        sysfs_root = PathSettings().sysfs_root
    if args.sysfs_root:
        sysfs_root = Path(args.sysfs_root)
    inv = inventory(sysfs_root)
    text = (
        json.dumps(inv, indent=2)
        if args.json
        else render_inventory(inv, select_language(args.lang))
    )
    sys.stdout.write(text + "\n")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    devices = sub.add_parser("devices", help=t("cli.devices.help"))
    devices.add_argument("--json", action="store_true", help=t("cli.json_help"))
    devices.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    devices.add_argument("--sysfs-root", help=argparse.SUPPRESS)
    devices.set_defaults(func=_devices)
