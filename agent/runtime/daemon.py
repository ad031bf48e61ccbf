"""The agent daemon behind `edge-agent run`: self-test on an interval, report, keep the link.

Threads: the caller's (the reporting loop below), `mqtt-link` (agent.transport.link), and a
short-lived worker per self-test, which waits for a child process that runs the probes
(agent.selftest.worker), and one per live look during a session (agent.runtime.live). The
loop runs the jobs of agent.runtime.jobs and alone feeds systemd's watchdog
(agent.runtime.watchdog); what the centre sends is routed by agent.runtime.inbound. Reports
go to the outbox (agent.runtime.spool), never straight to the network, so nothing made while
the broker is away is lost.

Nothing heavy is imported on this path: OpenCV, numpy and PortAudio are loaded only by the
self-test child, so the idle daemon stays small.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from pydantic import JsonValue

from agent import __version__
from agent.attendance.session_counter import SessionCounter
from agent.checks.live import LiveSample
from agent.checks.model import CheckRun, Trigger
from agent.commands.actions import ActionFailed, Runner, run_command
from agent.commands.host import attach
from agent.commands.service import CommandService
from agent.config import Settings
from agent.contract.payloads import (
    AttendancePayload,
    Envelope,
    MetaPayload,
    StateCause,
    StatePayload,
    utc_now,
)
from agent.errors import TransportError
from agent.led.driver import Writer, write_attribute
from agent.led.status import StatusLed
from agent.runtime.control import ControlServer, socket_path
from agent.runtime.control_handlers import control_handlers
from agent.runtime.inbound import Router
from agent.runtime.jobs import (
    AttendanceBursts,
    Jobs,
    LedRefresh,
    Now,
    PreSessionCheck,
    RoutineCheck,
    StateHeartbeat,
)
from agent.runtime.live import (
    CallReader,
    CodecSide,
    LiveWatch,
    codec_call_reader,
    take_sample,
)
from agent.runtime.rejoin import AutoRejoin
from agent.runtime.reports import (
    attendance_payload,
    checks_payload,
    last_check_bytes,
    last_check_from_bytes,
    meta_payload,
    state_payload,
)
from agent.runtime.spool import Spool
from agent.runtime.watchdog import LoopWatchdog, worker_limit_s
from agent.schedule.model import SchedulePayload, Session, Tick
from agent.schedule.presession import PreSession, Scope
from agent.selftest.suite import judge, only_components
from agent.selftest.worker import run_selftest_isolated
from agent.system.sdnotify import Notifier
from agent.system.workers import terminate_workers
from agent.transport.link import Link
from agent.transport.mqtt import Protocol
from agent.transport.outbox import Outbox, OutboxStats

log = logging.getLogger(__name__)
_E = TypeVar("_E", bound=Envelope)

SelfTestFn = Callable[[Settings], CheckRun]
_LAST_CHECK_KEY = "last_check"


class Agent:
    def __init__(
        self,
        settings: Settings,
        *,
        selftest: SelfTestFn = run_selftest_isolated,
        command_runner: Runner = run_command,
        led_write: Writer = write_attribute,
        read_call: CallReader | None = None,
    ) -> None:
        self.settings = settings
        self._selftest = selftest
        # The codec's call for the live watch: given (tests), else its profile's reader.
        self._read_call = read_call if read_call is not None else codec_call_reader(settings)
        self.started_at = utc_now()
        self.outbox = Outbox.from_settings(settings)
        self._stop = threading.Event()
        self.commands: CommandService | None = None
        self.presession = PreSession(settings)
        self.led = StatusLed(settings, led_write)
        self._check_lock = threading.Lock()
        self._checking = False
        self._tick: Tick | None = None
        self.attendance = SessionCounter(settings)
        self._wake = threading.Event()  # set by stop, a new schedule, identify, a connect
        try:
            # Bad broker settings (or command keys) raise here, before anything runs.
            self.commands = attach(self, command_runner)
            inbound = Router(settings, self.commands, self._on_schedule)
            self.link = Link(
                settings,
                self.outbox,
                self._birth,
                on_message=inbound,
                on_down=self._wake.set,
                subscriptions=inbound.subscriptions,
            )
        except Exception:
            if self.commands is not None:
                self.commands.close()
            self.outbox.close()
            raise
        if self.commands is not None:
            self.commands.register_counter(self.count_now)
        self._lock = threading.Lock()
        self._last: CheckRun | None = self._restore()
        self._last_state_at = 0.0
        self.watchdog = LoopWatchdog(Notifier(), self.link.alive, worker_limit_s(settings))
        self._spool = Spool(self.outbox)
        self.rejoin = (
            AutoRejoin(
                settings,
                self._queue,
                lambda work, stop: self.watchdog.in_worker("rejoin", work, stop),
            )
            if settings.session.auto_rejoin
            else None
        )
        self.live = LiveWatch(
            settings,
            self._live_look,
            self._queue,
            after_look=self.rejoin.after_look if self.rejoin is not None else None,
            codec=self._read_call if isinstance(self._read_call, CodecSide) else None,
            wake=self._wake.set,
        )

    def _restore(self) -> CheckRun | None:
        data = self.outbox.get_kv(_LAST_CHECK_KEY)
        if data is None:
            return None
        try:
            return last_check_from_bytes(data)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable saved check result")
            return None

    def _on_schedule(self, scope: Scope, raw: bytes) -> None:
        self.presession.on_schedule(scope, raw)
        self._wake.set()

    @property
    def last_check(self) -> CheckRun | None:
        with self._lock:
            return self._last

    @property
    def worker_limit_s(self) -> float:
        return self.watchdog.worker_limit_s

    @worker_limit_s.setter
    def worker_limit_s(self, seconds: float) -> None:
        self.watchdog.worker_limit_s = seconds

    @property
    def led_pattern(self) -> str | None:
        return self.led.pattern.value if self.led.pattern else None

    def identify(self, seconds: float) -> JsonValue:
        """The centre's `identify`: blink so a technician finds this box; the loop puts the
        site's pattern back when the time is up."""
        if not self.led.available:
            raise ActionFailed(
                "no status LED on this site (led.enabled = false, or the LED failed)",
                "`edge-agent devices` lists the LEDs this computer has",
            )
        self.led.identify(seconds)
        self._show_led()
        self._wake.set()  # the loop must wake when identify ends
        return {"seconds": seconds, "pattern": self.led_pattern}

    def set_schedule(self, payload: SchedulePayload) -> JsonValue:
        self._on_schedule("site", payload.model_dump_json().encode())
        return len(self.presession.scheduler.sessions)

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

        def wake_on_stop() -> None:
            stop.wait()
            self._wake.set()

        threading.Thread(target=wake_on_stop, name="stop-watch", daemon=True).start()
        self.link.start()
        control = ControlServer(
            socket_path(self.settings.paths.state_dir), control_handlers(self)
        ).start()
        self.watchdog.notifier.ready()
        self.watchdog.bind()
        try:
            self._loop(stop)
        finally:
            self.watchdog.notifier.stopping()
            control.stop()
            terminate_workers()
            self.live.close()
            if self.commands is not None:
                self.commands.close()
            self.link.stop()
            self.outbox.close()
            log.info("stopped")

    def _loop(self, stop: threading.Event) -> None:
        jobs = self._jobs()
        while not stop.is_set():
            tick = self._tick = self.presession.tick(utc_now())
            jobs.run(Now(time.monotonic(), tick), stop)
            wait = jobs.wait_s(Now(time.monotonic(), tick))
            self.watchdog.alive()
            if self.watchdog.notifier.watchdog_interval_s is not None:
                wait = min(wait, self.watchdog.notifier.watchdog_interval_s)
            self._wake.wait(wait)
            self._wake.clear()

    def _jobs(self) -> Jobs:
        report = self.settings.report
        routine = RoutineCheck(self.check_now, report.check_interval_s)
        heartbeat = StateHeartbeat(
            report.state_heartbeat_s,
            lambda: self.link.status().connected,
            lambda: self._last_state_at,
            lambda: self.publish_state("heartbeat"),
        )
        attendance = AttendanceBursts(
            self.settings.attendance.enabled, self.attendance, self.count_attendance
        )
        # The live look before the burst: it is short, and a drop must reach the centre fast.
        return Jobs(
            [PreSessionCheck(self.check_now, routine), routine, self.live, attendance, heartbeat],
            every_pass=[LedRefresh(self.led, self._show_led)],
        )

    def _live_look(self, stop: threading.Event) -> LiveSample | None:
        return self.watchdog.in_worker(
            "live", lambda: take_sample(self.settings, self._read_call), stop
        )

    def count_now(self) -> JsonValue:
        """The centre's `count-now`: one burst now, in the running session if there is one."""
        if not self.settings.attendance.enabled:
            raise ActionFailed(
                "attendance counting is off on this site (attendance.enabled = false)",
                "enable [attendance] in the settings after installing the model",
            )
        running = self._tick.current if self._tick else ()
        now = utc_now()
        session = (
            running[0]
            if running
            else Session(session_id="count-now", start=now, end=now + timedelta(minutes=1))
        )
        payload = self.count_attendance(session)
        if payload is None:
            raise ActionFailed("the agent is stopping", "")
        return payload.model_dump(mode="json", by_alias=True)

    def count_attendance(
        self, session: Session, stop: threading.Event | None = None
    ) -> AttendancePayload | None:
        """One burst (in a child process), reported on `attendance`. None if stopped."""
        # The camera is one device: never during a self-test.
        if not self.watchdog.acquire(self._check_lock, stop):
            return None
        try:
            counted = self.watchdog.in_worker(
                "attendance", lambda: self.attendance.count(session, self._codec_count()), stop
            )
        finally:
            self._check_lock.release()
        if counted is None:
            return None
        built = attendance_payload(self.settings, counted)
        payload = self._queue(built) or built
        log.info("attendance %s: %s", session.session_id, payload.count)
        return payload

    def _queue(self, payload: _E) -> _E | None:
        return self._spool.put(payload)

    def _codec_count(self) -> int | None:
        """The codec's own people count from the last check (Cisco RoomAnalytics)."""
        last = self.last_check
        codec = next((r for r in last.results if r.component == "codec"), None) if last else None
        value = codec.metrics.get("people_count") if codec else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _show_led(self) -> None:
        last = self.last_check
        self.led.update(
            last.verdict if last else None, self.link.status().connected, self._checking
        )

    def check_now(
        self, trigger: Trigger, stop: threading.Event | None = None, only: Sequence[str] = ()
    ) -> CheckRun | None:
        """Run the self-test (of `only` those components) in a worker; report `checks` and
        `state`. None if stopped."""
        # One self-test at a time: a command's, the technician's and the schedule's would
        # otherwise fight over the camera and the serial ports.
        if not self.watchdog.acquire(self._check_lock, stop):
            return None
        try:
            self._checking = True
            self._show_led()
            try:
                return self._check(trigger, stop, only)
            finally:
                self._checking = False
                self._show_led()
        finally:
            self._check_lock.release()

    def _check(
        self, trigger: Trigger, stop: threading.Event | None, only: Sequence[str]
    ) -> CheckRun | None:
        started = utc_now()
        t0 = time.monotonic()
        settings = only_components(self.settings, only)
        with self.live.line_lent():  # the child talks to the codec, out of the line's lock
            judged = self.watchdog.in_worker("selftest", lambda: self._selftest(settings), stop)
        if judged is None:
            return None
        # The child's start-up is part of the check's time, as the centre sees it.
        run = judged.model_copy(
            update={
                "trigger": trigger,
                "started_at": started,
                "duration_s": round(time.monotonic() - t0, 3),
            }
        )
        last = run
        with self._lock:
            if only and self._last is not None:
                # A partial check (a command's) replaces only its components in the state.
                kept = [r for r in self._last.results if r.component not in only]
                merged = judge(self.settings, [*run.results, *kept])
                last = run.model_copy(update={"verdict": merged.verdict, "results": merged.results})
            self._last = last
        try:
            self.outbox.put_kv(_LAST_CHECK_KEY, last_check_bytes(last))
        except TransportError as exc:
            log.debug("last check not saved: %s", exc)
        # The state's outbox figures are taken before this check's own report is queued, so
        # a healthy link shows 0 pending rather than always 1.
        stats = self.outbox.stats()
        self._queue(checks_payload(self.settings, run))
        self.publish_state("check", stats)
        log.info("self-test: %s", run.verdict.value)
        return run

    def request_rebirth(self) -> None:
        self.link.request_rebirth()

    def request_stop(self) -> None:
        """Stop the reporting loop (restart-agent: the process exits, systemd restarts it)."""
        self._stop.set()

    def publish_state(self, cause: StateCause, stats: OutboxStats | None = None) -> StatePayload:
        """Queue the current state (retained); returns it stamped with its seq (unstamped
        when the outbox could not store it)."""
        with self._lock:
            last = self._last
        stats = stats or self.outbox.stats()
        now = utc_now()
        running = self._tick.current if self._tick else ()
        current = running[0] if running else None
        upcoming = self.presession.next_session(now)
        payload = state_payload(
            self.settings,
            cause,
            now=now,
            last=last,
            stats=stats,
            current=current,
            upcoming=upcoming,
        )
        self._last_state_at = time.monotonic()
        return self._queue(payload) or payload

    def _birth(self, cause: str, protocol: Protocol) -> MetaPayload:
        """Called by the link on every connect (and rebirth): meta back, a fresh state queued."""
        self.publish_state("rebirth" if cause == "rebirth" else "birth")
        # Disconnected, the loop waited for no heartbeat: the next one counts from this state.
        self._wake.set()
        return meta_payload(self.settings, protocol, self.started_at)
