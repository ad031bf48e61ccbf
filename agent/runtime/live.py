"""The live watch while a scheduled session runs: a look at the codec's call and the path to
the MCU every `[session] poll_s`, judged by agent/checks/live.py, reported on `live`
(retained: on every change of verdict, at most every `republish_s` otherwise, and once with
`session` None when the session ends) and `live/event` (each transition), both through the
outbox.

The look runs in a worker thread (the daemon's `in_worker`, as the self-test and the counting
burst do) so the loop keeps feeding the watchdog while a connect waits for its timeout. Its
cost is a few TCP handshakes per MCU target and one codec query per poll: far inside the
issue's budget (polling plus attendance <= 10 % of a core).

Where the codec's profile lists `feedback` registrations (Cisco `xFeedback`, Poly `notify`),
a listener keeps the codec's line open while the session runs and a pushed call change
makes the next look due at once (PUSH_GAP_S after the last): a drop reaches the centre in
about a second instead of up to `poll_s`. The verdict still comes from that full look.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol, runtime_checkable

from agent.checks.live import CallState, LiveMemory, LiveSample, LiveState, changed, judge_live
from agent.config import Settings
from agent.contract.payloads import Envelope, LivePayload, utc_now
from agent.errors import AgentError
from agent.messages import message
from agent.probes.network import sample_mcu
from agent.runtime.jobs import Now
from agent.runtime.reports import live_event_payload, live_payload
from agent.schedule.model import Session

log = logging.getLogger(__name__)

CallReader = Callable[[], CallState]
Look = Callable[[threading.Event], LiveSample | None]
# Told the verdict after every look (agent/runtime/rejoin.py's auto_rejoin).
AfterLook = Callable[[LiveState, Session, threading.Event], None]

# Pushed changes come in bursts (Cisco: the status, then the call gone; Poly: callstatus and
# linestatus): one look for a burst, and never a look hard on the heels of another.
PUSH_GAP_S = 0.5


class Pushes(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


@runtime_checkable
class CodecSide(Protocol):
    """What the watch needs of the codec beyond its call (agent/probes/call.CodecReader)."""

    average_s: float | None

    def pushes(self, on_push: Callable[[str], None]) -> Pushes | None: ...


def codec_call_reader(settings: Settings) -> CallReader | None:
    """The codec's call, read through its profile (agent/probes/call.py's CodecReader, which
    also gives its averaging time and its pushes); None when the codec is off or its profile
    cannot be loaded."""
    cfg = settings.codec
    if not cfg.enabled:
        return None
    from agent.probes.call import CodecReader  # noqa: PLC0415 (pyserial only when used)
    from agent.profiles.link import Target  # noqa: PLC0415
    from agent.profiles.loader import load_profile  # noqa: PLC0415

    try:
        profile = load_profile(settings.paths.profiles_dir, cfg.profile)
    except AgentError as exc:
        log.warning("live watch without the codec: %s", exc)
        return None
    target = Target(
        port=cfg.port,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
    )
    return CodecReader(profile, target, cfg.timeout_s)


def take_sample(settings: Settings, read_call: CallReader | None) -> LiveSample:
    """One look: the codec (when it can be read) and every MCU target. A failed read is
    a reason in the sample, never an exception out of here."""
    call, problem = None, None
    if read_call is not None:
        try:
            call = read_call()
            if not isinstance(call, CallState):
                raise TypeError(f"the call reader returned {type(call).__name__}")
        except AgentError as exc:
            problem = exc.msg or message("live.codec_failed", error=exc.message)
        except Exception as exc:  # a reader's bug must not stop the watch
            log.exception("reading the codec's call failed")
            call, problem = None, message("live.codec_failed", error=type(exc).__name__)
    return LiveSample(call=call, call_problem=problem, path=sample_mcu(settings.network))


class LiveWatch:
    """The loop's job: a look every `poll_s` while a session is current (at once when the
    codec pushes a call change); the closing `live` once it is not."""

    def __init__(
        self,
        settings: Settings,
        look: Look,
        publish: Callable[[Envelope], object],
        clock: Callable[[], datetime] = utc_now,
        *,
        codec: CodecSide | None = None,
        wake: Callable[[], object] = lambda: None,
        mono: Callable[[], float] = time.monotonic,
        after_look: AfterLook | None = None,
    ) -> None:
        self._settings = settings
        self._after_look = after_look
        self._rules = settings.session
        self._look = look
        self._publish = publish
        self._clock = clock
        self._codec = codec
        self._wake = wake
        self._mono = mono
        self._pushes: Pushes | None = None
        self._session: Session | None = None
        self._memory = LiveMemory()
        self._next_at = 0.0
        self._looked_at = -PUSH_GAP_S
        self._published_at = 0.0

    @property
    def state(self) -> LiveState | None:
        return self._memory.state

    def due(self, now: Now) -> bool:
        current = now.tick.current[0] if now.tick.current else None
        if current is None:
            return self._session is not None  # the closing report
        return current.key != (self._session.key if self._session else None) or (
            now.mono >= self._next_at
        )

    def run(self, now: Now, stop: threading.Event) -> None:
        current = now.tick.current[0] if now.tick.current else None
        if self._session is not None and (current is None or current.key != self._session.key):
            self._close()
        if current is None:
            return
        if self._session is None:
            log.info("live watch: session %s", current.session_id)
            self._session = current
            self._listen()
        self._next_at = now.mono + self._rules.poll_s
        self._looked_at = now.mono
        sample = self._look(stop)
        if sample is None:  # stopping
            return
        old = self._memory.state
        average_s = self._codec.average_s if self._codec is not None else None
        self._memory = judge_live(
            self._memory, sample, self._rules, self._clock(), average_s=average_s
        )
        new = self._memory.state
        assert new is not None
        if changed(old, new):
            log.info(
                "live %s: %s -> %s (%s)",
                current.session_id,
                old.verdict.value if old else "-",
                new.verdict.value,
                new.reason,
            )
            self._send(live_payload(self._settings, new, current), now.mono)
            self._publish(live_event_payload(self._settings, old, new, current))
        elif now.mono - self._published_at >= self._rules.republish_s:
            self._send(live_payload(self._settings, new, current), now.mono)
        if self._after_look is not None:
            self._after_look(new, current, stop)

    def _send(self, payload: LivePayload, mono: float) -> None:
        self._publish(payload)
        self._published_at = mono

    def _listen(self) -> None:
        if self._codec is None or self._pushes is not None:
            return
        try:
            self._pushes = self._codec.pushes(self._pushed)
            if self._pushes is not None:
                self._pushes.start()
        except Exception:  # no pushes: the polls still see everything, only later
            log.exception("live watch: listening for the codec's pushes failed")
            self._pushes = None

    def _pushed(self, line: str) -> None:
        """The codec pushed a call change (the listener's thread): look now, or as soon
        as PUSH_GAP_S has passed since the last look."""
        if self._session is None:
            return
        self._next_at = min(self._next_at, max(self._mono(), self._looked_at + PUSH_GAP_S))
        self._wake()

    @contextmanager
    def line_lent(self) -> Iterator[None]:
        """The codec's line left to another process (the self-test's child) meanwhile: the
        push listener reads nothing, so the child's replies stay the child's."""
        pushes = self._pushes
        if pushes is None:
            yield
            return
        pushes.pause()
        try:
            yield
        finally:
            pushes.resume()

    def close(self) -> None:
        """The agent stops: the codec's line is let go."""
        if self._pushes is not None:
            self._pushes.stop()
            self._pushes = None

    def _close(self) -> None:
        """The session is over: the retained `live` says so (session None), once."""
        self.close()
        last = self._memory.state
        if last is not None:
            self._publish(live_payload(self._settings, last, None))
        log.info("live watch: session %s over", self._session.session_id if self._session else "")
        self._session = None
        self._memory = LiveMemory()

    def next_in(self, now: Now) -> float | None:
        if now.tick.current:
            return max(0.0, self._next_at - now.mono)
        return 0.0 if self._session is not None else None
