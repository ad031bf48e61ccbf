"""`edge-agent sim up|demo`: the simulated site, for demos, tests and trying the agent out."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from agent.checks.model import ExitCode
from agent.checks.report import render_table
from agent.config import load_settings
from agent.errors import ConfigError
from agent.i18n import t
from agent.messages import message
from agent.system.logs import setup_logging


@contextlib.contextmanager
def _from_checkout() -> Iterator[None]:
    """The simulator comes with a checkout only: neither the wheel nor a site's install.sh
    copy carries agent/sim/, so there the command says where to run it instead."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name != "agent.sim" and not (exc.name or "").startswith("agent.sim."):
            raise
        raise ConfigError(
            message("cli.sim.not_installed"), message("cli.sim.from_checkout")
        ) from None


def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="edge-agent-sim-"))


def _up(args: argparse.Namespace) -> int:
    with _from_checkout():
        from agent.sim.site import SimulatedSite  # noqa: PLC0415 - loads OpenCV and numpy

    setup_logging("info")
    with SimulatedSite(_workdir(args), broker_port=args.broker_port) as site:
        out = sys.stdout
        out.write(t("sim.up.ready", site_id=site.site_id) + "\n\n")
        for key, value in site.env.items():
            out.write(f"  export {key}={value}\n")
        out.write(f"  edge-agent --config {site.config_path} check\n")
        port = f" --port {site.broker_port}" if site.broker_port else ""
        out.write(
            f"  edge-agent centre send identify --site {site.site_id} --key {site.command_key}"
            f"{port}\n\n"
        )
        out.write(t("sim.up.stop") + "\n")
        out.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return int(ExitCode.OK)


def _demo(args: argparse.Namespace) -> int:
    from agent.selftest.suite import run_selftest  # noqa: PLC0415

    with _from_checkout():
        from agent.sim.broker import Mosquitto  # noqa: PLC0415
        from agent.sim.centre_view import report_to_local_broker  # noqa: PLC0415
        from agent.sim.site import SimulatedSite  # noqa: PLC0415

    setup_logging("warning")
    out = sys.stdout
    workdir = _workdir(args)
    broker = Mosquitto(workdir / "broker").start()
    try:
        with SimulatedSite(workdir / "site", broker_port=broker.port) as site:
            site.apply_env()
            settings = load_settings(site.config_path)
            if site.camera is not None:
                site.camera.warm()  # the check reads the camera's true rate, not a cold start
            title = t(
                "sim.demo.site",
                site_id=site.site_id,
                camera=site.camera.url if site.camera else "",
                codec=site.codec.port if site.codec else "",
                port=broker.port,
            )
            out.write(f"{title}\n\n{t('sim.demo.check')}\n")
            start = time.monotonic()
            test = run_selftest(settings)
            out.write(render_table(test.results, test.verdict) + "\n")
            out.write(t("sim.demo.took", seconds=time.monotonic() - start) + "\n\n")
            if args.fault_after >= 0 and site.camera is not None:
                camera = site.camera
                out.write(t("sim.demo.cover", seconds=args.fault_after) + "\n")
                timer = threading.Timer(args.fault_after, lambda: camera.set_mode("black"))
                timer.daemon = True
                timer.start()
            out.write(t("sim.demo.run", seconds=args.seconds) + "\n")
            out.flush()
            report_to_local_broker(settings, args.seconds, out, broker)
    finally:
        broker.stop()
    return int(ExitCode.OK)


def _province(args: argparse.Namespace) -> int:
    with _from_checkout():
        from agent.sim.province import Role  # noqa: PLC0415
        from agent.sim.province_demo import ProvinceDemo  # noqa: PLC0415

    setup_logging("warning")
    out = sys.stdout
    demo = ProvinceDemo(_workdir(args), seed=args.seed)
    hall = demo.sites[0]
    out.write(t("sim.province.starting", province=hall.name, sites=len(demo.sites),
                agents=demo.role_count(Role.AGENT)) + "\n")  # fmt: skip
    out.flush()
    demo.start()
    try:
        out.write(t("sim.province.roster", path=str(demo.roster_path)) + "\n")
        out.write("\n" + t("sim.province.page", url=demo.url) + "\n")
        out.write(t("sim.province.login", name=demo.operator, password=demo.password) + "\n\n")
        out.write(t("sim.province.mix", fault=demo.role_count(Role.FAULT),
                    degraded=demo.role_count(Role.DEGRADED), offline=demo.role_count(Role.OFFLINE),
                    never=demo.role_count(Role.NEVER_SEEN)) + "\n")  # fmt: skip
        out.write(t("sim.province.mix_silent", silent=demo.role_count(Role.SILENT)) + "\n")
        out.write(t("sim.province.session", session=demo.session) + "\n")
        out.write((t("sim.province.for", seconds=args.seconds) if args.seconds
                   else t("sim.up.stop")) + "\n")  # fmt: skip
        out.flush()
        with contextlib.suppress(KeyboardInterrupt):
            demo.run(args.seconds)
    finally:
        demo.stop()
    out.write(t("sim.province.stopped") + "\n")
    return int(ExitCode.OK)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("sim", help=t("cli.sim.help"))
    sim_sub = sim.add_subparsers(dest="sim_command", required=True, metavar=t("cli.metavar.action"))
    folder, folder_help = t("cli.metavar.dir"), t("cli.sim.dir_help")

    up = sim_sub.add_parser("up", help=t("cli.sim.up_help"))
    up.add_argument("--dir", metavar=folder, help=folder_help)
    up.add_argument(
        "--broker-port",
        type=int,
        metavar=t("cli.metavar.port"),
        help=t("cli.sim.broker_port_help"),
    )
    up.set_defaults(func=_up)

    demo = sim_sub.add_parser("demo", help=t("cli.sim.demo_help"))
    demo.add_argument("--dir", metavar=folder, help=folder_help)
    demo.add_argument(
        "--seconds",
        type=float,
        default=25.0,
        metavar=t("cli.metavar.seconds"),
        help=t("cli.sim.seconds_help"),
    )
    demo.add_argument(
        "--fault-after",
        type=float,
        default=12.0,
        metavar=t("cli.metavar.seconds"),
        help=t("cli.sim.fault_after_help"),
    )
    demo.set_defaults(func=_demo)

    province = sim_sub.add_parser("province", help=t("sim.province.help"))
    province.add_argument("--dir", metavar=folder, help=folder_help)
    province.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar=t("cli.metavar.seconds"),
        help=t("sim.province.seconds_help"),
    )
    province.add_argument(
        "--seed", type=int, default=18, metavar="N", help=t("sim.province.seed_help")
    )
    province.set_defaults(func=_province)
