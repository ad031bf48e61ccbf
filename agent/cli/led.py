"""`edge-agent led`: the LED legend for technicians, and the root-side LED preparation."""

from __future__ import annotations

import argparse
import grp
import json
import sys
from dataclasses import asdict
from pathlib import Path

from agent.config import PathSettings, load_settings
from agent.errors import ConfigError
from agent.i18n import LANGUAGES, select_language, set_language, t
from agent.led.driver import prepare_leds
from agent.led.patterns import LedSettings, LegendRow, legend
from agent.messages import message

AGENT_GROUP = "edge-agent"


def render_legend(rows: list[LegendRow]) -> str:
    """One block per pattern: readable on an 80-column SSH terminal."""
    width = max(len(r.name) for r in rows)
    lines = [t("led.legend_title"), ""]
    for r in rows:
        lines.append(f"  {r.name.ljust(width)}  {r.look}  ({t('led.single', look=r.single_look)})")
        lines.append(f"  {' ' * width}  {r.meaning}")
    return "\n".join(lines)


def _led_settings(args: argparse.Namespace) -> tuple[LedSettings, Path]:
    """The [led] section once it is registered in Settings; defaults before that."""
    try:
        settings = load_settings(args.config)
    except ConfigError:
        if args.prepare:
            raise
        return LedSettings(), PathSettings().sysfs_root
    led = getattr(settings, "led", None)
    return (led if isinstance(led, LedSettings) else LedSettings()), settings.paths.sysfs_root


def _led(args: argparse.Namespace) -> int:
    lang = select_language(args.lang)
    set_language(lang)
    if args.prepare:
        settings, sysfs_root = _led_settings(args)
        if args.sysfs_root:
            sysfs_root = Path(args.sysfs_root)
        if not settings.enabled:
            sys.stdout.write(t("led.disabled") + "\n")
            return 0
        try:
            gid = grp.getgrnam(args.group).gr_gid
        except KeyError:
            raise ConfigError(
                message("led.no_group", group=args.group), message("led.no_group_hint")
            ) from None
        changed = prepare_leds(sysfs_root, settings.names().values(), gid)
        sys.stdout.write(t("led.prepared", group=args.group, count=len(changed)) + "\n")
        return 0
    rows = legend(lang)
    if args.json:
        out = json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2)
    else:
        out = render_legend(rows)
    sys.stdout.write(out + "\n")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    led = sub.add_parser("led", help=t("cli.led.help"), description=t("cli.led.description"))
    action = led.add_mutually_exclusive_group()
    action.add_argument("--legend", action="store_true", help=t("cli.led.legend_help"))
    action.add_argument("--prepare", action="store_true", help=t("cli.led.prepare_help"))
    led.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    led.add_argument("--json", action="store_true", help=t("cli.json_help"))
    led.add_argument("--group", default=AGENT_GROUP, help=argparse.SUPPRESS)
    led.add_argument("--sysfs-root", help=argparse.SUPPRESS)
    led.set_defaults(func=_led)
