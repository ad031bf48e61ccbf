"""The signed command envelope and its validation. Pure: no I/O, the clock is an argument.

On the wire (docs/mqtt.md, "Commands")::

    {"schema": "edge-agent/command/1", "key_id": "centre-2026",
     "body": "{\\"id\\":\\"...\\",\\"action\\":\\"run-checks\\",...}", "sig": "<base64>"}

The signature is Ed25519 over `SIGNING_TAG + body` (the body's exact UTF-8 bytes). Signing
the transmitted bytes, not a re-serialisation of parsed JSON, leaves nothing to canonicalise
(key order, spacing, number formats, unicode escapes cannot make two parties disagree), and
the body is parsed only once its signature holds. The tag separates these signatures from
anything else the key might ever sign.

Validation order: size, outer shape, unsigned, unknown key, bad signature, body shape, time
window, target, action, arguments. The replay check comes after (it needs the store) and
only a command that passed all of these is remembered, so a refused command changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent import messages
from agent.messages import Message, Param, message

SCHEMA = "edge-agent/command/1"
SIGNING_TAG = b"edge-agent/command/1\n"
MAX_PAYLOAD = 64 * 1024
_ID = r"^[A-Za-z0-9._:-]{8,64}$"
_NONCE = r"^[0-9a-f]{16,64}$"
_NO_SIGNATURE = "command.detail.no_signature"


class Reason(StrEnum):
    """Why a command was refused: one value per case, sent in the `rejected` reply."""

    MALFORMED = "malformed"  # not a command envelope at all
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    INVALID_BODY = "invalid_body"  # signed, but the body is not a valid command
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    VALIDITY_TOO_LONG = "validity_too_long"
    OTHER_SITE = "other_site"
    REPLAY = "replay"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_ARGUMENTS = "invalid_arguments"
    DISABLED = "disabled"  # a known action this site does not allow (reboot-host)


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str
    command_id: str = ""  # best effort: may come from an unverified body
    # Broadcasts for other tiers are not ours: audited, but not answered (every site in the
    # fleet would otherwise answer every tier's commands).
    quiet: bool = False
    detail_msg: Message | None = None  # the detail for a reader in another language

    def text(self) -> str:
        return f"{self.reason.value}: {self.detail}"

    def message(self) -> Message:
        """The refusal as a message: the reason by its id, the detail as said."""
        return message(
            "command.rejected",
            reason=messages.message(_REASON_IDS[self.reason]),
            detail=self.detail_msg or self.detail,
        )


# The ids are literals here, where the catalogue test reads them.
_REASON_IDS = {
    Reason.MALFORMED: "command.reason.malformed",
    Reason.UNSIGNED: "command.reason.unsigned",
    Reason.UNKNOWN_KEY: "command.reason.unknown_key",
    Reason.BAD_SIGNATURE: "command.reason.bad_signature",
    Reason.INVALID_BODY: "command.reason.invalid_body",
    Reason.EXPIRED: "command.reason.expired",
    Reason.NOT_YET_VALID: "command.reason.not_yet_valid",
    Reason.VALIDITY_TOO_LONG: "command.reason.validity_too_long",
    Reason.OTHER_SITE: "command.reason.other_site",
    Reason.REPLAY: "command.reason.replay",
    Reason.UNKNOWN_ACTION: "command.reason.unknown_action",
    Reason.INVALID_ARGUMENTS: "command.reason.invalid_arguments",
    Reason.DISABLED: "command.reason.disabled",
}


def reject(
    reason: Reason, detail_id: str, command_id: str = "", quiet: bool = False, **params: Param
) -> Rejection:
    """A refusal whose detail is catalogue entry `detail_id` (its English is `detail`); the
    callers give the id as a literal, where the catalogue test reads it."""
    msg = messages.message(detail_id, **params)
    return Rejection(reason, msg.text, command_id, quiet, msg)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Wire(_Strict):
    schema_: Literal["edge-agent/command/1"] = Field(alias="schema")
    key_id: str = ""
    body: str
    sig: str = ""


class SiteTarget(_Strict):
    site: str = Field(min_length=1, max_length=64)


class TierTarget(_Strict):
    tier: Literal["province", "district", "commune"]


class AllTarget(_Strict):
    all: Literal[True]

    @field_validator("all", mode="before")
    @classmethod
    def _true_only(cls, value: object) -> object:
        # Literal[True] also matches 1 and 1.0 (they equal True): only JSON `true` may
        # address every site.
        if value is not True:
            raise ValueError("`all` must be true")
        return value


Target = SiteTarget | TierTarget | AllTarget


class Body(BaseModel):
    """The signed part: what to do, where, and when it is valid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, strict=True)
    action: str = Field(min_length=1, max_length=64, strict=True)
    args: dict[str, Any] = Field(default_factory=dict, strict=True)
    target: Target
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    nonce: str = Field(pattern=_NONCE, strict=True)

    @field_validator("issued_at", "expires_at", mode="before")
    @classmethod
    def _iso_text_only(cls, value: object) -> object:
        # pydantic would read a number as a Unix time: one spelling only, ISO-8601 text.
        if not isinstance(value, str):
            raise ValueError("an ISO-8601 time with its zone, as text")
        return value


@dataclass(frozen=True)
class Command:
    """A command that passed every check but the replay check."""

    body: Body
    args: BaseModel  # the action's validated arguments
    key_id: str

    @property
    def id(self) -> str:
        return self.body.id

    @property
    def action(self) -> str:
        return self.body.action


@dataclass(frozen=True)
class Identity:
    """What a command's target is matched against."""

    site_id: str
    tier: str


@dataclass(frozen=True)
class Policy:
    keys: Mapping[str, Ed25519PublicKey]
    max_skew_s: float
    max_validity_s: float
    actions: Mapping[str, type[BaseModel]]  # action -> its argument model
    disabled: Mapping[str, Message]  # action -> why it is refused on this site


# ---- keys and signing (also used by the centre) ------------------------------------------


def b64decode_strict(text: str) -> bytes:
    """Standard base64; refuses anything but the one canonical spelling of the bytes, so a
    changed padding bit cannot pass as the same signature."""
    data = base64.b64decode(text, validate=True)
    if base64.b64encode(data).decode() != text:
        raise ValueError("not canonical base64")
    return data


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    raw = b64decode_strict(text.strip())
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: PLC0415

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign(
    private: Ed25519PrivateKey,
    key_id: str,
    *,
    command_id: str,
    action: str,
    args: Mapping[str, Any],
    target: Mapping[str, Any],
    issued_at: datetime,
    expires_at: datetime,
    nonce: str,
) -> bytes:
    """The wire bytes of a signed command."""
    body = json.dumps(
        {
            "id": command_id,
            "action": action,
            "args": dict(args),
            "target": dict(target),
            "issued_at": _iso(issued_at),
            "expires_at": _iso(expires_at),
            "nonce": nonce,
        },
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    sig = private.sign(SIGNING_TAG + body.encode())
    wire = {"schema": SCHEMA, "key_id": key_id, "body": body, "sig": base64.b64encode(sig).decode()}
    return json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---- validation -------------------------------------------------------------------------


def _first_error(exc: ValidationError) -> Message:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    more = len(exc.errors()) - 1
    if more > 0:
        return message("command.detail.bad_fields", field=loc, error=err["msg"], more=more)
    return message("command.detail.bad_field", field=loc, error=err["msg"])


def _peek_id(body: str) -> str:
    """The id of an unverified body, for the reply only (never trusted for anything else)."""
    match = re.search(r'"id"\s*:\s*"([A-Za-z0-9._:-]{1,64})"', body[:4096])
    return match.group(1) if match else ""


def _target_matches(target: Target, me: Identity) -> bool:
    if isinstance(target, SiteTarget):
        return target.site == me.site_id
    if isinstance(target, TierTarget):
        return target.tier == me.tier
    return True


def validate(raw: bytes, policy: Policy, me: Identity, now: datetime) -> Command | Rejection:
    """Every check but replay; never raises on any input."""
    if len(raw) > MAX_PAYLOAD:
        return reject(
            Reason.MALFORMED, "command.detail.too_large", size=len(raw), limit=MAX_PAYLOAD
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return reject(Reason.MALFORMED, "command.detail.not_json")
    if not isinstance(data, dict):
        return reject(Reason.MALFORMED, "command.detail.not_object")
    try:
        wire = Wire.model_validate(data)
    except ValidationError as exc:
        body = data.get("body")
        peek = _peek_id(body) if isinstance(body, str) else ""
        if "sig" not in data or data.get("sig") in ("", None):
            return reject(Reason.UNSIGNED, _NO_SIGNATURE, peek)
        first = _first_error(exc)
        return Rejection(Reason.MALFORMED, first.text, peek, detail_msg=first)
    peek = _peek_id(wire.body)
    if not wire.sig:
        return reject(Reason.UNSIGNED, _NO_SIGNATURE, peek)
    key = policy.keys.get(wire.key_id)
    if key is None:
        known: Param = ", ".join(sorted(policy.keys)) or message("command.detail.no_keys")
        return reject(
            Reason.UNKNOWN_KEY, "command.detail.unknown_key", peek, key_id=repr(wire.key_id),
            known=known,
        )  # fmt: skip
    try:
        sig = b64decode_strict(wire.sig)
        key.verify(sig, SIGNING_TAG + wire.body.encode("utf-8"))
    except (ValueError, binascii.Error, InvalidSignature, UnicodeEncodeError):
        return reject(
            Reason.BAD_SIGNATURE, "command.detail.bad_signature", peek, key_id=wire.key_id
        )
    return _check_body(wire, policy, me, now, peek)


def _check_body(
    wire: Wire, policy: Policy, me: Identity, now: datetime, peek: str
) -> Command | Rejection:
    try:
        body = Body.model_validate_json(wire.body)
    except (ValidationError, ValueError, RecursionError) as exc:
        detail = (
            _first_error(exc)
            if isinstance(exc, ValidationError)
            else message("command.detail.body_not_json")
        )
        return Rejection(Reason.INVALID_BODY, detail.text, peek, detail_msg=detail)
    skew = timedelta(seconds=policy.max_skew_s)
    if body.expires_at <= body.issued_at:
        return reject(Reason.INVALID_BODY, "command.detail.expires_first", body.id)
    if body.expires_at - body.issued_at > timedelta(seconds=policy.max_validity_s):
        return reject(
            Reason.VALIDITY_TOO_LONG,
            "command.detail.too_long",
            body.id,
            seconds=(body.expires_at - body.issued_at).total_seconds(),
            limit=policy.max_validity_s,
        )
    if now > body.expires_at + skew:
        return reject(Reason.EXPIRED, "command.detail.expired", body.id, at=_iso(body.expires_at))
    if body.issued_at > now + skew:
        return reject(
            Reason.NOT_YET_VALID,
            "command.detail.future",
            body.id,
            at=_iso(body.issued_at),
            skew=policy.max_skew_s,
        )
    if not _target_matches(body.target, me):
        quiet = not isinstance(body.target, SiteTarget)
        what = str(body.target.model_dump())
        return reject(
            Reason.OTHER_SITE, "command.detail.other_site", body.id, quiet, target=what,
            site=me.site_id,
        )  # fmt: skip
    model = policy.actions.get(body.action)
    if model is None:
        return reject(
            Reason.UNKNOWN_ACTION,
            "command.detail.unknown_action",
            body.id,
            action=repr(body.action),
            known=", ".join(sorted(policy.actions)),
        )
    if body.action in policy.disabled:
        why = policy.disabled[body.action]
        return Rejection(Reason.DISABLED, why.text, body.id, detail_msg=why)
    try:
        args = model.model_validate(body.args)
    except (ValidationError, ValueError) as exc:
        error: Param = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
        return reject(
            Reason.INVALID_ARGUMENTS, "command.detail.arguments", body.id, action=body.action,
            error=error,
        )  # fmt: skip
    return Command(body, args, wire.key_id)
