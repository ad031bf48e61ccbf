"""Run a profile's queries against a real device (link.py moves the bytes, login.py gets the
device ready, the families frame and parse).

Serial lines, pseudo-terminals and TCP all go through `serial.serial_for_url()`, so one code
path takes `/dev/ttyUSB0`, a pty path from the emulator, or `socket://host:port`. The
cec family runs `cec-client` instead. Nothing here can hang: every read has a timeout and the
whole session has a deadline; when the deadline passes, the queries not yet asked are
reported as not asked.

Whole-session problems (port missing, login refused, line dropped, a device that never says
anything) raise ProbeError subclasses; a query that fails after the device has answered
something is recorded in its QueryResult and the session goes on with the next one.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.errors import BadReply, DeviceNotFound, DeviceTimeout, ProbeError
from agent.messages import Message, message
from agent.profiles.families import (
    DeviceErrorReply,
    LoginRefused,
    cec,
    extract_binary,
    mdc,
    pjlink,
    preview,
    text_lines,
    visca,
)
from agent.profiles.link import (
    MIN_WAIT_S,
    Clock,
    Link,
    Target,
    close_port,
    hint_bad,
    hint_refused,
    hint_silent,
    hint_slow,
    open_port,
    port_url,
    silent_error,
)
from agent.profiles.login import log_in, pjlink_handshake
from agent.profiles.model import ProcessTransport, Profile, Query, TextLinesFamily

__all__ = [
    "QueryResult",
    "Target",
    "line_lock",
    "port_url",
    "run_queries",
    "target_message",
]


@dataclass
class QueryResult:
    """One query's answer: the fields read from it, or why there are none."""

    name: str
    fields: dict[str, str] = field(default_factory=dict)
    error: ProbeError | None = None
    elapsed_s: float = 0.0
    asked: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None


def target_message(profile: Profile, port: str | None) -> Message:
    """ "cisco-roomos on /dev/ttyUSB0", in the reader's language."""
    where: str | Message = port or message("profile.port_auto")
    return message("profile.target", profile=profile.name, port=where)


def run_queries(
    profile: Profile,
    target: Target,
    names: Sequence[str] | None = None,
    *,
    deadline_s: float = 10.0,
    query_timeout_s: float | None = None,
) -> list[QueryResult]:
    """Ask the named queries (default: every query that feeds a check) within deadline_s."""
    chosen = list(names) if names is not None else profile.health_queries()
    unknown = [n for n in chosen if n not in profile.queries]
    if unknown:
        raise ValueError(f"profile {profile.name} has no query {', '.join(unknown)}")
    clock = Clock(time.monotonic() + deadline_s, query_timeout_s)
    if isinstance(profile.transport, ProcessTransport):
        return _run_process(profile, profile.transport, target, chosen, clock)
    return _run_stream(profile, target, chosen, clock)


def _not_asked(name: str, label: Message) -> QueryResult:
    return QueryResult(
        name,
        error=DeviceTimeout(message("profile.not_asked", target=label, name=name), hint_slow()),
        asked=False,
    )


# --- stream transports (serial, pty, tcp) -------------------------------------------------


def _run_stream(
    profile: Profile, target: Target, names: list[str], clock: Clock
) -> list[QueryResult]:
    if not target.port:
        raise DeviceNotFound(
            message("profile.no_port", profile=profile.name), message("profile.hint.set_port")
        )
    url = port_url(target.port, profile)
    label = target_message(profile, target.port)
    # One exchange on a line at a time: the self-test, the live watch's polls and a command
    # (rejoin's Dial) run on their own threads, and two of them on one serial line read each
    # other's replies (pyserial: "multiple access on port").
    lock = line_lock(url)
    if not lock.acquire(timeout=max(0.0, clock.remaining())):
        raise DeviceTimeout(
            message("profile.port_busy", target=label, seconds=clock.elapsed()),
            message("profile.hint.port_busy"),
        )
    try:
        return _exchange(profile, target, names, clock, url=url, label=label)
    finally:
        lock.release()


_line_locks: dict[str, threading.Lock] = {}
_line_locks_guard = threading.Lock()


def line_lock(url: str) -> threading.Lock:
    """The one lock of the line at `url`: whoever talks on the line holds it (the live
    watch's push listener too, while it reads)."""
    with _line_locks_guard:
        return _line_locks.setdefault(url, threading.Lock())


def _exchange(
    profile: Profile, target: Target, names: list[str], clock: Clock, *, url: str, label: Message
) -> list[QueryResult]:
    ser = open_port(profile, url, label)
    link = Link(ser, label)
    try:
        prefix = ""
        if profile.family.kind == "pjlink":
            prefix = pjlink_handshake(link, profile, target, clock)
        if profile.login is not None:
            assert isinstance(profile.family, TextLinesFamily)
            log_in(link, profile, target, clock, login=profile.login, fam=profile.family)
        results: list[QueryResult] = []
        for i, name in enumerate(names):
            if clock.remaining() < MIN_WAIT_S:
                if not link.heard:
                    raise silent_error(label, clock, hint_silent(profile, target.port or ""))
                if not link.answered:
                    raise DeviceTimeout(
                        message("profile.none_answered", target=label, seconds=clock.elapsed()),
                        hint_slow(),
                    )
                results += [_not_asked(n, label) for n in names[i:]]
                break
            if i:
                if profile.inter_command_delay_s:
                    time.sleep(min(profile.inter_command_delay_s, max(0.0, clock.remaining())))
                # Lines left over from the previous answer are not this one's. Before the
                # first query nothing is drained: a greeting (MDCSTART<<TLS>>) must be seen.
                link.drain()
            results.append(_ask_stream(link, profile, name, target, clock, prefix=prefix))
            prefix = ""  # PJLink authenticates the first command of a connection only
        return results
    finally:
        close_port(ser, label)


def _ask_stream(
    link: Link, profile: Profile, name: str, target: Target, clock: Clock, *, prefix: str
) -> QueryResult:
    query = profile.queries[name]
    timeout = clock.timeout_for(query.timeout_s or profile.timeout_s)
    if timeout < MIN_WAIT_S:
        return _not_asked(name, link.label)
    started = time.monotonic()
    request, decode = _framing(profile, query, target.device_id, prefix)
    link.write(request, message("profile.what.command", command=name))
    buf = b""
    end = started + timeout
    try:
        while True:
            fields = decode(buf)
            if fields is not None:
                link.answered = True
                return QueryResult(name, fields, None, time.monotonic() - started)
            remaining = end - time.monotonic()
            if remaining <= 0:
                break
            buf += link.poll(remaining, message("profile.what.answer", command=name))
    except LoginRefused:
        raise
    except DeviceErrorReply as exc:
        link.answered = True
        err: ProbeError = DeviceErrorReply(
            message("profile.at_query", target=link.label, name=name, text=_said(exc)),
            hint_refused(),
        )
        return QueryResult(name, error=err, elapsed_s=time.monotonic() - started)
    except BadReply as exc:
        link.answered = True
        err = BadReply(
            message("profile.at_query", target=link.label, name=name, text=_said(exc)),
            hint_bad(),
        )
        return QueryResult(name, error=err, elapsed_s=time.monotonic() - started)
    elapsed = time.monotonic() - started
    if query.reply_optional:
        return QueryResult(name, {}, None, elapsed)
    if not _content(profile, buf, target.device_id, query):
        timeout_err = DeviceTimeout(
            message("profile.no_answer", target=link.label, name=name, seconds=elapsed),
            hint_silent(profile, target.port or ""),
        )
        if not link.answered:
            # Nothing has answered a query yet: the others would only time out too.
            raise timeout_err
        return QueryResult(name, error=timeout_err, elapsed_s=elapsed)
    link.answered = True
    return QueryResult(
        name,
        error=BadReply(
            message(
                "profile.unrecognised",
                target=link.label,
                name=name,
                seconds=elapsed,
                preview=preview(buf),
            ),
            hint_bad(),
        ),
        elapsed_s=elapsed,
    )


def _said(exc: ProbeError) -> str | Message:
    """What a family's parser said: its message, or its English text where it has none."""
    return exc.msg or exc.message


Decoder = Callable[[bytes], dict[str, str] | None]


def _content(profile: Profile, buf: bytes, device_id: int, query: Query) -> bytes:
    """What the device said beyond echoing the command (an echo alone is no answer)."""
    if isinstance(profile.family, TextLinesFamily):
        sent = text_lines.command_text(query, device_id)
        return text_lines.without_echo(buf.decode("latin-1"), profile.family, sent).encode(
            "latin-1"
        )
    return buf


def _framing(profile: Profile, query: Query, device_id: int, prefix: str) -> tuple[bytes, Decoder]:
    fam = profile.family
    if isinstance(fam, TextLinesFamily):
        sent = text_lines.command_text(query, device_id)
        return text_lines.encode(fam, query, device_id), lambda b: text_lines.decode(
            fam, query, b, sent
        )
    if fam.kind == "pjlink":
        return pjlink.encode(query, prefix), lambda b: pjlink.decode(b, query)
    if fam.kind == "visca":

        def decode_visca(buf: bytes) -> dict[str, str] | None:
            data = visca.decode(buf, device_id)
            return None if data is None else extract_binary(data, query)

        return visca.encode(query, device_id), decode_visca
    if fam.kind == "mdc":

        def decode_mdc(buf: bytes) -> dict[str, str] | None:
            data = mdc.decode(buf, query.payload()[0], device_id)
            return None if data is None else extract_binary(data, query)

        return mdc.encode(query, device_id), decode_mdc
    raise ValueError(f"family {fam.kind} does not run over a stream")


# --- helper programs (cec-client) ---------------------------------------------------------


def _run_process(
    profile: Profile,
    transport: ProcessTransport,
    target: Target,
    names: list[str],
    clock: Clock,
) -> list[QueryResult]:
    label = target_message(profile, target.port)
    argv = cec.argv(transport, target.port)
    results: list[QueryResult] = []
    answered = False
    for i, name in enumerate(names):
        if clock.remaining() <= 0:
            results += [_not_asked(n, label) for n in names[i:]]
            break
        query = profile.queries[name]
        timeout = clock.timeout_for(query.timeout_s or profile.timeout_s)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                input=cec.stdin_text(query, target.device_id),
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise DeviceNotFound(
                message("profile.program_missing", target=label, program=argv[0]),
                message("profile.hint.install_cec"),
            ) from None
        except subprocess.TimeoutExpired:
            err = DeviceTimeout(
                message(
                    "profile.program_hung",
                    target=label,
                    program=argv[0],
                    name=name,
                    seconds=timeout,
                ),
                message("profile.hint.cec_stuck"),
            )
            if not answered:
                raise err from None
            results.append(QueryResult(name, error=err, elapsed_s=time.monotonic() - started))
            continue
        elapsed = time.monotonic() - started
        try:
            fields = cec.parse(proc.stdout, proc.returncode, query)
        except DeviceNotFound as exc:
            raise DeviceNotFound(
                message("profile.at", target=label, text=_said(exc)), exc.hint_msg or exc.hint
            ) from None
        except BadReply as exc:
            hint = message("profile.hint.cec_by_hand", send=query.send or "", argv=" ".join(argv))
            bad = BadReply(message("profile.at", target=label, text=_said(exc)), hint)
            results.append(QueryResult(name, error=bad, elapsed_s=elapsed))
            answered = True
            continue
        answered = True
        results.append(QueryResult(name, fields, None, elapsed))
    return results
