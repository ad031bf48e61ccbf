"""What a firmware profile file may say. A device model is data: adding a codec or a display
means writing a TOML file in firmware_profiles/, never new code.

A profile names its protocol *family* (a small piece of code in agent/profiles/families/),
how to reach the device (serial settings, a TCP port, or a helper program), the login and
echo quirks, and its named queries: what to send, how to read the reply, which check the
answer feeds and the rule that judges it. Unknown keys are errors, so a typo in a profile is
caught when it is loaded, not on a site months later.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.messages import Message, message
from agent.validation import Invalid

CheckName = Literal["codec", "ptz", "display", "none"]
StatusName = Literal["ok", "warn", "fail"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise Invalid(message("profile.problem.regex_invalid", error=str(exc))) from None
    except (OverflowError, RecursionError) as exc:
        # Not re.error: `a{99999999999}` overflows, thousands of nested groups recurse.
        if not str(exc):
            raise Invalid(message("profile.problem.regex_too_deep")) from None
        raise Invalid(message("profile.problem.regex_unusable", error=str(exc))) from None
    return pattern


# --- transports ---------------------------------------------------------------------------


class SerialTransport(_Strict):
    """An RS-232 line. A socket:// URL given as the port also works (pyserial ignores the
    line settings then), which is how MDC-over-TCP or a serial server is reached."""

    kind: Literal["serial"]
    baud: int = Field(9600, gt=0, description="bits per second")
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = Field(1, description="1, 1.5 or 2")
    flow_control: Literal["none", "rtscts", "xonxoff"] = "none"
    dtr: bool | None = Field(None, description="hold DTR high (True) or low; None: leave it")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise Invalid(message("profile.problem.stopbits"))
        return value

    def describe(self) -> str:
        return f"serial {self.baud} {self.bytesize}{self.parity}{self.stopbits:g}"


class TcpTransport(_Strict):
    kind: Literal["tcp"]
    port: int = Field(ge=1, le=65535, description="default TCP port when none is given")

    def describe(self) -> str:
        return f"tcp port {self.port}"


class ProcessTransport(_Strict):
    """A helper program that talks to the device for us (cec-client)."""

    kind: Literal["process"]
    command: list[str] = Field(min_length=1, description="argv; the port, if any, is appended")

    def describe(self) -> str:
        return f"program {self.command[0]}"


Transport = Annotated[
    SerialTransport | TcpTransport | ProcessTransport, Field(discriminator="kind")
]


# --- protocol families --------------------------------------------------------------------


class TextLinesFamily(_Strict):
    """Command lines out, reply lines back (Cisco xAPI terminal mode, Poly API, LG)."""

    kind: Literal["text_lines"]
    send_ending: str = Field("\r\n", min_length=1, description="appended to each command")
    reply_ending: str = Field("\r\n", min_length=1, description="ends each reply line")
    echo: Literal["none", "command", "lf_cr"] = Field(
        "none",
        description="command: drop lines that repeat the command; lf_cr: the Poly HDX echo "
        "that ends LF CR before the real CRLF line (only the text after it counts)",
    )
    done: str | None = Field(None, description="regex of the line that ends every reply")
    errors: list[str] = Field(default_factory=list, description="regexes of error lines")

    @field_validator("done")
    @classmethod
    def _check_done(cls, value: str | None) -> str | None:
        return value if value is None else _compile(value)

    @field_validator("errors")
    @classmethod
    def _check_errors(cls, value: list[str]) -> list[str]:
        return [_compile(v) for v in value]


class ViscaFamily(_Strict):
    """Sony VISCA: 0x8x header, payload, 0xFF; replies ACK / completion / error."""

    kind: Literal["visca"]


class MdcFamily(_Strict):
    """Samsung MDC: AA cmd id len data checksum; replies AA FF id len A|N rcmd data cs."""

    kind: Literal["mdc"]


class PjlinkFamily(_Strict):
    """PJLink: greeting, optional MD5 auth, `%1CMND ?` -> `%1CMND=value`."""

    kind: Literal["pjlink"]


class CecFamily(_Strict):
    """HDMI-CEC through cec-client: one command on stdin, parse what it prints."""

    kind: Literal["cec"]


Family = Annotated[
    TextLinesFamily | ViscaFamily | MdcFamily | PjlinkFamily | CecFamily,
    Field(discriminator="kind"),
]
TEXT_FAMILIES = ("text_lines", "pjlink", "cec")
BINARY_FAMILIES = ("visca", "mdc")


# --- login --------------------------------------------------------------------------------


class Login(_Strict):
    """The prompts a device shows before it takes commands, and what to send after."""

    user_prompt: str | None = Field(None, description="regex, e.g. 'login:'")
    password_prompt: str | None = Field(None, description="regex, e.g. 'Password:'")
    default_username: str | None = None
    success: str | None = Field(None, description="regex that confirms the login")
    refused: str = Field(
        r"(?i)incorrect|denied|failed|login:|password:",
        description="regex, seen after the password: the login was refused",
    )
    after: list[str] = Field(
        default_factory=list, description="commands sent once logged in (e.g. 'Echo off')"
    )
    wait_s: float = Field(0.5, gt=0, le=10, description="how long to wait for a prompt")
    settle_s: float = Field(0.3, gt=0, le=10, description="quiet time that ends the banner")

    @field_validator("user_prompt", "password_prompt", "success", "refused")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return value if value is None else _compile(value)


# --- queries and rules --------------------------------------------------------------------


class FieldSpec(_Strict):
    """How one field is read. Binary families: offset/length into the reply's data bytes.
    Text families: the named group of the query's pattern with the same name."""

    offset: int | None = Field(None, ge=0, description="binary: first data byte")
    length: int | None = Field(None, ge=1, description="binary: bytes; None: to the end")
    decode: Literal["hex", "int", "ascii"] = Field("hex", description="binary: how to read")
    map: dict[str, str] = Field(
        default_factory=dict, description="raw value -> meaning (case-insensitive keys)"
    )


class ValuesRule(_Strict):
    """Judge a field by its value: listed as ok, warn or fail; anything else -> otherwise."""

    kind: Literal["values"]
    field: str
    ok: list[str] = Field(default_factory=list)
    warn: list[str] = Field(default_factory=list)
    fail: list[str] = Field(default_factory=list)
    otherwise: StatusName = "warn"
    hint: str = Field(
        "",
        description="what a technician can do when the value is not ok: a catalogue id "
        "(profile.hint.*, in the reader's language) or plain text, shown as written",
    )


class MinVersionRule(_Strict):
    """Warn when the version field is below the minimum (the profile's min_firmware)."""

    kind: Literal["min_version"]
    field: str
    minimum: str | None = Field(None, description="default: the profile's min_firmware")
    hint: str = "profile.hint.update_firmware"


class NumberRule(_Strict):
    """An integer field; values below `unknown_below` mean 'not known' (metric None)."""

    kind: Literal["number"]
    field: str
    unknown_below: int | None = None
    warn_below: int | None = None
    fail_below: int | None = None
    hint: str = ""


class InfoRule(_Strict):
    """Reported in the reason and metrics, never judged."""

    kind: Literal["info"]
    field: str


Rule = Annotated[ValuesRule | MinVersionRule | NumberRule | InfoRule, Field(discriminator="kind")]


class Query(_Strict):
    """One named question to the device, and how its answer is read and judged."""

    label: str = Field(min_length=1, description="short human name used in reasons")
    check: CheckName = Field(description="which check the answer feeds; none: an action")
    required: bool = Field(True, description="a failed required query fails the check")
    group: str | None = Field(
        None, description="queries in a group are alternatives: the best status counts"
    )
    send: str | None = Field(None, description="text families: the command ({id} = device id)")
    send_hex: str | None = Field(
        None,
        description="visca: payload between the address byte and FF; "
        "mdc: command byte then data (id, length and checksum are added)",
    )
    pattern: str | None = Field(None, description="text families: regex with named groups")
    until: str | None = Field(None, description="regex of the reply's last line (text_lines)")
    defaults: dict[str, str] = Field(
        default_factory=dict, description="field values when the reply ends without a match"
    )
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    timeout_s: float | None = Field(None, gt=0, le=60)
    reply_optional: bool = Field(
        False, description="no reply is fine (e.g. a restart drops the session)"
    )
    rules: list[Rule] = Field(default_factory=list)
    unverified: str | None = Field(
        None, description="what about this query the vendor guide did not confirm"
    )

    @field_validator("pattern", "until")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        return value if value is None else _compile(value)

    @field_validator("send")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            names = {f[1] for f in string.Formatter().parse(value) if f[1] is not None}
            value.format(id=1)
        except (ValueError, IndexError, KeyError) as exc:
            raise Invalid(message("profile.problem.bad_placeholder", error=str(exc))) from None
        unknown = names - {"id"}
        if unknown:
            raise Invalid(
                message("profile.problem.unknown_placeholder", names=", ".join(sorted(unknown)))
            )
        return value

    @field_validator("send_hex")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            data = bytes.fromhex(value)
        except ValueError:
            raise Invalid(message("profile.problem.not_hex")) from None
        if not data:
            raise Invalid(message("profile.problem.empty"))
        return value

    def payload(self) -> bytes:
        return bytes.fromhex(self.send_hex or "")

    def group_names(self) -> set[str]:
        return set(re.compile(self.pattern).groupindex) if self.pattern else set()

    def field_names(self) -> set[str]:
        return self.group_names() | set(self.fields) | set(self.defaults)


# --- dialling ------------------------------------------------------------------------------


class Dial(_Strict):
    """How the codec places a call (the `rejoin` action): the command with `{address}`, and
    the line that says the codec took it. Ringing and connecting come later, in the call
    state; this only proves the dial was accepted."""

    send: str = Field(min_length=1, description="the command; {address} is the conference")
    accepted: str = Field(description="regex of the reply line that confirms the dial")
    timeout_s: float = Field(5.0, gt=0, le=60, description="wait this long for that line")
    unverified: str | None = Field(
        None, description="what about the dial the vendor guide did not confirm"
    )

    @field_validator("accepted")
    @classmethod
    def _check_accepted(cls, value: str) -> str:
        return _compile(value)

    @field_validator("send")
    @classmethod
    def _address_placeholder(cls, value: str) -> str:
        try:
            names = {f[1] for f in string.Formatter().parse(value) if f[1] is not None}
        except ValueError:
            names = set()
        if names != {"address"}:
            raise Invalid(message("profile.problem.dial_placeholder"))
        return value

    def query(self, address: str) -> Query:
        """The dial as a one-off query. The address is a schedule's CONFERENCE_ADDRESS (no
        braces or quotes), so it cannot turn into another placeholder or command."""
        return Query(
            label="dial",
            check="none",
            send=self.send.replace("{address}", address),
            pattern=self.accepted,
            timeout_s=self.timeout_s,
        )


# --- the live session ---------------------------------------------------------------------


MediaKind = Literal["audio", "video", "content"]
MediaDirection = Literal["in", "out"]


class LiveTable(_Strict):
    """How the codec's call and media health are read during a session (agent/probes/call.py).

    `call` and `media` name queries (check = "none") whose pattern captures the raw reply
    block; the line patterns here turn that block into fields, so a new codec is data.
    Call patterns' named groups: status, duration_s, far_end, protocol. Channel patterns'
    groups: channel (the key that gathers a channel's lines), kind, direction, lost,
    received (packet counts over the last interval: loss % = lost / (lost + received)),
    loss_pct, jitter_ms, rate (in `rate_unit`), width, height, resolution.
    """

    call: str = Field(description="the query whose reply says the call state")
    call_lines: list[str] = Field(min_length=1, description="regexes, each tried on every line")
    in_call: list[str] = Field(min_length=1, description="status values meaning in the call")
    not_in_call: list[str] = Field(
        default_factory=list, description="status values meaning not (or not yet) in the call"
    )
    idle: str | None = Field(
        None, description="regex of a reply line meaning no call at all (e.g. 'not in a call')"
    )
    idle_when_silent: bool = Field(
        False, description="a complete reply with no call line means idle (Cisco: only ** end)"
    )
    media: str | None = Field(None, description="the query whose reply holds the channels")
    channel_lines: list[str] = Field(default_factory=list, description="regexes per line")
    channels: dict[str, str] = Field(
        default_factory=dict,
        description="fixed kind/direction of a pattern-less channel key, as 'audio in'",
    )
    kinds: dict[str, MediaKind] = Field(
        default_factory=dict, description="raw kind -> audio/video/content (case-insensitive)"
    )
    directions: dict[str, MediaDirection] = Field(
        default_factory=dict, description="raw direction -> in/out (case-insensitive)"
    )
    rate_unit: Literal["bps", "kbps"] = "kbps"
    average_s: float | None = Field(
        None, gt=0, description="how long the codec averages its figures (None: one poll)"
    )
    feedback: list[str] = Field(
        default_factory=list, description="commands that make the codec push call changes"
    )
    feedback_off: list[str] = Field(
        default_factory=list,
        description="commands that stop the pushes, sent when the session ends",
    )
    push_lines: list[str] = Field(
        default_factory=list,
        description="regexes of the lines the codec pushes on a call change (after `feedback`)",
    )
    unverified: str | None = None

    @field_validator("call_lines", "channel_lines", "push_lines")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        return [_compile(v) for v in value]

    @field_validator("idle")
    @classmethod
    def _idle(cls, value: str | None) -> str | None:
        return value if value is None else _compile(value)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, what in value.items():
            parts = what.split()
            if (
                len(parts) != 2
                or parts[0] not in ("audio", "video", "content")
                or parts[1] not in ("in", "out")
            ):
                raise Invalid(message("profile.problem.live_channel", key=key, value=what))
        return value


# --- the profile --------------------------------------------------------------------------


class Profile(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    vendor: str
    models: list[str] = Field(min_length=1, description="models this profile covers")
    source: str = Field(min_length=1, description="the vendor guide the bytes come from")
    notes: str = ""
    family: Family
    transport: Transport
    login: Login | None = None
    inter_command_delay_s: float = Field(0.0, ge=0, le=5)
    timeout_s: float = Field(2.0, gt=0, le=60, description="default per-query timeout")
    min_firmware: str | None = None
    queries: dict[str, Query] = Field(min_length=1)
    dial: Dial | None = Field(None, description="how to dial a conference; none: cannot")
    live: LiveTable | None = Field(None, description="how a session's call is read")

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        problems = list(self._problems())
        if problems:
            raise Invalid(message("profile.problem.several", problems=problems))
        return self

    def _problems(self) -> list[Message]:
        kind = self.family.kind
        out: list[Message] = []
        if (kind == "cec") != (self.transport.kind == "process"):
            out.append(message("profile.problem.cec_process"))
        if kind == "pjlink" and self.transport.kind != "tcp":
            out.append(message("profile.problem.pjlink_tcp"))
        if self.login is not None and kind != "text_lines":
            out.append(message("profile.problem.login_text_lines"))
        if self.dial is not None and kind != "text_lines":
            out.append(message("profile.problem.dial_text_lines"))
        seen: dict[str, str] = {}
        for qname, q in self.queries.items():
            out += [
                message("profile.problem.in_query", query=qname, text=p)
                for p in _query_problems(kind, q, self)
            ]
            for fname in q.field_names():
                if fname in seen:
                    out.append(
                        message(
                            "profile.problem.field_shared",
                            query=qname,
                            field=fname,
                            other=seen[fname],
                        )
                    )
                seen.setdefault(fname, qname)
        if self.live is not None:
            live_names: list[str | None] = [self.live.call, self.live.media]
            for live_name in live_names:
                if live_name is not None and live_name not in self.queries:
                    out.append(message("profile.problem.live_query", query=live_name))
        return out

    def with_dial(self, address: str) -> Profile:
        """This profile with one more query, `dial`, that calls `address`."""
        assert self.dial is not None
        queries = {**self.queries, "dial": self.dial.query(address)}
        return self.model_copy(update={"queries": queries})

    def queries_for(self, check: str) -> list[str]:
        return [n for n, q in self.queries.items() if q.check == check]

    def health_queries(self) -> list[str]:
        return [n for n, q in self.queries.items() if q.check != "none"]


def _query_problems(kind: str, q: Query, profile: Profile) -> list[Message]:
    out: list[Message] = []
    if kind in TEXT_FAMILIES:
        if q.send is None:
            out.append(message("profile.problem.send_required", family=kind))
        if q.send_hex is not None:
            out.append(message("profile.problem.send_hex_binary"))
        if kind == "pjlink" and q.send and not re.match(r"^%[12][A-Z0-9]{4} ", q.send):
            out.append(message("profile.problem.pjlink_send"))
        groups = q.group_names()
        for fname, spec in q.fields.items():
            if fname not in groups:
                out.append(message("profile.problem.no_group", field=fname))
            if spec.offset is not None or spec.length is not None:
                out.append(message("profile.problem.offset_binary", field=fname))
        if q.until is not None and kind != "text_lines":
            out.append(message("profile.problem.until_text_lines"))
    else:
        if q.send_hex is None:
            out.append(message("profile.problem.send_hex_required", family=kind))
        if q.send is not None:
            out.append(message("profile.problem.send_text"))
        if q.pattern is not None:
            out.append(message("profile.problem.pattern_text"))
        for fname, spec in q.fields.items():
            if spec.offset is None:
                out.append(message("profile.problem.offset_required", field=fname))
    known = q.field_names()
    for i, rule in enumerate(q.rules):
        if rule.field not in known:
            reads = ", ".join(sorted(known)) or message("profile.problem.reads_nothing")
            out.append(
                message("profile.problem.rule_field", index=i, field=rule.field, reads=reads)
            )
        if isinstance(rule, MinVersionRule) and (rule.minimum or profile.min_firmware) is None:
            out.append(message("profile.problem.min_version", index=i))
    if q.check != "none" and not q.rules:
        out.append(message("profile.problem.rules_needed"))
    return out
