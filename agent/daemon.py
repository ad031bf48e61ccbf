"""The agent daemon behind `edge-agent run`: self-test on an interval, report, keep the link.

Threads: the caller's (the reporting loop below), `mqtt-link` (agent.transport.link), and a
short-lived worker per self-test, which waits for a child process that runs the probes
(agent.selftest_worker). Reports go to
the outbox, never straight to the network, so nothing made while the broker is away is lost.

Nothing heavy is imported on this path: OpenCV, numpy and PortAudio are loaded only by the
self-test child, so the idle daemon stays small.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from agent import __version__
from agent.checks.model import CheckResult, Verdict
from agent.commands.actions import Runner, run_command
from agent.commands.host import attach, command_topics, inbound_handler, only_components
from agent.commands.service import CommandService
from agent.config import COMPONENTS, Settings
from agent.sdnotify import Notifier
from agent.selftest import SelfTest, judge
from agent.selftest_worker import run_selftest_isolated, terminate_workers
from agent.transport.link import Link
from agent.transport.mqtt import Protocol
from agent.transport.outbox import Outbox, OutboxStats
from agent.transport.payloads import (
    ChecksPayload,
    ComponentInfo,
    MetaPayload,
    OutboxHealth,
    SiteInfo,
    StatePayload,
    state_components,
    utc_now,
)

log = logging.getLogger(__name__)

SelfTestFn = Callable[[Settings], SelfTest]
StateCause = Literal["check", "birth", "heartbeat", "rebirth"]
Trigger = Literal["startup", "interval", "command", "pre-session"]
_LAST_CHECK_KEY = "last_check"
CAPABILITIES = ("checks", "state", "store-and-forward", "rebirth")


@dataclass(frozen=True)
class LastCheck:
    """The latest self-test, kept on disk so a restarted agent does not forget the site."""

    verdict: Verdict
    results: list[CheckResult]
    at: datetime

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "verdict": self.verdict.value,
                "results": [r.model_dump(mode="json") for r in self.results],
                "at": self.at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LastCheck:
        raw = json.loads(data)
        return cls(
            Verdict(raw["verdict"]),
            [CheckResult.model_validate(r) for r in raw["results"]],
            datetime.fromisoformat(raw["at"]),
        )


def _device_of(settings: Settings, component: str) -> tuple[str | None, str | None]:
    """(device, profile) a component uses, for the meta record."""
    s = settings
    match component:
        case "camera":
            return s.camera.source, None
        case "microphone":
            return str(s.microphone.device), None
        case "display":
            return s.display.port or s.display.connector, s.display.profile
        case "codec":
            return s.codec.port, s.codec.profile
        case "ptz":
            return s.ptz.port, s.ptz.profile
        case "network":
            return ",".join(f"{t.host}:{t.port}" for t in s.network.targets) or None, None
    return None, None


def meta_payload(settings: Settings, protocol: Protocol, started_at: datetime) -> MetaPayload:
    components = []
    for name in COMPONENTS:
        section = settings.component(name)
        device, profile = _device_of(settings, name)
        components.append(
            ComponentInfo(
                component=name,
                enabled=section.enabled,
                required=section.required,
                device=device,
                profile=profile,
            )
        )
    site = settings.site
    return MetaPayload(
        site_id=site.site_id,
        ts=utc_now(),
        agent_version=__version__,
        site=SiteInfo(
            name=site.name,
            tier=site.tier.value,
            parent=site.parent,
            timezone=site.timezone,
            expected_attendance=site.expected_attendance,
        ),
        components=components,
        profiles=sorted({c.profile for c in components if c.enabled and c.profile}),
        capabilities=[*CAPABILITIES, *(["commands"] if settings.commands.enabled else [])],
        protocol=protocol.value,
        check_interval_s=settings.report.check_interval_s,
        hostname=socket.gethostname(),
        started_at=started_at,
    )


class Agent:
    def __init__(
        self,
        settings: Settings,
        *,
        selftest: SelfTestFn = run_selftest_isolated,
        command_runner: Runner = run_command,
    ) -> None:
        self.settings = settings
        self._selftest = selftest
        self.started_at = utc_now()
        self.outbox = Outbox.from_settings(settings)
        self._stop = threading.Event()
        self.commands: CommandService | None = None
        try:
            # Bad broker settings (or command keys) raise here, before anything runs.
            self.commands = attach(self, command_runner)
            self.link = Link(
                settings,
                self.outbox,
                self._birth,
                on_message=inbound_handler(settings, self.commands),
                subscriptions=command_topics(settings),
            )
        except Exception:
            if self.commands is not None:
                self.commands.close()
            self.outbox.close()
            raise
        self._lock = threading.Lock()
        self._last: LastCheck | None = self._restore()
        self._last_state_at = 0.0
        self._notifier = Notifier()
        self._last_ping = 0.0

    def _restore(self) -> LastCheck | None:
        data = self.outbox.get_kv(_LAST_CHECK_KEY)
        if data is None:
            return None
        try:
            return LastCheck.from_bytes(data)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable saved check result")
            return None

    # ---- the reporting loop ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set; then publish `offline` and disconnect."""
        log.info(
            "edge-agent %s: site %s, checks every %g s, broker %s:%d",
            __version__,
            self.settings.site.site_id,
            self.settings.report.check_interval_s,
            self.settings.broker.host,
            self.settings.broker.port,
        )
        self._stop = stop
        self.link.start()
        self._notifier.ready()
        try:
            self._loop(stop)
        finally:
            self._notifier.stopping()
            terminate_workers()
            if self.commands is not None:
                self.commands.close()
            self.link.stop()
            self.outbox.close()
            log.info("stopped")

    def _loop(self, stop: threading.Event) -> None:
        report = self.settings.report
        trigger: Trigger = "startup"
        next_check = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_check:
                next_check = now + report.check_interval_s
                self.check_now(trigger, stop)
                trigger = "interval"
            elif (
                self.link.status().connected
                and now - self._last_state_at >= report.state_heartbeat_s
            ):
                self.publish_state("heartbeat")
            heartbeat_due = self._last_state_at + report.state_heartbeat_s
            wait = max(0.0, min(next_check, heartbeat_due) - time.monotonic())
            self._alive()
            if self._notifier.watchdog_interval_s is not None:
                wait = min(wait, self._notifier.watchdog_interval_s)
            if stop.wait(wait):
                break

    def _alive(self) -> None:
        """Ping systemd's watchdog, at most once a second. Only this loop (and its wait for
        a self-test) pings, so a hung loop stops pinging and systemd restarts the agent."""
        now = time.monotonic()
        if now - self._last_ping >= 1.0:
            self._last_ping = now
            self._notifier.watchdog()

    def check_now(
        self, trigger: Trigger, stop: threading.Event | None = None, only: Sequence[str] = ()
    ) -> SelfTest | None:
        """Run the self-test (of `only` those components) in a worker; report `checks` and
        `state`. None if stopped."""
        started = utc_now()
        t0 = time.monotonic()
        box: list[SelfTest] = []
        settings = only_components(self.settings, only)
        worker = threading.Thread(
            target=lambda: box.append(self._selftest(settings)), name="selftest", daemon=True
        )
        worker.start()
        while worker.is_alive():
            if stop is not None and stop.wait(0.05):
                return None
            worker.join(0.05)
            self._alive()
        if not box:
            log.error("self-test crashed; see the log above")
            return None
        test = box[0]
        last = LastCheck(test.verdict, test.results, started)
        with self._lock:
            if only and self._last is not None:
                # A partial check (a command's) replaces only its components in the state.
                kept = [r for r in self._last.results if r.component not in only]
                merged = judge(self.settings, [*test.results, *kept])
                last = LastCheck(merged.verdict, merged.results, started)
            self._last = last
        self.outbox.put_kv(_LAST_CHECK_KEY, last.to_bytes())
        # The state's outbox figures are taken before this check's own report is queued, so
        # a healthy link shows 0 pending rather than always 1.
        stats = self.outbox.stats()
        self.outbox.put(
            ChecksPayload(
                site_id=self.settings.site.site_id,
                ts=utc_now(),
                trigger=trigger,
                verdict=test.verdict,
                started_at=started,
                duration_s=round(time.monotonic() - t0, 3),
                results=test.results,
            )
        )
        self.publish_state("check", stats)
        log.info("self-test: %s", test.verdict.value)
        return test

    def request_rebirth(self) -> None:
        self.link.request_rebirth()

    def request_stop(self) -> None:
        """Stop the reporting loop (restart-agent: the process exits, systemd restarts it)."""
        self._stop.set()

    def publish_state(self, cause: StateCause, stats: OutboxStats | None = None) -> StatePayload:
        """Queue the current state (retained); returns it stamped with its seq."""
        with self._lock:
            last = self._last
        stats = stats or self.outbox.stats()
        oldest = stats.oldest_created
        payload = StatePayload(
            site_id=self.settings.site.site_id,
            ts=utc_now(),
            cause=cause,
            verdict=last.verdict if last else None,
            components=state_components(last.results) if last else {},
            last_check=last.at if last else None,
            outbox=OutboxHealth(
                pending=stats.pending,
                pending_bytes=stats.pending_bytes,
                dropped_checks=stats.dropped_checks,
                refused=stats.refused,
                oldest_pending=datetime.fromtimestamp(oldest, UTC) if oldest else None,
            ),
        )
        self._last_state_at = time.monotonic()
        return self.outbox.put(payload)

    def _birth(self, cause: str, protocol: Protocol) -> MetaPayload:
        """Called by the link on every connect (and rebirth): meta back, a fresh state queued."""
        self.publish_state("rebirth" if cause == "rebirth" else "birth")
        return meta_payload(self.settings, protocol, self.started_at)
