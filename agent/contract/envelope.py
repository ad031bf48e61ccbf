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

SCHEMA = "edge-agent/command/1"
SIGNING_TAG = b"edge-agent/command/1\n"
MAX_PAYLOAD = 64 * 1024
_ID = r"^[A-Za-z0-9._:-]{8,64}$"
_NONCE = r"^[0-9a-f]{16,64}$"


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

    def text(self) -> str:
        return f"{self.reason.value}: {self.detail}"


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
    disabled: Mapping[str, str]  # action -> why it is refused on this site


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


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "body"
    more = len(exc.errors()) - 1
    return f"{loc}: {err['msg']}" + (f" (and {more} more)" if more > 0 else "")


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
        return Rejection(Reason.MALFORMED, f"payload of {len(raw)} bytes (limit {MAX_PAYLOAD})")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Rejection(Reason.MALFORMED, "not UTF-8 JSON")
    if not isinstance(data, dict):
        return Rejection(Reason.MALFORMED, "not a JSON object")
    try:
        wire = Wire.model_validate(data)
    except ValidationError as exc:
        body = data.get("body")
        peek = _peek_id(body) if isinstance(body, str) else ""
        if "sig" not in data or data.get("sig") in ("", None):
            return Rejection(Reason.UNSIGNED, "no signature (`sig`)", peek)
        return Rejection(Reason.MALFORMED, _first_error(exc), peek)
    peek = _peek_id(wire.body)
    if not wire.sig:
        return Rejection(Reason.UNSIGNED, "no signature (`sig`)", peek)
    key = policy.keys.get(wire.key_id)
    if key is None:
        known = ", ".join(sorted(policy.keys)) or "none configured"
        return Rejection(Reason.UNKNOWN_KEY, f"key_id {wire.key_id!r} (known: {known})", peek)
    try:
        sig = b64decode_strict(wire.sig)
        key.verify(sig, SIGNING_TAG + wire.body.encode("utf-8"))
    except (ValueError, binascii.Error, InvalidSignature, UnicodeEncodeError):
        return Rejection(
            Reason.BAD_SIGNATURE, f"signature does not verify with {wire.key_id}", peek
        )
    return _check_body(wire, policy, me, now, peek)


def _check_body(
    wire: Wire, policy: Policy, me: Identity, now: datetime, peek: str
) -> Command | Rejection:
    try:
        body = Body.model_validate_json(wire.body)
    except (ValidationError, ValueError, RecursionError) as exc:
        detail = _first_error(exc) if isinstance(exc, ValidationError) else "body is not JSON"
        return Rejection(Reason.INVALID_BODY, detail, peek)
    skew = timedelta(seconds=policy.max_skew_s)
    if body.expires_at <= body.issued_at:
        return Rejection(Reason.INVALID_BODY, "expires_at is not after issued_at", body.id)
    if body.expires_at - body.issued_at > timedelta(seconds=policy.max_validity_s):
        return Rejection(
            Reason.VALIDITY_TOO_LONG,
            f"valid {(body.expires_at - body.issued_at).total_seconds():.0f} s "
            f"(this site accepts at most {policy.max_validity_s:.0f} s)",
            body.id,
        )
    if now > body.expires_at + skew:
        return Rejection(Reason.EXPIRED, f"expired at {_iso(body.expires_at)}", body.id)
    if body.issued_at > now + skew:
        return Rejection(
            Reason.NOT_YET_VALID,
            f"issued at {_iso(body.issued_at)}, in the future by more than "
            f"{policy.max_skew_s:g} s (check both clocks)",
            body.id,
        )
    if not _target_matches(body.target, me):
        quiet = not isinstance(body.target, SiteTarget)
        what = body.target.model_dump()
        return Rejection(Reason.OTHER_SITE, f"target {what} is not {me.site_id}", body.id, quiet)
    model = policy.actions.get(body.action)
    if model is None:
        return Rejection(
            Reason.UNKNOWN_ACTION,
            f"{body.action!r} (known: {', '.join(sorted(policy.actions))})",
            body.id,
        )
    if body.action in policy.disabled:
        return Rejection(Reason.DISABLED, policy.disabled[body.action], body.id)
    try:
        args = model.model_validate(body.args)
    except (ValidationError, ValueError) as exc:
        detail = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
        return Rejection(Reason.INVALID_ARGUMENTS, f"{body.action}: {detail}", body.id)
    return Command(body, args, wire.key_id)
