"""A real mosquitto on 127.0.0.1 for tests, the demo and the benchmarks.

Three variants, like the centre's brokers: anonymous; username/password with a per-site ACL
(agent.contract.topics.site_acl: each site writes only what it publishes); TLS with client
certificates (CN = site_id, made with openssl here, `use_identity_as_username`) and the same
ACL. The user `centre` may read and write everything under the prefix. Ready means a real
CONNACK, not an open port (a mosquitto that failed to load its key accepts connections for a
moment). `stop()`, `kill()` and `restart()` keep the port, for outage tests. `extra` lines go
at the end (a bridge).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.contract.topics import site_acl
from agent.errors import TransportError
from agent.sim.service import Service
from agent.transport.mqtt import ConnAck, Connection, Endpoint, Protocol

Auth = Literal["anonymous", "password", "tls"]
CENTRE = "centre"
_CENTRE_PASSWORD = "centre-secret"  # noqa: S105 - a throwaway test broker's password


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: str | Path, cwd: Path) -> None:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise TransportError(f"{args[0]} failed: {proc.stderr.strip()}", "")


class Mosquitto(Service):
    def __init__(
        self,
        workdir: Path,
        *,
        auth: Auth = "anonymous",
        prefix: str = "vc",
        port: int | None = None,
        persistence: bool = True,
        save_each_change: bool = False,
        extra: list[str] | None = None,
        acl: str | None = None,
    ) -> None:
        if shutil.which("mosquitto") is None:
            raise TransportError("mosquitto not found", "apt-get install mosquitto")
        self.workdir = workdir
        self.auth = auth
        self.prefix = prefix
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.persistence = persistence
        # Save the persistence file after every change, not only on exit: a kill -9 then
        # loses (almost) nothing the broker had acknowledged, as with a broker that syncs.
        self.save_each_change = save_each_change
        self.extra = extra or []  # more configuration lines: a bridge (agent/centre/brokers.py)
        self.acl = acl  # the ACL file's text instead of the sites' and the centre's
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "mosquitto.log"
        self._passwords: dict[str, str] = {}
        self._atexit = False
        workdir.mkdir(parents=True, exist_ok=True)
        if auth == "tls":
            self._make_ca()
        if auth == "password":
            self.add_user(CENTRE, _CENTRE_PASSWORD)
        self._write_config()

    # ---- configuration ------------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "max_queued_messages 0",  # a benchmark queues 10,000 for one subscriber
            "set_tcp_nodelay true",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
            if self.save_each_change:
                lines += ["autosave_on_changes true", "autosave_interval 1"]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to `mosquitto` and cannot read keys
        acl = self.workdir / "acl"
        acl.write_text(
            self.acl
            if self.acl is not None
            else f"{site_acl(self.prefix)}\nuser {CENTRE}\ntopic readwrite {self.prefix}/#\n"
        )
        if self.auth == "anonymous":
            lines.append("allow_anonymous true")
        elif self.auth == "password":
            lines += [
                "allow_anonymous false",
                f"password_file {self.workdir / 'passwd'}",
                f"acl_file {acl}",
            ]
        else:
            lines += [
                f"cafile {self.ca_file}",
                f"certfile {self.workdir / 'server.pem'}",
                f"keyfile {self.workdir / 'server.key'}",
                "require_certificate true",
                "use_identity_as_username true",
                "allow_anonymous false",
                f"acl_file {acl}",
            ]
        self.conf_path.write_text("\n".join(lines + self.extra) + "\n")

    def add_user(self, name: str, password: str) -> None:
        """Password variant: add (or change) a user; a running broker reloads."""
        passwd = self.workdir / "passwd"
        create = [] if passwd.exists() else ["-c"]
        _run("mosquitto_passwd", *create, "-b", passwd, name, password, cwd=self.workdir)
        passwd.chmod(0o600)
        self._passwords[name] = password
        if self.running and self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)
            time.sleep(0.1)

    # ---- certificates -------------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.workdir / "ca.pem"

    def _make_ca(self) -> None:
        d = self.workdir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _run(
            "openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=edge-agent test CA", cwd=d,
        )  # fmt: skip
        self._sign("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "extendedKeyUsage=serverAuth\n")  # fmt: skip

    def _sign(self, stem: str, cn: str, extensions: str) -> ClientCert:
        d = self.workdir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        (d / f"{stem}.ext").write_text(extensions)
        _run(
            "openssl", "req", *ec, "-keyout", f"{stem}.key", "-out", f"{stem}.csr",
            "-subj", f"/CN={cn}", cwd=d,
        )  # fmt: skip
        _run(
            "openssl", "x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-out", f"{stem}.pem", "-days", "2", "-extfile",
            f"{stem}.ext", cwd=d,
        )  # fmt: skip
        (d / f"{stem}.key").chmod(0o600)
        return ClientCert(d / f"{stem}.pem", d / f"{stem}.key")

    def client_cert(self, cn: str) -> ClientCert:
        """A client certificate signed by the test CA; CN becomes the MQTT user name."""
        if self.auth != "tls":
            raise ValueError("client certificates need auth='tls'")
        existing = ClientCert(self.workdir / f"client-{cn}.pem", self.workdir / f"client-{cn}.key")
        if existing.cert.exists():
            return existing
        return self._sign(f"client-{cn}", cn, "extendedKeyUsage=clientAuth\n")

    # ---- what clients need ---------------------------------------------------------------

    def broker_settings(self, user: str) -> dict[str, Any]:
        """The agent's [broker] settings to connect as `user` (a site_id, or `centre`)."""
        base: dict[str, Any] = {"host": self.host, "port": self.port, "prefix": self.prefix}
        if self.auth == "password":
            if user not in self._passwords:
                self.add_user(user, f"{user}-secret")
            base |= {"username": user, "password": self._passwords[user]}
        elif self.auth == "tls":
            cert = self.client_cert(user)
            base |= {"tls_ca": self.ca_file, "tls_cert": cert.cert, "tls_key": cert.key}
        return base

    def endpoint(self, user: str = CENTRE, client_id: str | None = None) -> Endpoint:
        """Connection details for a client (by default the centre) of this broker."""
        # Imported here: the sim module must not make agent.transport.mqtt import config.
        from agent.config import BrokerSettings  # noqa: PLC0415
        from agent.transport.mqtt import endpoint  # noqa: PLC0415

        settings = BrokerSettings(**self.broker_settings(user))
        where = endpoint(settings, client_id or f"{user}-{time.monotonic_ns()}")
        return Endpoint(**{**where.__dict__, "session_expiry_s": 600})

    # ---- process ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 5.0) -> Mosquitto:
        if not self._atexit:
            # A demo or script that dies without stop() must not leave a broker behind.
            atexit.register(self.stop)
            self._atexit = True
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.conf_path)],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise TransportError(
                    f"mosquitto exited at start-up: {self.log_text()[-2000:]}",
                    f"see {self.conf_path}",
                )
            conn = Connection(self.endpoint(), Protocol.V5)
            try:
                conn.open(1.0)
                end = time.monotonic() + 1.0
                while time.monotonic() < end and not conn.closed:
                    acks = [e for e in conn.pump(0.05) if isinstance(e, ConnAck)]
                    if acks and acks[0].ok:
                        conn.disconnect()
                        conn.pump(0.05)
                        return
                    if acks:
                        last = acks[0].reason
                        break
            except TransportError as exc:
                last = str(exc)
            finally:
                conn.abort()
            time.sleep(0.02)
        self.stop()
        raise TransportError(f"mosquitto not ready in {timeout} s: {last}", f"see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash; whatever was not yet saved is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout: float = 5.0) -> None:
        self.stop()
        self.start(timeout)

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""


class V311OnlyProxy:
    """A TCP front for a mosquitto that behaves like an MQTT 3.1.1-only broker.

    An MQTT 5 CONNECT (protocol level 5) gets the 3.1.1 answer "unacceptable protocol
    version" (CONNACK return code 1) and is closed, as a 3.1.1 broker does; anything else is
    passed through to the real broker byte for byte. Used to test the agent's fallback.
    With `answer=False` the MQTT 5 CONNECT is closed without any CONNACK, as RabbitMQ 3.10
    does (docs/brokers.md).
    """

    def __init__(self, upstream_port: int, *, answer: bool = True) -> None:
        self.upstream_port = upstream_port
        self.answer = answer
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.refused_v5 = 0
        self._closing = False
        self._thread = threading.Thread(target=self._accept, name="v311-proxy", daemon=True)

    def start(self) -> V311OnlyProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    @staticmethod
    def _read_connect_head(sock: socket.socket) -> bytes:
        # Fixed header (1 byte + 1-4 length bytes), then protocol name (2 + 4) and level (1).
        head = b""
        while len(head) < 2 or head[-1] & 0x80:
            chunk = sock.recv(1)
            if not chunk:
                return head
            head += chunk
        need = len(head) + 7
        while len(head) < need:
            chunk = sock.recv(need - len(head))
            if not chunk:
                break
            head += chunk
        return head

    def _handle(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            head = self._read_connect_head(client)
            if len(head) < 3:
                return
            if head[-1] == 5:
                self.refused_v5 += 1
                if self.answer:
                    client.sendall(bytes([0x20, 0x02, 0x00, 0x01]))
                return
            with socket.create_connection(("127.0.0.1", self.upstream_port)) as upstream:
                upstream.sendall(head)
                self._splice(client, upstream)

    @staticmethod
    def _splice(a: socket.socket, b: socket.socket) -> None:
        pair = {a: b, b: a}
        while True:
            readable, _, _ = select.select([a, b], [], [], 1.0)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                pair[sock].sendall(data)


def network_only_settings(
    broker: Mosquitto,
    state_dir: Path,
    site_id: str,
    *,
    user: str | None = None,
    broker_extra: dict[str, Any] | None = None,
    connect_timeout_s: float = 0.2,
    report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings for an agent whose only component is the network path to `broker`: cheap
    (no camera or audio), for tests and benchmarks that need many real agents."""
    return {
        "log_level": "info",
        "site": {"site_id": site_id, "name": f"Site {site_id}", "tier": "commune"},
        "broker": broker.broker_settings(user or site_id) | (broker_extra or {}),
        "paths": {"state_dir": str(state_dir)},
        "camera": {"enabled": False},
        "microphone": {"enabled": False},
        "display": {"enabled": False},
        "codec": {"enabled": False},
        "network": {
            "samples": 1,
            "interval_s": 0,
            "connect_timeout_s": connect_timeout_s,
            "targets": [{"name": "broker", "host": "127.0.0.1", "port": broker.port}],
        },
        "report": report or {},
    }
