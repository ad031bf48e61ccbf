"""The codec's call and media health during a session, read through its firmware profile's
`[live]` table (agent/profiles/live.py turns the replies into a CallState), and the call
changes the codec pushes when its profile lists `feedback` registrations (CallPushes).

Never raises for what the codec does: a silent, garbled or half-answering codec gives
CallState(in_call=None), the "cannot tell" the live verdict turns into `unknown`.
"""

from __future__ import annotations

import logging
import re
import select
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import serial

from agent.checks.live import CallState
from agent.errors import ProbeError
from agent.messages import message
from agent.profiles.families.text_lines import complete_lines
from agent.profiles.link import Clock, Link, close_port, open_port, port_url
from agent.profiles.live import call_state
from agent.profiles.login import log_in
from agent.profiles.model import Profile, TextLinesFamily
from agent.profiles.session import QueryResult, Target, line_lock, run_queries, target_message

log = logging.getLogger(__name__)

# Between two tries to open the codec's line for its pushes (it was busy, gone, or dropped):
# the polls go on meanwhile, so a failed listener costs speed, never the verdict.
PUSH_RETRY_S = 5.0
# How long a wait for the line to be readable lasts before the stop flag is looked at again.
_WATCH_TICK_S = 0.25
_MAX_PENDING = 4096  # an unended "line" longer than this is garbage, not a push


def _reply(result: QueryResult | None) -> str | None:
    if result is None or not result.ok:
        return None
    return "\n".join(result.fields.values())


def read_call(
    profile: Profile, target: Target, timeout_s: float, *, now: datetime | None = None
) -> CallState:
    """Ask the codec for its call and media in one session of at most `timeout_s`."""
    live = profile.live
    if live is None:
        return CallState(in_call=None)
    names = [live.call] + ([live.media] if live.media and live.media != live.call else [])
    try:
        results = {r.name: r for r in run_queries(profile, target, names, deadline_s=timeout_s)}
    except (ProbeError, OSError) as exc:
        log.info("call state of %s unknown: %s", profile.name, exc)
        return CallState(in_call=None)
    call = results.get(live.call)
    if call is not None and call.error is not None:
        log.info("call state of %s unknown: %s", profile.name, call.error)
    media = _reply(results.get(live.media)) if live.media else None
    return call_state(live, _reply(call), media, now or datetime.now(UTC))


class CallPushes:
    """A second handle on the codec's line, kept open while a session runs: it registers the
    profile's `feedback` once per connection and calls `on_push(line)` for every line the
    codec sends unasked that matches the profile's `push_lines`.

    The line stays shared: this handle reads only while it holds the line's lock
    (agent/profiles/session.py's `line_lock`), a few milliseconds at a time when bytes are
    waiting, so the polls, the self-test and a `rejoin` get the line as before; what arrives
    during their exchange is theirs (a poll then sees the change itself). The self-test runs
    in a child process, out of the lock's reach: the daemon `pause`s the listener for it, so
    the child's replies are not read here. A line that fails
    (unplugged, codec restarted) is reopened and registered again after PUSH_RETRY_S:
    registrations last only as long as the connection that made them.
    """

    def __init__(
        self,
        profile: Profile,
        target: Target,
        on_push: Callable[[str], None],
        *,
        timeout_s: float = 5.0,
    ) -> None:
        live = profile.live
        if live is None or not live.feedback or not isinstance(profile.family, TextLinesFamily):
            raise ValueError(f"profile {profile.name} lists no feedback to register")
        self._profile = profile
        self._family: TextLinesFamily = profile.family
        self._feedback = list(live.feedback)
        self._feedback_off = list(live.feedback_off)
        self._patterns = [re.compile(p) for p in live.push_lines]
        self._target = target
        self._on_push = on_push
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None
        self.registered = threading.Event()  # set while a connection holds the registration

    def start(self) -> CallPushes:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="codec-push", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; the registrations are taken back first (`feedback_off`)."""
        self._stop.set()
        self._paused.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0 + 2 * self._timeout_s)
            self._thread = None

    def pause(self) -> None:
        """Read nothing until `resume` (the line stays open, the registration holds): once
        this returns, no read of ours is under way."""
        self._paused.set()
        if self._target.port:
            lock = line_lock(port_url(self._target.port, self._profile))
            if lock.acquire(timeout=self._timeout_s):  # a read of ours ends within 20 ms
                lock.release()

    def resume(self) -> None:
        self._paused.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(_WATCH_TICK_S)
                continue
            try:
                self._connection()
            except (ProbeError, OSError, serial.SerialException) as exc:
                log.info("codec pushes of %s: %s", self._profile.name, exc)
            except Exception:  # a bug here must not end the pushes for the whole session
                log.exception("codec pushes of %s failed", self._profile.name)
            self.registered.clear()
            self._stop.wait(PUSH_RETRY_S)

    def _connection(self) -> None:
        if not self._target.port:
            return
        url = port_url(self._target.port, self._profile)
        label = target_message(self._profile, self._target.port)
        lock = line_lock(url)
        if not lock.acquire(timeout=self._timeout_s):
            log.info("codec pushes of %s: the line stayed busy", self._profile.name)
            return
        try:
            ser = open_port(self._profile, url, label)
            link = Link(ser, label)
            try:
                self._register(link)
            except BaseException:
                close_port(ser, label)
                raise
        finally:
            lock.release()
        self.registered.set()
        log.info("codec pushes of %s: registered %s", self._profile.name, self._feedback)
        try:
            self._watch(link, lock)
            if self._feedback_off and lock.acquire(timeout=self._timeout_s):
                try:
                    self._send(link, self._feedback_off)
                finally:
                    lock.release()
        finally:
            close_port(ser, label)

    def _register(self, link: Link) -> None:
        """Log in if asked, then each registration."""
        fam, profile = self._family, self._profile
        if profile.login is not None:
            clock = Clock(time.monotonic() + self._timeout_s, None)
            log_in(link, profile, self._target, clock, login=profile.login, fam=fam)
        self._send(link, self._feedback)

    def _send(self, link: Link, commands: list[str]) -> None:
        """Each command, its reply read to the end so that no `OK` is left on the line for
        the next poll to take as its own answer."""
        fam, profile = self._family, self._profile
        done = re.compile(fam.done, re.MULTILINE) if fam.done else None
        for command in commands:
            link.write(
                (command + fam.send_ending).encode("latin-1"),
                message("profile.what.command", command=command),
            )

            def answered(text: str, sent: str = command) -> bool:
                lines = complete_lines(text, fam, sent)
                return bool(lines) and (done is None or any(done.search(x) for x in lines))

            link.wait_until(
                answered, profile.timeout_s, message("profile.what.answer", command=command)
            )

    def _watch(self, link: Link, lock: threading.Lock) -> None:
        fd = _fileno(link.ser)
        pending = ""
        while not self._stop.is_set():
            if self._paused.is_set():
                self._stop.wait(0.05)
                continue
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], _WATCH_TICK_S)
                if not ready:
                    continue
            elif self._stop.wait(0.05):
                return
            if not lock.acquire(blocking=False):
                self._stop.wait(0.02)  # a poll or command has the line: its bytes are its own
                continue
            if self._paused.is_set():  # paused while we waited for the line
                lock.release()
                continue
            try:
                data = link.poll(0.0, message("profile.what.answer", command="feedback"))
            finally:
                lock.release()
            pending += data.decode("latin-1")
            *lines, pending = re.split(r"\r\n|\n|\r", pending)
            pending = pending[-_MAX_PENDING:]
            for line in lines:
                self._heard(line.strip())

    def _heard(self, line: str) -> None:
        if line and any(p.search(line) for p in self._patterns):
            log.info("codec %s pushed %r: looking now", self._profile.name, line[:120])
            try:
                self._on_push(line)
            except Exception:  # the receiver's bug must not stop the listening
                log.exception("handling a push from %s failed", self._profile.name)


def _fileno(ser: Any) -> int | None:
    try:
        fd = ser.fileno()
    except (AttributeError, OSError, ValueError, serial.SerialException):
        return None
    return fd if isinstance(fd, int) else None


class CodecReader:
    """The live watch's codec: its call read through the profile, how long it averages its
    figures (`[live] average_s`: the judge's hold is at least that), and its pushes."""

    def __init__(self, profile: Profile, target: Target, timeout_s: float) -> None:
        self.profile = profile
        self.target = target
        self.timeout_s = timeout_s
        self.average_s = profile.live.average_s if profile.live is not None else None

    def __call__(self) -> CallState:
        return read_call(self.profile, self.target, self.timeout_s)

    def pushes(self, on_push: Callable[[str], None]) -> CallPushes | None:
        """A listener for the codec's pushed call changes (not started), or None when the
        profile lists none to register."""
        live = self.profile.live
        if live is None or not live.feedback or not live.push_lines:
            return None
        if not isinstance(self.profile.family, TextLinesFamily) or not self.target.port:
            return None
        return CallPushes(self.profile, self.target, on_push, timeout_s=self.timeout_s)


__all__ = ["CallPushes", "CodecReader", "read_call"]
