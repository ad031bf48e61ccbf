"""Recorded device conversations, and the pure state machine that plays them back.

A recording (agent/sim/recordings/<device>_<firmware>.toml) is transcribed from the vendor's
guide (via shared/PROTOCOLS.md): for each request the device's exact reply, plus its echo,
login prompts and greeting. It is written by hand and never generated from a firmware
profile, so a wrong profile fails its own emulator test.

`Responder` turns received bytes into timed writes, applying a fault mode; it does no I/O
(agent/sim/serial_device.py moves the bytes over a pty or TCP).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RECORDINGS_DIR = Path(__file__).resolve().parent / "recordings"

# No CR/LF-free run longer than a line, an FF and a CR, no AA first: every family's framing
# sees something it must reject (or wait on until its timeout).
GARBAGE = b"\x13\x37\xde\xad\xbe\xef~#?\x00\xfe\xff\r\n\x07\x81"


class Fault(StrEnum):
    SILENT = "silent"  # reads, never answers (not even a prompt or greeting)
    SLOW = "slow"  # answers, but only after slow_s
    GARBAGE = "garbage"  # answers with bytes no device would send
    PARTIAL = "partial"  # answers the first half of the reply (a line cut), then nothing
    BAD_CHECKSUM = "bad_checksum"  # answers with the last byte (the checksum) wrong
    ERROR_REPLY = "error_reply"  # answers with the device's own error reply
    DISCONNECT = "disconnect"  # answers half the reply, then drops the line


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordedLogin(_Strict):
    user_prompt: str | None = None
    password_prompt: str
    username: str | None = None
    password: str
    banner: str = ""
    refused: str = ""


class RecordedAuth(_Strict):
    """PJLink authentication: the first command must carry this prefix."""

    prefix: str
    refused: str = "PJLINK ERRA\r"


class Exchange(_Strict):
    request: str | None = None
    request_hex: str | None = None
    reply: str | None = None
    reply_hex: str | None = None
    error: str | None = None
    error_hex: str | None = None
    note: str = ""
    prefix: bool = Field(False, description="the request only starts so (a Dial's number)")

    def request_bytes(self) -> bytes:
        if self.request_hex is not None:
            return bytes.fromhex(self.request_hex)
        return (self.request or "").encode("latin-1")

    def reply_bytes(self) -> bytes:
        return _pick(self.reply, self.reply_hex)

    def error_bytes(self) -> bytes | None:
        if self.error is None and self.error_hex is None:
            return None
        return _pick(self.error, self.error_hex)


def _pick(text: str | None, hex_text: str | None) -> bytes:
    if hex_text is not None:
        return bytes.fromhex(hex_text)
    return (text or "").encode("latin-1")


class Step(_Strict):
    """One stage of a call scenario: its exchanges replace the recording's (matched by
    request) while it lasts. It lasts `polls` answers to the recording's `advance_on`
    request, or `after_s` seconds (a drop at a moment of the device's choosing, not at a
    poll), or until a request starting with `on` arrives (a `Dial`), or for ever (the last
    step). `cut`: from here on the device answers nothing (the line is dead). `push`: the
    unsolicited lines the device sends when a test jumps to this step, if the line has
    registered for them (a request starting with one of the recording's `feedback`, and none
    since starting with one of its `feedback_off`)."""

    name: str
    exchange: list[Exchange] = Field(default_factory=list)
    polls: int | None = Field(None, ge=1)
    after_s: float | None = Field(None, gt=0)
    on: str | None = None
    cut: bool = False
    push: str = ""


class Recording(_Strict):
    """One device at one firmware, as its guide says it talks."""

    device: str
    firmware: str
    source: str
    notes: str = ""
    transport: Literal["serial", "tcp", "process"] = "serial"
    framing: Literal["lines", "visca", "mdc", "process"] = "lines"
    line_end: str = "\r\n"
    echo: Literal["none", "line", "lf_cr"] = "none"
    echo_off: str | None = None
    greeting: str = ""
    login: RecordedLogin | None = None
    auth: RecordedAuth | None = None
    checksum: bool = False
    unknown: str | None = None
    unknown_hex: str | None = None
    error: str | None = None
    error_hex: str | None = None
    exit_code_on_error: int = 1
    exchange: list[Exchange] = Field(min_length=1)
    advance_on: str | None = None
    feedback: list[str] = Field(default_factory=list)
    feedback_off: list[str] = Field(default_factory=list)
    scenarios: dict[str, list[Step]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _requests_fit_framing(self) -> Recording:
        for ex in self.exchange:
            binary = self.framing in ("visca", "mdc")
            if binary != (ex.request_hex is not None):
                raise ValueError(f"exchange {ex}: use request_hex for binary framing only")
        return self

    @property
    def name(self) -> str:
        return f"{self.device}_{self.firmware}"

    def lookup(self, request: bytes, step: Step | None = None) -> Exchange | None:
        for ex in [*(step.exchange if step else []), *self.exchange]:
            want = ex.request_bytes()
            if self.framing == "lines":
                got = request.strip().lower()
                if want.strip().lower() == got or (ex.prefix and got.startswith(want.lower())):
                    return ex
            elif want == request:
                return ex
        return None

    def default_error(self) -> bytes | None:
        if self.error is None and self.error_hex is None:
            return None
        return _pick(self.error, self.error_hex)

    def unknown_reply(self) -> bytes:
        return _pick(self.unknown, self.unknown_hex)


def load_recording(name: str, directory: Path = RECORDINGS_DIR) -> Recording:
    """The recording agent/sim/recordings/<name>.toml, e.g. "cisco-roomos_ce9.15".

    A recording may say `extends = "<other>"` to reuse another one and replace some of its
    exchanges (matched by request), e.g. the same codec in a call.
    """
    data = _read(directory, name)
    base_name = data.pop("extends", None)
    if base_name is not None:
        base = _read(directory, str(base_name))
        base.pop("extends", None)
        replaced = {_key(ex) for ex in data.get("exchange", [])}
        kept = [ex for ex in base.get("exchange", []) if _key(ex) not in replaced]
        merged = {**base, **data}
        merged["exchange"] = kept + list(data.get("exchange", []))
        data = merged
    return Recording.model_validate(data)


def list_recordings(directory: Path = RECORDINGS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def _read(directory: Path, name: str) -> dict[str, Any]:
    path = directory / f"{name}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"no recording {path}; have: {', '.join(list_recordings())}")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _key(ex: dict[str, Any]) -> str:
    return str(ex.get("request_hex") or ex.get("request", "")).strip().lower()


# --- playing a recording ------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Write `data` after waiting `delay_s`; then drop the line if `close`."""

    data: bytes
    delay_s: float = 0.0
    close: bool = False


class Responder:
    """What a device that talks like `recording` sends back, with `fault` applied to the
    replies of its exchanges (prompts, greeting and echo stay intact except when silent)."""

    def __init__(
        self,
        recording: Recording,
        fault: Fault | str | None = None,
        *,
        slow_s: float = 1.0,
        scenario: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rec = recording
        if scenario is not None and scenario not in recording.scenarios:
            have = ", ".join(sorted(recording.scenarios)) or "none"
            raise ValueError(f"recording {recording.name} has no scenario {scenario}; have: {have}")
        self._steps = recording.scenarios[scenario] if scenario else []
        self._step = 0
        self._polls = 0
        self._clock = clock
        self._step_began = clock()
        self.fault = Fault(fault) if fault else None
        self.slow_s = slow_s
        if self.fault is Fault.BAD_CHECKSUM and not recording.checksum:
            raise ValueError(f"recording {recording.name} has no checksum to break")
        if (
            self.fault is Fault.ERROR_REPLY
            and recording.default_error() is None
            and any(ex.error_bytes() is None for ex in recording.exchange)
        ):
            raise ValueError(f"recording {recording.name} has no error reply")
        self.requests: list[bytes] = []
        self._buf = b""
        self._cr_pending = False
        self._echo = recording.echo
        self._logged_in = recording.login is None
        self._user: str | None = None
        self._need_password = recording.login is not None and recording.login.user_prompt is None
        self._authenticated = recording.auth is None
        self._disconnected = False
        self.registered = False  # a feedback registration arrived: steps' pushes are sent

    def on_connect(self) -> list[Action]:
        if self.fault is Fault.SILENT or not self.rec.greeting:
            return []
        return [Action(self.rec.greeting.encode("latin-1"))]

    def feed(self, data: bytes) -> list[Action]:
        if self._disconnected:
            return []
        actions: list[Action] = []
        for request in self._split(data):
            self.requests.append(request)
            actions += self._answer(request)
            if any(a.close for a in actions):
                self._disconnected = True
                break
        return [] if self.fault is Fault.SILENT else actions

    # framing of requests

    def _split(self, data: bytes) -> list[bytes]:
        if self.rec.framing == "lines":
            return self._split_lines(data)
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            if self.rec.framing == "visca":
                end = self._buf.find(b"\xff")
                if end < 0:
                    break
                out.append(self._buf[: end + 1])
                self._buf = self._buf[end + 1 :]
            else:  # mdc: AA cmd id len data cs
                start = self._buf.find(b"\xaa")
                if start < 0:
                    self._buf = b""
                    break
                self._buf = self._buf[start:]
                if len(self._buf) < 4 or len(self._buf) < 5 + self._buf[3]:
                    break
                total = 5 + self._buf[3]
                out.append(self._buf[:total])
                self._buf = self._buf[total:]
        return out

    def _split_lines(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for byte in data:
            char = bytes([byte])
            if char == b"\n" and self._cr_pending:
                self._cr_pending = False
                continue
            self._cr_pending = char == b"\r"
            if char in (b"\r", b"\n"):
                out.append(self._buf)
                self._buf = b""
            else:
                self._buf += char
        return out

    # answers

    def _answer(self, request: bytes) -> list[Action]:
        if self.rec.framing == "lines" and not self._logged_in:
            return self._login_step(request.decode("latin-1").strip())
        if self.rec.framing == "lines" and not request.strip():
            return []
        actions: list[Action] = []
        if self.rec.framing == "lines" and self._echo != "none":
            ending = "\n\r" if self._echo == "lf_cr" else self.rec.line_end
            actions.append(Action(request.strip() + ending.encode("latin-1")))
            off = self.rec.echo_off
            if off and request.strip().lower() == off.lower().encode("latin-1"):
                self._echo = "none"
        if not self._authenticated and self.rec.auth is not None:
            prefix = self.rec.auth.prefix.encode("latin-1")
            if not request.startswith(prefix):
                return [*actions, Action(self.rec.auth.refused.encode("latin-1"))]
            request = request[len(prefix) :]
            self._authenticated = True
        text = request.decode("latin-1").strip().lower()
        if any(text.startswith(f.lower()) for f in self.rec.feedback):
            self.registered = True
        if any(text.startswith(f.lower()) for f in self.rec.feedback_off):
            self.registered = False
        step = self._advance(request)
        if step is not None and step.cut:
            return []
        exchange = self.rec.lookup(request, step)
        return actions + self._faulted(exchange)

    @property
    def step(self) -> Step | None:
        """The scenario's current step (None without a scenario)."""
        return self._steps[self._step] if self._steps else None

    def jump(self, name: str) -> bytes:
        """Go to the scenario's step `name` now (a test's "the far end hangs up here");
        what the device pushes unasked on that change (nothing unless registered)."""
        names = [step.name for step in self._steps]
        if name not in names:
            raise ValueError(f"no step {name} in this scenario; have: {', '.join(names)}")
        self._go(names.index(name))
        step = self._steps[self._step]
        return _enc(step.push) if self.registered and not step.cut else b""

    def _go(self, index: int) -> None:
        self._step = index
        self._polls = 0
        self._step_began = self._clock()

    def _advance(self, request: bytes) -> Step | None:
        """The step that answers `request`, moving the scenario on first when due."""
        while self._steps and self._step < len(self._steps) - 1:
            after = self._steps[self._step].after_s
            if after is None or self._clock() - self._step_began < after:
                break
            began = self._step_began + after  # timed steps keep their own pace
            self._go(self._step + 1)
            self._step_began = began
        step = self.step
        if step is None:
            return None
        text = request.decode("latin-1").strip().lower()
        last = self._step == len(self._steps) - 1
        if not last and step.on is not None and text.startswith(step.on.lower()):
            self._go(self._step + 1)
            return self.step
        advance_on = (self.rec.advance_on or "").lower()
        if advance_on and text == advance_on:
            if not last and step.polls is not None and self._polls >= step.polls:
                self._go(self._step + 1)
                step = self.step
            self._polls += 1
        return step

    def _login_step(self, line: str) -> list[Action]:
        login = self.rec.login
        assert login is not None
        if not self._need_password:
            if not line:
                return [Action(_enc(login.user_prompt or login.password_prompt))]
            self._user = line
            self._need_password = True
            return [Action(_enc(login.password_prompt))]
        if not line and login.user_prompt is None:
            return [Action(_enc(login.password_prompt))]
        user_ok = login.username is None or self._user == login.username
        if user_ok and line == login.password:
            self._logged_in = True
            return [Action(_enc(login.banner))] if login.banner else []
        self._need_password = login.user_prompt is None
        self._user = None
        again = login.user_prompt or login.password_prompt
        return [Action(_enc(login.refused + again))]

    def _faulted(self, exchange: Exchange | None) -> list[Action]:
        reply = exchange.reply_bytes() if exchange else self.rec.unknown_reply()
        fault = self.fault
        if fault is None:
            return [Action(reply)] if reply else []
        if fault is Fault.SILENT:
            return []
        if fault is Fault.SLOW:
            return [Action(reply, delay_s=self.slow_s)]
        if fault is Fault.GARBAGE:
            return [Action(GARBAGE)]
        if fault is Fault.PARTIAL:
            return [Action(reply[: max(1, len(reply) // 2)])]
        if fault is Fault.BAD_CHECKSUM:
            return [Action(reply[:-1] + bytes([(reply[-1] + 1) % 256]))] if reply else []
        if fault is Fault.ERROR_REPLY:
            error = (exchange.error_bytes() if exchange else None) or self.rec.default_error()
            return [Action(error or b"")]
        return [Action(reply[: max(1, len(reply) // 2)], close=True)]


def _enc(text: str) -> bytes:
    return text.encode("latin-1")
