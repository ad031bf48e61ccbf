"""The session report, pure, from tables of the store's rows: readiness at T-60, T-15 and the
start, the fixes before the start, drop-outs, incidents, attendance with absent sites, and its
text, CSV and printable HTML."""

from __future__ import annotations

import csv
import io
from datetime import UTC

from agent.centre.alerts.model import AlertKind, Incident, Severity
from agent.centre.report import document, export, session_report, text
from agent.centre.report.readiness import SiteFacts, readiness
from agent.centre.report.session import build
from agent.centre.store import AttendanceRow, Event, LiveEventRow
from agent.messages import message

S = 1_800_000_000.0  # the session's start (2027-01-15 08:00:00 UTC)
END = S + 3600
DAY = 86400.0

# site: the condition changes logged (seconds from the start, new condition)
CHANGES = {
    "a": [(-DAY, "ready")],
    "b": [(-DAY, "offline"), (-1800, "ready")],  # down for a day, fixed 30 min before
    "c": [(-DAY, "ready"), (-1200, "fault"), (-300, "ready")],  # broke at T-20, fixed at T-5
    "d": [],  # on the list, never heard from
    "e": [(-7200, "degraded")],  # degraded throughout
}
EVENTS = [Event(S + dt, sid, None, new, "") for sid, ch in CHANGES.items() for dt, new in ch]
CAMERA = {"en": ["camera: no picture"], "vi": ["camera: không có hình"]}
SITES = {sid: SiteFacts(sid, name=sid.upper(), district="h1") for sid in CHANGES}
SITES["e"] = SiteFacts("e", name="E", district="h2", reasons=CAMERA)


def live(sid: str, dt: float, before: str | None, after: str, reason: str = "") -> LiveEventRow:
    return LiveEventRow(sid, "S1", S + dt, before, after, reason, None)


LIVE = [
    live("x", 600, "in_call", "dropped", "codec left the call"),
    live("x", 720, "dropped", "in_call"),
    live("x", 800, "in_call", "poor"),  # poor is in the call: no drop
    live("y", 1000, "in_call", "dropped"),  # never back
    live("y", 1100, "dropped", "dropped"),  # a repeat changes nothing
]


def incident(i: int, opened: float, closed: float | None) -> Incident:
    return Incident(id=i, alert_key=f"k{i}", rule="down", kind=AlertKind.SITE_DOWN,
                    severity=Severity.WARNING, site_id="b", district="h1", opened_at=S + opened,
                    closed_at=None if closed is None else S + closed,
                    reason=message("report.no_start"))  # fmt: skip


INCIDENTS = [
    incident(1, -1000, -400),  # in the window, repaired in 10 min
    incident(2, 5000, None),  # after the end
    incident(3, -10000, -9000),  # closed before the window
    incident(4, -10000, None),  # opened before, still open during it
]


def row(sid: str, count: int) -> AttendanceRow:
    return AttendanceRow(sid, "S1", S + 60, count, None, None, None)


def the_report():
    att = session_report(
        "S1",
        [row("a", 18)],
        {"a": ("commune", 20, True), "b": ("commune", 10, True)},
        {"a": "h1", "b": "h1"},
    )
    return build("S1", att, title="Giao ban", start=S, end=END,
                 readiness=readiness(S, SITES, reversed(EVENTS)), live=LIVE,
                 alerts=INCIDENTS)  # fmt: skip


def test_readiness_at_the_three_checkpoints():
    r = the_report().readiness
    assert [c.label for c in r.checkpoints] == ["t60", "t15", "start"]
    assert [c.at for c in r.checkpoints] == [S - 3600, S - 900, S]
    counts = [c.counts for c in r.checkpoints]
    assert counts == [
        {"degraded": 1, "never_seen": 1, "offline": 1, "ready": 2},
        {"degraded": 1, "fault": 1, "never_seen": 1, "ready": 2},
        {"degraded": 1, "never_seen": 1, "ready": 3},
    ]
    t15 = {s.site_id: s for s in r.checkpoints[1].not_ready}
    assert set(t15) == {"c", "d", "e"}
    assert (t15["c"].condition, t15["c"].since) == ("fault", S - 1200)
    assert (t15["d"].condition, t15["d"].since) == ("never_seen", None)
    # the components explain a verdict; an unheard site's condition says it all
    assert t15["e"].reasons == CAMERA and t15["d"].reasons == {}


def test_sites_fixed_before_the_start_with_how_long_it_took():
    r = the_report().readiness
    fixed = [(f.site_id, f.condition, f.found, f.fixed_at, f.took_s) for f in r.fixed]
    # b down for a day: counted from T-60, not the day before
    assert fixed == [("b", "offline", "t60", S - 1800, 1800.0),
                     ("c", "fault", "t15", S - 300, 900.0)]  # fmt: skip
    assert r.median_fix_s == 1350.0


def test_drops_with_their_durations():
    rep = the_report()
    assert [(d.site_id, d.at, d.back_at, d.duration_s) for d in rep.drops] == [
        ("x", S + 600, S + 720, 120.0),
        ("y", S + 1000, None, 2600.0),  # not back: counted to the end
    ]
    assert rep.drops[0].reason["en"] == "codec left the call"
    assert rep.median_drop_s == 1360.0


def test_incidents_of_the_session_window():
    rep = the_report()
    assert [(i.id, i.repair_s) for i in rep.incidents] == [(4, None), (1, 600.0)]
    assert rep.median_repair_s == 600.0
    assert rep.incidents[1].reason["vi"].startswith("lịch trung tâm")


def test_absent_sites_count_per_district_and_tier():
    att = the_report().attendance
    b = next(s for s in att.sites if s.site_id == "b")
    assert (b.absent, b.district, b.rate) == (True, "h1", 0.0)
    assert [(t.label, t.sites, t.expected, t.counted, t.absent) for t in att.districts] == [
        ("h1", 2, 30, 18, 1)
    ]
    assert (att.province.rate, att.province.absent) == (0.6, 1)


def test_the_text_in_english_and_vietnamese():
    rep = the_report()
    en = text.render(rep, "en", UTC)
    assert "T-15 (2027-01-15 07:45): 2 of 5 sites ready; degraded 1, fault 1" in en
    assert "C (h1): fault since 2027-01-15 07:40" in en
    assert "E (h2): degraded since 2027-01-15 06:00: camera: no picture" in en
    assert "fixed before the start: 2 of the 4 sites not ready at T-60 or T-15, median 22 min" in en
    assert "B: offline at T-60, ready at 2027-01-15 07:30 (took 30 min)" in en
    assert "2 call drops, median 23 min out of the call" in en
    assert "x: dropped at 2027-01-15 08:10, back at 2027-01-15 08:12 (2 min)" in en
    assert "y: dropped at 2027-01-15 08:16, not back by the end (43 min)" in en
    assert "2 incidents, median time to repair 10 min" in en
    vi = text.render(rep, "vi", UTC)
    assert "15 phút trước (2027-01-15 07:45): 2/5 điểm cầu sẵn sàng" in vi
    assert "E (h2): suy giảm từ 2027-01-15 06:00: camera: không có hình" in vi
    assert "đã khắc phục trước giờ bắt đầu: 2/4 điểm cầu" in vi
    assert "2 lần rớt cuộc gọi, trung vị 23 phút" in vi


def test_a_session_without_a_known_start_says_so():
    att = session_report("S9", [], {})
    rep = build("S9", att)
    assert rep.readiness is None
    assert "its start is not known" in text.render(rep, "en", UTC)
    assert export.rows(rep, "en") == [{"section": "total_province", "label": "province",
                                       "count": 0, "expected": 0, "counted": 0, "rate": None,
                                       "absent": 0}]  # fmt: skip


def test_one_csv_with_a_section_column_and_a_bom():
    data = export.to_csv(the_report(), "vi", UTC)
    assert data.startswith("\ufeff".encode())  # Excel on Windows reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    sections = [r["section"] for r in rows]
    assert sections.count("readiness") == 4 + 4 + 3
    assert sections.count("not_ready") == 3 + 3 + 2
    fixed = [r for r in rows if r["section"] == "fixed"]
    assert [(r["site_id"], r["minutes"], r["at"]) for r in fixed] == [
        ("b", "30.0", "2027-01-15T07:30:00+00:00"), ("c", "15.0", "2027-01-15T07:55:00+00:00")
    ]  # fmt: skip
    e = next(r for r in rows if r["section"] == "not_ready" and r["site_id"] == "e")
    assert e["reason"] == "camera: không có hình"
    drop = next(r for r in rows if r["section"] == "drop" and r["site_id"] == "y")
    assert (drop["until"], drop["minutes"]) == ("", "43.3")
    absent = next(r for r in rows if r["section"] == "attendance" and r["site_id"] == "b")
    assert (absent["absent"], absent["district"]) == ("1", "h1")


def test_the_printable_page_is_vietnamese_html():
    page = document.to_html(the_report(), "vi", UTC)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="vi">' in page
    assert "<h1>Báo cáo phiên họp S1</h1>" in page
    assert "Giao ban" in page and "rớt cuộc gọi" in page and "vắng mặt" in page
    assert "$" not in page  # every field of the template filled


def test_a_site_text_a_spreadsheet_would_run_as_a_formula_is_written_as_text():
    from agent.centre.report.export import _cell  # noqa: PLC0415

    assert _cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert [_cell(v) for v in ("+1", "-x", "@a", "\tb")] == ["'+1", "'-x", "'@a", "'\tb"]
    assert [_cell(v) for v in ("UBND xã", 12, None, -3)] == ["UBND xã", 12, "", -3]


def test_a_regions_incident_is_in_the_report_in_every_form():
    cut = Incident(id=9, alert_key="region-down:region:r001", rule="region-down",
                   kind=AlertKind.REGION_DOWN, severity=Severity.CRITICAL,
                   site_id="region:r001", district="", tier="region", opened_at=S - 300,
                   closed_at=S + 600,
                   reason=message("alerts.region_down", region="r001", sites=212))  # fmt: skip
    att = session_report("S1", [row("a", 18)], {"a": ("commune", 20, True)}, {"a": "h1"})
    rep = build("S1", att, start=S, end=END, alerts=[cut])
    assert [(i.site_id, i.district, i.repair_s) for i in rep.incidents] == [
        ("region:r001", "", 900.0)]  # fmt: skip
    assert "r001 cut off from the centre: 212 sites" in text.render(rep, "en", UTC)
    assert "máy chủ MQTT vùng r001 mất kết nối" in text.render(rep, "vi", UTC)
    # the subject in the reader's words, not the id made for it
    assert "region:r001" not in text.render(rep, "en", UTC) + text.render(rep, "vi", UTC)
    (line,) = [r for r in export.rows(rep, "vi") if r["section"] == "incident"]
    assert (line["site_id"], line["district"], line["minutes"]) == ("region:r001", "", "15.0")
    assert "máy chủ MQTT vùng r001" in document.to_html(rep, "vi", UTC)
