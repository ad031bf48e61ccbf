"""The simulated province, running: `edge-agent sim province` (`./run demo --province`).

A real mosquitto on 127.0.0.1, `centre serve --http` on a free 127.0.0.1 port with the
province's roster imported and an operator account, a few real agents (`edge-agent run`,
network only, accepting the centre's signed commands) and every other site as a light
publisher (agent/sim/swarm.py: one MQTT connection per site, the real payload models) acting
out its role from agent/sim/province.py: ready, fault, degraded, offline (its line drops, the
broker sends its will), silent (promises a 2 s heartbeat, then says nothing), or never seen.
A session runs: the sites report attendance. Every process it starts ends with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import queue
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from agent.checks.model import Status
from agent.errors import ConfigError
from agent.messages import message
from agent.sim.broker import Mosquitto, network_only_settings
from agent.sim.fleet_site import SimSite
from agent.sim.province import ProvinceSite, Role, generate, roster_csv
from agent.sim.swarm import SiteClient, drive
from agent.sim.toml_writer import dump_toml

ROOT = Path(__file__).resolve().parent.parent.parent
OPERATOR = "operator"
KEY_STEM = "centre-command"
HEARTBEAT_S = 30.0  # what a light site's meta promises
SILENT_HEARTBEAT_S = 2.0  # a silent site's promise: it turns silent within 3 x this
PERIODS = {"state": 20.0, "checks": 60.0, "attendance": 30.0}
_URL = re.compile(r"http://127\.0\.0\.1:\d+\S*")
LIGHT = {Role.READY, Role.FAULT, Role.DEGRADED, Role.OFFLINE, Role.SILENT}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _python(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "agent", *map(str, args)]


def sim_site(site: ProvinceSite) -> SimSite:
    """The light publisher of one site, with its role's devices and heartbeat."""
    sim = SimSite(
        site.site_id, tier=site.tier, parent=site.parent, expected=site.summoned,
        heartbeat_s=SILENT_HEARTBEAT_S if site.role is Role.SILENT else HEARTBEAT_S,
        name=site.name,
    )  # fmt: skip
    if site.role is Role.FAULT:
        sim.statuses["camera"] = Status.FAIL
    elif site.role is Role.DEGRADED:
        sim.statuses["microphone"] = Status.WARN
    return sim


def _present(sim: SimSite) -> int | None:
    if sim.statuses["camera"] is Status.FAIL:
        return None  # a failed camera counts nobody
    return random.randint(sim.expected * 6 // 10, sim.expected)


async def _act(client: SiteClient, role: Role, session: str, stop_at: float) -> None:
    """One site's part, from its birth to `stop_at`."""
    site = client.site
    client.announce()
    client.publish(site.checks())
    if role is Role.OFFLINE:
        await asyncio.sleep(random.uniform(1.0, 3.0))
        if client.writer is not None:
            client.writer.transport.abort()  # no DISCONNECT: the broker sends the will
        return
    if role is Role.SILENT:
        await drive(client, {}, stop_at)  # keeps the connection (pings), reports nothing
        return
    client.publish(site.attendance(session, _present(site)))
    await drive(client, PERIODS, stop_at, session, _present)


class ProvinceDemo:
    def __init__(self, workdir: Path, seed: int = 18) -> None:
        self.workdir = workdir
        self.sites = generate(seed)
        self.session = f"hop-{datetime.now(UTC):%Y%m%d}"
        self.password = secrets.token_urlsafe(9)
        self.operator = OPERATOR
        self.url = ""
        self.roster_path = workdir / "roster.csv"
        self.config_path = workdir / "centre.toml"
        self.db_path = workdir / "centre.sqlite"
        self.broker: Mosquitto | None = None
        self.centre: subprocess.Popen[str] | None = None
        self.agents: list[subprocess.Popen[bytes]] = []
        workdir.mkdir(parents=True, exist_ok=True)

    def role_count(self, role: Role) -> int:
        return sum(s.role is role for s in self.sites)

    # ---- start ---------------------------------------------------------------------------

    def start(self) -> ProvinceDemo:
        try:
            self.roster_path.write_text(roster_csv(self.sites), encoding="utf-8")
            self.broker = Mosquitto(self.workdir / "broker", persistence=False).start()
            from agent.centre.keys import write_key_pair  # noqa: PLC0415 - cryptography

            public = write_key_pair(self.workdir / KEY_STEM)
            centre = {
                "db_path": str(self.db_path), "report_interval_s": HEARTBEAT_S,
                "retained_wait_s": 0.5, "command_key": str(self.workdir / f"{KEY_STEM}.key"),
                "broker": {"host": self.broker.host, "port": self.broker.port},
            }  # fmt: skip
            self.config_path.write_text(dump_toml(centre))
            # The agents first: their start-up (a few seconds of imports) overlaps the
            # centre's, and a centre that starts later still sees their retained birth.
            agents = [s for s in self.sites if s.role is Role.AGENT]
            self.agents = [self._start_agent(s, n, public) for n, s in enumerate(agents)]
            self._import_roster()
            self._add_operator()
            self._start_centre()
        except BaseException:
            self.stop()
            raise
        return self

    def _import_roster(self) -> None:
        """The roster through the command an operator types."""
        done = subprocess.run(
            _python("centre", "sites", "import", self.roster_path, "--config", self.config_path),
            capture_output=True, text=True, env=_env(), check=False, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise ConfigError(
                message("sim.province.import_failed", output=(done.stderr or done.stdout)[-800:]),
                message("sim.province.centre_failed_hint", path=str(self.roster_path)),
            )

    def _add_operator(self) -> None:
        from agent.centre.web.accounts import Accounts  # noqa: PLC0415 - the centre extra
        from agent.centre.web.accounts import Role as AccountRole  # noqa: PLC0415

        accounts = Accounts(self.db_path)
        try:
            accounts.add(self.operator, self.password, AccountRole.OPERATOR, replace=True)
        finally:
            accounts.close()

    def _start_centre(self, timeout: float = 30.0) -> None:
        log_path = self.workdir / "centre.log"
        with log_path.open("ab") as log:
            self.centre = subprocess.Popen(
                _python("centre", "serve", "--config", self.config_path, "--log-level",
                        "warning", "--http", "127.0.0.1:0"),
                stdout=subprocess.PIPE, stderr=log, text=True, env=_env(),
            )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        assert self.centre.stdout is not None
        threading.Thread(
            target=_drain, args=(self.centre.stdout, lines), name="centre-out", daemon=True
        ).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.centre.poll() is None:
            with contextlib.suppress(queue.Empty):
                found = _URL.search(lines.get(timeout=0.2))
                if found:
                    self.url = found.group(0).rstrip("/")
                    return
        raise ConfigError(
            message("sim.province.centre_failed",
                    log=log_path.read_text(errors="replace")[-800:].strip()),
            message("sim.province.centre_failed_hint", path=str(log_path)),
        )  # fmt: skip

    def _start_agent(
        self, site: ProvinceSite, number: int, public_key: str
    ) -> subprocess.Popen[bytes]:
        assert self.broker is not None
        # Numbered, not named: the control socket's whole path must fit a Unix socket address
        # (107 bytes), and a site id of 30 characters under a deep folder did not.
        home = self.workdir / "agents" / str(number)
        config: dict[str, Any] = network_only_settings(self.broker, home / "state", site.site_id)
        config["site"] = {"site_id": site.site_id, "name": site.name, "tier": site.tier,
                          "expected_attendance": site.summoned}  # fmt: skip
        if site.parent:
            config["site"]["parent"] = site.parent
        config["report"] = {"check_interval_s": 60.0, "state_heartbeat_s": HEARTBEAT_S}
        config["commands"] = {"keys": [{"key_id": KEY_STEM, "public_key": public_key}]}
        path = home / "agent.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_toml(config))
        with (home / "agent.log").open("ab") as log:
            return subprocess.Popen(
                _python("--config", path, "run"),
                stdout=subprocess.DEVNULL, stderr=log, env=_env(),
            )  # fmt: skip

    # ---- run -----------------------------------------------------------------------------

    def run(self, seconds: float | None) -> None:
        """The light sites until `seconds` have passed (None: until Ctrl-C)."""
        asyncio.run(self._swarm(seconds))

    async def _swarm(self, seconds: float | None) -> None:
        assert self.broker is not None
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + seconds if seconds else math.inf
        cast = [(SiteClient(sim_site(s), "sim-"), s.role) for s in self.sites if s.role in LIGHT]
        gate = asyncio.Semaphore(64)
        port = self.broker.port

        async def connect(client: SiteClient) -> None:
            async with gate:
                await client.connect(port)

        try:
            await asyncio.gather(*(connect(c) for c, _ in cast))
            acts = [_act(c, role, self.session, stop_at) for c, role in cast]
            await asyncio.gather(*acts, _until(stop_at))
        finally:
            for client, _ in cast:
                if client.writer is not None:
                    client.writer.close()

    # ---- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Every process this demo started, ended: agents first (their clean shutdown reaches
        the centre), then the centre, then the broker."""
        for group in (self.agents, [self.centre]):
            for proc in group:
                if proc is not None and proc.poll() is None:
                    proc.terminate()
            for proc in group:
                if proc is None:
                    continue
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.broker is not None:
            self.broker.stop()

    def pids(self) -> list[int]:
        procs = [*self.agents, self.centre, self.broker.proc if self.broker else None]
        return [p.pid for p in procs if p is not None]


async def _until(stop_at: float) -> None:
    if math.isinf(stop_at):
        await asyncio.Event().wait()  # until Ctrl-C cancels it
    await asyncio.sleep(max(0.0, stop_at - asyncio.get_running_loop().time()))


def _drain(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
