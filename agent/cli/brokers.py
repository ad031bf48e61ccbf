"""`edge-agent centre brokers config`: the mosquitto configuration of N regional brokers
bridged to a central one (agent/centre/brokers.py makes it; this writes the files)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.centre import brokers
from agent.errors import ConfigError
from agent.i18n import t
from agent.messages import message


def cmd_config(args: argparse.Namespace) -> int:
    try:
        files = brokers.generate(args.regions, args.central, args.prefix)
    except ValueError:
        raise ConfigError(
            message("brokers.error.args", regions=args.regions, central=args.central),
            message("brokers.hint.args", max=brokers.MAX_REGIONS),
        ) from None
    out = Path(args.out)
    try:
        for name, text in files.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            message("brokers.error.write", path=str(out), problem=exc.strerror or str(exc)),
            message("brokers.hint.write"),
        ) from None
    sys.stdout.write(t("brokers.cli.written", count=len(files), regions=args.regions,
                       path=str(out)) + "\n")  # fmt: skip
    return 0


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("brokers", help=t("brokers.cli.help"))
    bsub = p.add_subparsers(dest="brokers_action", required=True, metavar=t("cli.metavar.command"))
    cfg = bsub.add_parser("config", help=t("brokers.cli.config_help"))
    cfg.add_argument("--regions", type=int, required=True, help=t("brokers.cli.regions_help"))
    cfg.add_argument("--central", required=True, metavar=t("brokers.cli.metavar_central"),
                     help=t("brokers.cli.central_help"))  # fmt: skip
    cfg.add_argument("--prefix", default="vc", help=t("brokers.cli.prefix_help"))
    cfg.add_argument("--out", required=True, metavar=t("cli.metavar.dir"),
                     help=t("brokers.cli.out_help"))  # fmt: skip
    cfg.set_defaults(func=cmd_config)
