"""Pure parts of the centre: conditions and fleet views, seq gap logic, the attendance report,
schedule edits, and the centre's example settings file."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from agent.centre import fleet, report, seqs
from agent.centre.fleet import ComponentRow, Condition, SiteRow
from agent.centre.schedule_pub import schedule_topic, with_session, without_session
from agent.centre.settings import CentreSettings
from agent.centre.store import AttendanceRow
from agent.config import load_file_settings
from agent.schedule.model import SchedulePayload, Session

NOW = 1_800_000_000.0
ROOT = Path(__file__).resolve().parent.parent


def site(sid: str, **kw: object) -> SiteRow:
    base: dict[str, object] = {"availability": "online", "last_seen": NOW - 1, "verdict": "ready",
                               "interval_s": 10.0}  # fmt: skip
    return SiteRow(sid, **{**base, **kw})  # type: ignore[arg-type]


# ---- conditions --------------------------------------------------------------------------


def test_condition_order_offline_then_silent_then_verdict():
    assert fleet.condition(site("a"), NOW, 3) is Condition.READY
    assert (
        fleet.condition(site("a", verdict="fault", availability="offline"), NOW, 3)
        is Condition.OFFLINE
    )
    assert fleet.condition(site("a", availability=None), NOW, 3) is Condition.OFFLINE
    # silent: online, unheard for more than 3 x 10 s; a fault verdict does not hide it
    assert (
        fleet.condition(site("a", last_seen=NOW - 31, verdict="fault"), NOW, 3) is Condition.SILENT
    )
    assert fleet.condition(site("a", last_seen=NOW - 29), NOW, 3) is Condition.READY
    assert fleet.condition(site("a", verdict=None), NOW, 3) is Condition.UNKNOWN
    assert fleet.condition(site("a", verdict="degraded"), NOW, 3) is Condition.DEGRADED


def test_silence_is_judged_by_the_heartbeat_the_site_promises():
    # checks every 30 s, a state at least every 60 s; in a session only the heartbeats come
    start = NOW - 180
    beats = [start + 60 * i for i in range(4)]  # 3 minutes of heartbeats, no check
    for t in range(int(start), int(NOW) + 1):
        last = max(b for b in beats if b <= t)
        row = site("a", interval_s=30.0, heartbeat_s=60.0, last_seen=last)
        assert fleet.condition(row, t, 3) is Condition.READY, t - last
    quiet = site("a", interval_s=30.0, heartbeat_s=60.0, last_seen=NOW - 181)
    assert fleet.condition(quiet, NOW, 3) is Condition.SILENT
    assert fleet.condition(site("a", interval_s=30.0, heartbeat_s=60.0, last_seen=NOW - 179),
                           NOW, 3) is Condition.READY  # fmt: skip
    (line,) = fleet.problems(quiet, Condition.SILENT, NOW, 3)
    assert "silent for more than 180 s (heartbeat every 60 s" in line
    # an agent whose meta does not say (older): judged by its report interval, as before
    old = site("a", interval_s=30.0, last_seen=NOW - 91)
    assert fleet.condition(old, NOW, 3) is Condition.SILENT
    assert fleet.condition(site("a", interval_s=30.0, last_seen=NOW - 89), NOW, 3) is (
        Condition.READY
    )


def test_stale_retained_state_is_silent_and_named():
    old = site("a", state_retained=True, state_ts=NOW - 3600, last_seen=NOW - 1)
    assert fleet.is_stale(old, NOW, 3)
    assert fleet.condition(old, NOW, 3) is Condition.SILENT
    assert any("stale retained state" in p for p in fleet.problems(old, Condition.SILENT, NOW, 3))
    fresh = site("a", state_retained=True, state_ts=NOW - 5)
    assert not fleet.is_stale(fresh, NOW, 3)
    live_old = site("a", state_retained=False, state_ts=NOW - 3600)
    assert not fleet.is_stale(live_old, NOW, 3)


def test_fleet_view_counts_groups_and_sorts_not_ready_by_tier():
    sites = [
        site("c1", parent="d1"),
        site("c2", parent="d1", verdict="fault",
             components={"camera": ComponentRow("fail", "camera: not found", "plug it in"),
                         "network": ComponentRow("ok", "")}),
        site("c3", parent="d2", availability="offline", avail_reason="connection lost (will)"),
        site("d1", tier="district", parent="p1", last_seen=NOW - 100),
        site("p1", tier="province", verdict="degraded"),
        site("c4", parent="d2", lost=2),
    ]  # fmt: skip
    view = fleet.fleet_view(sites, NOW, 3)
    assert view.total == 6
    assert view.counts == {"ready": 2, "degraded": 1, "fault": 1, "offline": 1, "silent": 1,
                           "never_seen": 0, "unknown": 0, "unreachable": 0}  # fmt: skip
    assert list(view.by_tier) == ["province", "district", "commune"]
    assert view.by_tier["commune"]["ready"] == 2
    assert view.by_parent["commune under d1"] == {**dict.fromkeys(fleet.CONDITION_ORDER, 0),
                                                  "ready": 1, "fault": 1}  # fmt: skip
    assert [n.site_id for n in view.not_ready] == ["p1", "d1", "c2", "c3"]
    c2 = view.not_ready[2]
    assert c2.problems == ["camera fail: camera: not found (plug it in)"]
    assert view.not_ready[3].problems[0].startswith("offline: connection lost (will)")
    assert view.lost == 2
    text = fleet.render(view)
    assert "[commune] c2" in text and "reports lost" in text and "camera fail" in text


def test_centre_status_and_every_problem_say_themselves_in_vietnamese():
    from agent.messages import catalogue  # noqa: PLC0415
    from tests.test_cli_vietnamese import COMMON_ENGLISH, ascii_words, words_in  # noqa: PLC0415

    sites = [
        site("c1", parent="d1", availability="offline", avail_reason="clean shutdown"),
        site("c2", parent="d1", availability=None, last_seen=None),
        site("c3", parent="d1", availability="offline"),
        site("c4", parent="d1", heartbeat_s=5.0, last_seen=NOW - 100, lost=1),
        site("c5", parent="d1", state_retained=True, state_ts=NOW - 3600, last_seen=NOW - 1),
        site("c6", parent="d1", verdict=None, lost=3),
        site("c7", parent="d1", region="r001", region_down_since=NOW - 60),
        site("d1", tier="district", verdict="fault", components={
            "camera": ComponentRow("fail", "camera: not found", "plug it in"),
            "network": ComponentRow("warn", "slow"),
        }),
    ]  # fmt: skip
    codes = {
        p["code"] for s in sites for p in fleet.problem_msgs(s, fleet.condition(s, NOW, 3), NOW, 3)
    }
    assert codes == {i for i in catalogue() if i.startswith("fleet.problem.")}
    english = fleet.render(fleet.fleet_view(sites, NOW, 3, "en"), "en")
    assert "1 report lost (seq gap)" in english and "3 reports lost (seq gaps)" in english
    assert "offline: clean shutdown; last heard" in english and "fleet at " in english
    text = fleet.render(fleet.fleet_view(sites, NOW, 3, "vi"), "vi")
    assert "mất liên lạc: phần mềm giám sát đã tắt bình thường" in text
    assert "camera không đạt: camera: not found (plug it in)" in text  # the site's own words
    assert "[huyện] d1" in text and "SỰ CỐ" in text and "xã thuộc d1" in text
    vocabulary = ascii_words(
        [*(e["en"] for i, e in catalogue().items() if i.startswith("fleet.")), COMMON_ENGLISH]
    ) - ascii_words([e["vi"] for i, e in catalogue().items() if i.startswith("fleet.")])
    site_words = ("camera: not found (plug it in)", "slow", "camera", "network")
    assert words_in(text, vocabulary, site_words) == [], text


# ---- seq gaps ----------------------------------------------------------------------------


def test_track_first_next_gap_late():
    assert seqs.track(None, 17) == seqs.SeqStep(seqs.Step.FIRST, 18)
    assert seqs.track(18, 18) == seqs.SeqStep(seqs.Step.NEXT, 19)
    assert seqs.track(18, 21) == seqs.SeqStep(seqs.Step.GAP, 22, 18, 20)
    assert seqs.track(22, 19) == seqs.SeqStep(seqs.Step.LATE, 22)


def test_loss_grace_fills_and_counted_drops():
    gaps = [seqs.Gap(5, 7, NOW - 100), seqs.Gap(20, 29, NOW - 100, filled=4),
            seqs.Gap(40, 40, NOW - 1)]  # fmt: skip
    result = seqs.loss(gaps, dropped_since_first=0, now=NOW, grace_s=30)
    assert (result.missing, result.pending, result.lost) == (3 + 6, 1, 9)
    assert seqs.loss(gaps, 4, NOW, 30).lost == 5
    # more drops than missing numbers never makes a negative loss
    assert seqs.loss(gaps, 100, NOW, 30).lost == 0
    assert seqs.loss([], 3, NOW, 30).lost == 0


# ---- attendance report -------------------------------------------------------------------


def row(sid: str, count: int | None, **kw: object) -> AttendanceRow:
    base: dict[str, object] = {"session_id": "S", "ts": NOW, "expected": None, "peak": None,
                               "median": None}  # fmt: skip
    return AttendanceRow(sid, count=count, **{**base, **kw})  # type: ignore[arg-type]


def test_report_peak_median_rate_and_totals():
    rows = [row("c1", 10), row("c1", 20), row("c1", None), row("c1", 16),
            row("d1", None, peak=40, median=35.0, expected=50),
            row("c2", None)]  # fmt: skip
    sites = {"c1": ("commune", 25), "d1": ("district", 60), "c2": ("commune", None)}
    r = report.session_report("S", rows, sites)
    by = {s.site_id: s for s in r.sites}
    assert (by["c1"].peak, by["c1"].median, by["c1"].expected, by["c1"].rate) == (20, 16, 25, 0.8)
    # the agent's own figures when it sends no counts; its expected wins over meta
    assert (by["d1"].peak, by["d1"].median, by["d1"].expected, by["d1"].rate) == (40, 35, 50, 0.8)
    # nothing countable and no expected: tolerated, no rate
    assert (by["c2"].peak, by["c2"].rate) == (None, None)
    assert [s.site_id for s in r.sites] == ["d1", "c1", "c2"]
    assert [(t.label, t.expected, t.counted) for t in r.tiers] == [("district", 50, 40),
                                                                  ("commune", 25, 20)]  # fmt: skip
    assert (r.province.expected, r.province.counted, r.province.rate) == (75, 60, 0.8)
    lines = report.to_csv(r).splitlines()
    assert len(lines) == 1 + 3 + 2 + 1
    assert "session S" in report.render(r)


# ---- schedule edits ----------------------------------------------------------------------


def test_schedule_edits_replace_by_id_and_remove():
    t = datetime(2026, 3, 10, 1, tzinfo=UTC)
    s1 = Session(session_id="S1", start=t, end=t.replace(hour=3))
    s1b = Session(session_id="S1", start=t.replace(hour=2), end=t.replace(hour=4))
    p = with_session(with_session(SchedulePayload(), s1, t), s1b, t)
    assert [(e.session_id, e.start.hour) for e in p.entries] == [("S1", 2)]
    p2, found = without_session(p, "S1", t)
    assert found and p2.entries == []
    assert without_session(p2, "S1", t)[1] is False
    assert schedule_topic("vc", None) == "vc/schedule"
    assert schedule_topic("vc", "c1") == "vc/c1/schedule"


# ---- settings ----------------------------------------------------------------------------


def test_centre_example_file_is_valid_and_names_every_field():
    example = ROOT / "centre.example.toml"
    settings = load_file_settings(CentreSettings, example)
    assert settings.share_group == "centre"
    text = example.read_text()
    for name in CentreSettings.model_fields:
        section = getattr(settings, name)
        if not isinstance(section, BaseModel):
            assert f"\n{name} =" in text, name
            continue
        assert f"\n[{name}]\n" in text, name
        for sub in type(section).model_fields:
            value = getattr(section, sub)
            if isinstance(value, list) and value and isinstance(value[0], BaseModel):
                # a list of tables: each of its fields is named, set or in a comment
                assert f"\n[[{name}.{sub}]]\n" in text, f"{name}.{sub}"
                for field in type(value[0]).model_fields:
                    assert field in text, f"{name}.{sub}.{field}"
            elif isinstance(value, BaseModel):
                # a sub-table ([alerts.email]): each of its fields is named
                assert f"\n[{name}.{sub}]\n" in text, f"{name}.{sub}"
                for field in type(value).model_fields:
                    assert f"{field} =" in text, f"{name}.{sub}.{field}"
            else:
                assert f"{sub} =" in text, f"{name}.{sub}"
    tomllib.loads(text)


def test_centre_config_path_precedence_and_missing_file(tmp_path, monkeypatch):
    import pytest  # noqa: PLC0415

    from agent.centre.settings import centre_config_path, load_centre_settings  # noqa: PLC0415
    from agent.errors import ConfigError  # noqa: PLC0415

    monkeypatch.delenv("EDGE_AGENT_CENTRE_CONFIG", raising=False)
    assert centre_config_path(None) == Path("/etc/edge-agent/centre.toml")
    monkeypatch.setenv("EDGE_AGENT_CENTRE_CONFIG", str(tmp_path / "env.toml"))
    assert centre_config_path(None) == tmp_path / "env.toml"
    assert centre_config_path(str(tmp_path / "cli.toml")) == tmp_path / "cli.toml"
    with pytest.raises(ConfigError) as err:
        load_centre_settings(None)
    assert "centre.example.toml" in str(err.value) and "env.toml" in str(err.value)


def test_store_keeps_each_components_newest_metrics_across_a_reopen(tmp_path):
    from datetime import timedelta  # noqa: PLC0415

    from agent.centre.store import Incoming, Store  # noqa: PLC0415
    from agent.checks.model import CheckResult, Status, Verdict  # noqa: PLC0415
    from agent.contract.payloads import ChecksPayload  # noqa: PLC0415

    t0 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)

    def checks(seq: int, at: datetime, rtt: float, *, historical: bool = False) -> Incoming:
        result = CheckResult(
            component="network",
            status=Status.OK,
            reason="ok",
            metrics={"rtt_ms": rtt},
            started_at=at,
            duration_s=0.1,
        )
        payload = ChecksPayload(
            site_id="s1",
            seq=seq,
            ts=at,
            historical=historical,
            trigger="interval",
            verdict=Verdict.READY,
            started_at=at,
            duration_s=0.1,
            results=[result],
        )
        return Incoming(payload, retained=False, received_at=at.timestamp())

    store = Store(tmp_path / "centre.sqlite")
    store.apply_batch([checks(1, t0, 2.0)])
    store.apply_batch([checks(3, t0 + timedelta(minutes=2), 3.5)])
    # seq 2, measured between them, drained late after an outage: it must not win
    store.apply_batch([checks(2, t0 + timedelta(minutes=1), 99.0, historical=True)])
    assert store.metrics("s1") == {"network": {"rtt_ms": 3.5}}
    store.close()
    assert Store(tmp_path / "centre.sqlite").metrics("s1") == {"network": {"rtt_ms": 3.5}}
    assert Store(tmp_path / "centre.sqlite").metrics("other") == {}


def test_site_detail_carries_message_reasons_in_every_language():
    from agent.centre.web import views  # noqa: PLC0415
    from agent.messages import message  # noqa: PLC0415

    told = ComponentRow(
        "skipped",
        "no network targets configured",
        "add [[network.targets]] for the centre's broker and the MCU",
        message("network.no_targets"),
        message("network.hint.add_targets"),
    )
    old = ComponentRow("fail", "camera: simulated fail", "check it")
    s = site("c1", verdict="fault", components={"network": told, "camera": old})
    d = views.detail(
        s, NOW, 3.0, verdicts=[], curve=[], expected=None, session_id=None, metrics={}, replies=[]
    )
    by_name = {c["name"]: c for c in d["components"]}
    assert by_name["network"]["reason"] == "no network targets configured"
    assert by_name["network"]["reason_by_lang"]["vi"] == "chưa cấu hình đích kiểm tra mạng nào"
    assert by_name["network"]["hint_by_lang"]["vi"].startswith("thêm [[network.targets]]")
    assert by_name["camera"]["reason_by_lang"] == {
        "en": "camera: simulated fail",
        "vi": "camera: simulated fail",
    }
    (problem,) = d["problem_msgs"]  # the skipped network is no problem
    assert problem["code"] == "fleet.problem.component_hint" and problem["name"] == "camera"
    assert problem["reason_by_lang"] == {
        "en": "camera: simulated fail",
        "vi": "camera: simulated fail",
    }
    assert d["problems"] == ["camera fail: camera: simulated fail (check it)"]


def test_a_tiles_tooltip_reason_comes_in_every_language():
    from agent.centre.web import views  # noqa: PLC0415
    from agent.messages import message  # noqa: PLC0415

    told = ComponentRow(
        "fail", "mcu_tcp unreachable", "", message("network.unreachable", path="mcu_tcp")
    )
    t = views.tile(site("c1", verdict="fault", components={"network": told}), NOW, 3.0)
    assert t["why"] == "network fail: mcu_tcp unreachable"
    assert t["why_msg"]["code"] == "fleet.problem.component"
    assert t["why_msg"]["reason_by_lang"] == {
        "en": "mcu_tcp unreachable",
        "vi": "mcu_tcp: không kết nối được",
    }
    assert views.tile(site("c2"), NOW, 3.0)["why_msg"] is None
