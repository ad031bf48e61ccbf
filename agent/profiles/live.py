"""A codec's call and media health from its replies, as its profile's `[live]` table says:
pure, no I/O (agent/probes/call.py asks the codec).

Everything here is untrusted text from a serial line: a value that does not parse, or says
something impossible (loss over 100 %, negative jitter, a call lasting for years), is
dropped rather than believed; a reply that does not say whether the codec is in a call
gives `in_call=None`, never a guess.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import cast

from agent.checks.live import CallState, MediaStats
from agent.profiles.model import LiveTable, MediaDirection, MediaKind

# Past these a figure is a bad reading, not a bad network (a serial line can garble digits).
MAX_JITTER_MS = 10_000.0
MAX_RATE_KBPS = 1_000_000.0
MAX_CALL_S = 7 * 24 * 3600
MAX_PIXELS = 16_384
MAX_LOST = 10_000_000  # more lost packets than 1 Gbps sends in a minute: a garbled count

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kKmM]?)(?:[bB]ps|[sS])?\s*$")
_TRIM = "\"' \t"


def loss_pct(lost: int | None, received: int | None) -> float | None:
    """Packets lost over an interval as a percentage of those expected, from the counts
    Cisco reports (LastIntervalLost, LastIntervalReceived); None when they cannot say."""
    if lost is None or received is None or lost < 0 or received < 0:
        return None
    expected = lost + received
    if expected == 0:
        return None  # no packets at all this interval: no figure, not 0 % and not 100 %
    return round(100.0 * lost / expected, 2)


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip(_TRIM))
    except ValueError:
        return None


def _number(raw: str | None, *, scaled: bool = False) -> float | None:
    """'19', '19mS', '1.1m', '24k' -> a float; a k/m suffix multiplies only when `scaled`
    (rates in bps: 24k = 24000); anything else -> None."""
    if raw is None:
        return None
    m = _NUMBER.match(raw.strip(_TRIM))
    if m is None:
        return None
    value = float(m.group(1))
    suffix = m.group(2)
    if scaled and suffix:
        value *= 1_000.0 if suffix in "kK" else 1_000_000.0
    return value


def _rate_kbps(raw: str | None, unit: str) -> float | None:
    """A rate in kbps: '24k' / '1.1m' carry their own unit (bits per second), a bare number
    is in the profile's `rate_unit`."""
    value = _number(raw, scaled=True)
    if value is None or raw is None:
        return None
    suffixed = raw.strip(_TRIM).rstrip("bpsBPS")[-1:] in ("k", "K", "m", "M")
    return value / 1000.0 if suffixed or unit == "bps" else value


def _in_range(value: float | None, top: float) -> float | None:
    return value if value is not None and 0 <= value <= top else None


def _lines(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip()]


def _groups(patterns: list[str], lines: list[str]) -> list[dict[str, str]]:
    out = []
    for pattern in patterns:
        compiled = re.compile(pattern)
        for line in lines:
            out += [
                {k: v for k, v in m.groupdict().items() if v is not None}
                for m in compiled.finditer(line)
            ]
    return out


def _text(raw: str | None, limit: int) -> str | None:
    if raw is None:
        return None
    text = raw.strip(_TRIM)
    if not text.strip("-"):
        return None  # Poly's "---": the codec has no such figure
    return text if len(text) <= limit and text.isprintable() else None


def call_state(
    live: LiveTable, call_reply: str | None, media_reply: str | None, now: datetime
) -> CallState:
    """The call as the replies say it. `call_reply` None: the codec did not answer."""
    if call_reply is None:
        return CallState(in_call=None)
    lines = _lines(call_reply)
    found: dict[str, str] = {}
    statuses: list[str] = []
    for groups in _groups(live.call_lines, lines):
        if "status" in groups:
            statuses.append(groups["status"].strip(_TRIM).lower())
        for key, value in groups.items():
            found.setdefault(key, value)
    in_call = _judge(live, statuses, lines)
    if not in_call:
        return CallState(in_call=in_call)
    since = None
    duration = _int(found.get("duration_s"))
    if duration is not None and 0 <= duration <= MAX_CALL_S:
        since = now - timedelta(seconds=duration)
    media = media_stats(live, media_reply) if media_reply is not None else ()
    return CallState(
        in_call=True,
        since=since,
        far_end=_text(found.get("far_end"), 256),
        protocol=_text(found.get("protocol"), 16),
        media=media,
    )


def _judge(live: LiveTable, statuses: list[str], lines: list[str]) -> bool | None:
    yes = {v.lower() for v in live.in_call}
    no = {v.lower() for v in live.not_in_call}
    if any(s in yes for s in statuses):
        return True
    if statuses:
        # Every call the codec listed is known to be not (yet) connected: not in the call.
        # A status we do not know (a newer firmware's) is no answer either way.
        return False if all(s in no for s in statuses) else None
    if live.idle is not None and any(re.search(live.idle, line) for line in lines):
        return False
    return None


def media_stats(live: LiveTable, reply: str) -> tuple[MediaStats, ...]:
    """Each media channel the reply describes, its figures checked; unreadable channels and
    figures are left out."""
    channels: dict[str, dict[str, str]] = {}
    for index, groups in enumerate(_groups(live.channel_lines, _lines(reply))):
        key = groups.pop("channel", f"#{index}")
        channels.setdefault(key, {}).update(groups)
    kinds = {k.lower(): v for k, v in live.kinds.items()}
    directions = {k.lower(): v for k, v in live.directions.items()}
    out: list[tuple[str, MediaStats]] = []
    for key, fields in channels.items():
        fixed = live.channels.get(key, "").split()
        kind: str | None = kinds.get(fields.get("role", "").lower()) or kinds.get(
            fields.get("kind", "").lower()
        )
        direction: str | None = directions.get(fields.get("direction", "").lower())
        if fixed:
            kind, direction = fixed  # checked when the profile was loaded
        if kind is None or direction is None:
            continue
        out.append((key, _stats(live, kind, direction, fields)))
    out.sort(key=lambda item: (item[1].kind, item[1].direction, item[0]))
    return tuple(stats for _, stats in out)


def _stats(live: LiveTable, kind: str, direction: str, fields: dict[str, str]) -> MediaStats:
    pct = loss_pct(_int(fields.get("lost")), _int(fields.get("received")))
    if pct is None:
        pct = _in_range(_number(fields.get("loss_pct", "").rstrip("%") or None), 100.0)
    rate = _rate_kbps(fields.get("rate"), live.rate_unit)
    width, height = _int(fields.get("width")), _int(fields.get("height"))
    resolution = _text(fields.get("resolution"), 32)
    if width and height and 0 < width <= MAX_PIXELS and 0 < height <= MAX_PIXELS:
        resolution = f"{width}x{height}"
    lost = None
    if pct is None and "received" not in fields:
        # A lost count with no total (Poly): kept as a count, judged on its own threshold.
        count = _int(fields.get("lost"))
        lost = count if count is not None and 0 <= count <= MAX_LOST else None
    return MediaStats(
        kind=cast(MediaKind, kind),
        direction=cast(MediaDirection, direction),
        loss_pct=pct,
        lost_packets=lost,
        jitter_ms=_in_range(_number(fields.get("jitter_ms")), MAX_JITTER_MS),
        rate_kbps=_in_range(rate, MAX_RATE_KBPS),
        resolution=resolution,
    )


__all__ = ["call_state", "loss_pct", "media_stats"]
