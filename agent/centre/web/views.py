"""What the page shows, as plain JSON-ready values; pure (no I/O, the clock is an argument).

A tile's colour is `fleet.condition()`, the same function `centre status` uses, so the page
and the terminal never disagree about a site.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agent.centre import fleet, names
from agent.centre.report import SessionReport
from agent.centre.store import AttendanceRow, LiveEventRow
from agent.i18n import LANGUAGES
from agent.messages import message, render, render_or

Tile = dict[str, Any]


@dataclass(frozen=True)
class Labels:
    """What a tile says of its site that needs the other sites: its short name (siblings
    compared) and its group's title (the parent's name). Made from a full read and kept for
    the reads of a few changed sites in between."""

    short: dict[str, str] = field(default_factory=dict)
    full: dict[str, str] = field(default_factory=dict)  # site id -> its name, when it has one


def labels(sites: list[fleet.SiteRow]) -> Labels:
    return Labels(names.short_names(sites), {s.site_id: s.name for s in sites if s.name})


def tile(site: fleet.SiteRow, now: float, silent_after: float, known: Labels | None = None) -> Tile:
    cond = fleet.condition(site, now, silent_after)
    problems = fleet.problem_msgs(site, cond, now, silent_after)
    known = known or labels([site])
    return {
        "id": site.site_id,
        "name": site.name,
        "short": known.short.get(site.site_id) or names.short_names([site])[site.site_id],
        "tier": site.tier,
        "parent": site.parent,
        "group": site.parent,
        "group_name": known.full.get(site.parent, site.parent) if site.parent else None,
        "c": cond.value,
        # set by the roster and the condition events where this centre has them
        "since": getattr(site, "since", None),
        "summoned": getattr(site, "summoned", None),
        "why": fleet.english(problems[0]) if problems else "",
        "why_msg": problems[0] if problems else None,  # the page renders it in its language
        # during its session: in the call, poor, dropped, unknown (the problem list's entries)
        "live": live.said() if (live := fleet.live_now(site, now)) is not None else None,
    }


def tiles(
    sites: list[fleet.SiteRow], now: float, silent_after: float, known: Labels | None = None
) -> dict[str, Tile]:
    """The tiles of `sites`; `known` the labels of the whole fleet when `sites` is a part."""
    known = known or labels(sites)
    return {s.site_id: tile(s, now, silent_after, known) for s in sites}


def changed(old: dict[str, Tile], new: dict[str, Tile]) -> list[Tile]:
    """Tiles that are new or differ; a site never disappears from the store."""
    return [t for sid, t in new.items() if old.get(sid) != t]


@dataclass(frozen=True)
class Attendance:
    """The province line of the session report: `rate` is the people counted at the
    summoned sites over the people summoned there, absent sites counting 0 (report.py)."""

    session_id: str | None
    counted: int  # people counted at the summoned sites
    expected: int  # people summoned
    sites: int
    absent: int = 0  # summoned sites that sent no sample

    @property
    def rate(self) -> float | None:
        return round(self.counted / self.expected, 4) if self.expected else None

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session_id,
            "counted": self.counted,
            "expected": self.expected,
            "sites": self.sites,
            "rate": self.rate,
            "absent": self.absent,
        }


NO_SESSION = Attendance(None, 0, 0, 0)


@dataclass
class Running:
    """A session's samples folded into one row per site as they arrive: the highest count
    and peak, the newest expected. `report.session_report` gives the same totals over these
    as over every sample, without reading the whole session again each time."""

    session_id: str
    rowid: int = 0
    rows: dict[str, AttendanceRow] = field(default_factory=dict)
    expected_ts: dict[str, float] = field(default_factory=dict)

    def add(self, rowid: int, row: AttendanceRow) -> None:
        self.rowid = max(self.rowid, rowid)
        old = self.rows.get(row.site_id)
        if old is None:
            self.rows[row.site_id] = row
            if row.expected is not None:
                self.expected_ts[row.site_id] = row.ts
            return
        expected = old.expected
        if row.expected is not None and row.ts >= self.expected_ts.get(row.site_id, -1.0):
            expected = row.expected
            self.expected_ts[row.site_id] = row.ts
        self.rows[row.site_id] = AttendanceRow(
            row.site_id,
            row.session_id,
            max(old.ts, row.ts),
            _max(old.count, row.count),
            expected,
            _max(old.peak, row.peak),
            None,
        )


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def attendance(result: SessionReport | None) -> Attendance:
    """The province line of the session report: the same sums as `centre report`."""
    if result is None:
        return NO_SESSION
    p = result.province
    return Attendance(result.session_id, p.counted, p.expected, p.sites, p.absent)


def counters(
    all_tiles: dict[str, Tile], att: Attendance, live: fleet.LivePicture | None = None
) -> dict[str, Any]:
    counts = Counter(t["c"] for t in all_tiles.values())
    return {
        "total": len(all_tiles),
        "counts": {c: counts.get(c, 0) for c in fleet.CONDITION_ORDER},
        "attendance": att.to_json(),
        "live": live_json(live),
    }


def live_json(live: fleet.LivePicture | None) -> dict[str, Any] | None:
    """The session's live picture for the page's header (None outside sessions)."""
    if live is None:
        return None
    return {
        "session": live.session_id,
        "title": live.title,
        "counts": live.counts,
        "by_tier": live.by_tier,
        "by_parent": live.by_parent,
    }


# A media channel's name: the words of the site's reasons (agent/checks/live.py).
_CHANNELS = {
    ("audio", "in"): message("live.channel.audio_in"),
    ("audio", "out"): message("live.channel.audio_out"),
    ("video", "in"): message("live.channel.video_in"),
    ("video", "out"): message("live.channel.video_out"),
    ("content", "in"): message("live.channel.content_in"),
    ("content", "out"): message("live.channel.content_out"),
}


def _with_channel(media: dict[str, Any]) -> dict[str, Any]:
    """A media point with its channel's name in each language."""
    kind, direction = media.get("kind"), media.get("direction")
    name = _CHANNELS.get((str(kind), str(direction)))
    if name is None:  # a newer site's kind: as it came
        return {**media, "channel_by_lang": dict.fromkeys(LANGUAGES, f"{kind} {direction}")}
    named = {lang: render(name, lang) for lang in LANGUAGES}
    return {**media, "channel_by_lang": named}


# The last live events of the session shown in a site's detail.
DETAIL_EVENTS = 10


def live_detail(
    site: fleet.SiteRow,
    now: float,
    media: list[tuple[int, dict[str, Any]]],
    events: list[LiveEventRow],
) -> dict[str, Any] | None:
    """The site's live state in its running session with its latest figures (the newest
    minute's media point: who, each channel, the MCU path) and the session's last events;
    None outside its session."""
    live = fleet.live_now(site, now)
    if live is None:
        return None
    minute, latest = media[-1] if media else (None, {})
    return {
        **live.said(),
        "title": live.title,
        "far_end": latest.get("far_end"),
        "protocol": latest.get("protocol"),
        # when they were measured: the newest `live`'s time when the point is its minute's
        "figures_at": (
            live.ts
            if minute is not None and live.ts is not None and int(live.ts // 60) == minute
            else (minute * 60 if minute is not None else None)
        ),
        "media": [_with_channel(m) for m in latest.get("media", [])],
        "path": latest.get("path", []),
        "events": [
            {
                "ts": e.ts,
                "before": e.before,
                "after": e.after,
                "reason": e.reason,
                "reason_by_lang": {
                    lang: render_or(e.reason_msg, e.reason, lang) for lang in LANGUAGES
                },
            }
            for e in events[-DETAIL_EVENTS:]
        ],
    }


def detail(
    site: fleet.SiteRow,
    now: float,
    silent_after: float,
    *,
    verdicts: list[tuple[float, str | None]],
    curve: list[tuple[float, int | None]],
    expected: int | None,
    session_id: str | None,
    metrics: dict[str, dict[str, Any]],
    replies: list[dict[str, Any]],
    known: Labels | None = None,
    live: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cond = fleet.condition(site, now, silent_after)
    problems = fleet.problem_msgs(site, cond, now, silent_after)
    return {
        **tile(site, now, silent_after, known),
        "problems": [fleet.english(p) for p in problems],
        "problem_msgs": problems,
        "availability": site.availability,
        "last_seen": site.last_seen,
        "components": [
            {"name": name, **comp.said(), "metrics": metrics.get(name, {})}
            for name, comp in sorted(site.components.items())
        ],
        "verdicts": [{"ts": ts, "verdict": v} for ts, v in verdicts],
        "attendance": {
            "session": session_id,
            "expected": expected,
            "points": [{"ts": ts, "count": c} for ts, c in curve],
        },
        "replies": replies,
        "live_detail": live,  # live_detail(): during the site's session only
    }
