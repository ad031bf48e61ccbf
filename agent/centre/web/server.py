"""Run the dashboard next to the ingest, in the same process: uvicorn on its own thread
(with its own event loop), the command connection on its own."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from agent.centre.settings import CentreSettings
from agent.centre.web import live
from agent.centre.web.accounts import Accounts
from agent.centre.web.app import Services, create_app
from agent.centre.web.commands import Commander
from agent.errors import ConfigError
from agent.messages import message

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(message("web.bad_listen", text=repr(text)), message("web.hint.listen"))
    return host, int(port)


class Dashboard:
    def __init__(
        self,
        settings: CentreSettings,
        listen: str,
        *,
        with_broker: bool = True,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        self.host, port = parse_listen(listen)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((self.host, port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(
                message("web.cannot_listen", listen=listen, error=exc.strerror or str(exc)),
                message("web.hint.port_in_use"),
            ) from None
        self.port = int(self.sock.getsockname()[1])
        hub = live.Hub()
        self.services = Services(
            settings=settings,
            accounts=Accounts(settings.store_location),
            hub=hub,
            watch=live.FleetWatch(settings, hub),
            commander=(
                Commander(settings, hub.publish_threadsafe, leads=leads) if with_broker else None
            ),
        )
        config = uvicorn.Config(
            create_app(self.services),
            log_level="warning",
            access_log=False,  # the session cookie must never reach a log
            lifespan="on",
            timeout_graceful_shutdown=1,
            # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise, which
            # would let any local process pick the address the login limiter counts.
            proxy_headers=bool(settings.web_trusted_proxies),
            forwarded_allow_ips=list(settings.web_trusted_proxies),
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="dashboard-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def _serve(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout_s: float = 10.0) -> Dashboard:
        svc = self.services
        if svc.commander is not None:
            svc.commander.start()
            if svc.commander.unavailable:
                log.warning("dashboard: %s; the page sends no commands", svc.commander.unavailable)
        self._thread.start()
        end = time.monotonic() + timeout_s
        while not self.server.started and time.monotonic() < end:
            if not self._thread.is_alive():
                raise ConfigError(message("web.not_started"), message("web.hint.see_log"))
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        loop = self.services.hub.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.services.hub.close_all)
        self.server.should_exit = True
        self._thread.join(10)
        svc = self.services
        if svc.commander is not None:
            svc.commander.stop()
        svc.watch.close()
        svc.accounts.close()
        if svc.desk is not None:
            svc.desk.close()
        self.sock.close()
