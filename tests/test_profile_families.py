"""Protocol families, verdict rules and the emulator's responder: pure functions, no I/O.

Expected bytes are written out literally from the vendors' guides (shared/PROTOCOLS.md), not
computed with the code under test.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.checks.model import Status
from agent.errors import BadReply, DeviceNotFound, DeviceTimeout
from agent.profiles.families import DeviceErrorReply, LoginRefused, cec, mdc, pjlink, visca
from agent.profiles.families import text_lines as tl
from agent.profiles.model import Profile, Query, TextLinesFamily
from agent.profiles.session import QueryResult
from agent.profiles.verdict import judge, version_below, version_tuple
from agent.sim.recording import Fault, Responder, load_recording

CISCO = TextLinesFamily(
    kind="text_lines",
    echo="command",
    done=r"^(OK|ERROR)$",
    errors=[r"^ERROR$", r"\(status=Error\)"],
)
POLY = TextLinesFamily(kind="text_lines", send_ending="\r", errors=[r"^error:", r"failed$"])
HDX = TextLinesFamily(kind="text_lines", send_ending="\r", echo="lf_cr", errors=[r"^error:"])
LG = TextLinesFamily(kind="text_lines", send_ending="\r", reply_ending="x", errors=[r" NG"])


def q(**kw):
    kw.setdefault("label", "x")
    kw.setdefault("check", "none")
    return Query(**kw)


VERSION = q(
    send="xStatus SystemUnit Software Version",
    pattern=r'^\*s SystemUnit Software Version: "?(?P<version>[^"]*)"?$',
)


# --- text lines: Cisco terminal mode ----------------------------------------------------


def test_cisco_block_with_echo_blank_line_and_ok():
    buf = (
        b"xStatus SystemUnit Software Version\r\n"
        b'*s SystemUnit Software Version: "ce9.15.3.22"\r\n** end\r\n\r\nOK\r\n'
    )
    assert tl.decode(CISCO, VERSION, buf, VERSION.send) == {"version": "ce9.15.3.22"}


def test_cisco_reply_is_incomplete_until_ok_line():
    buf = b'*s SystemUnit Software Version: "ce9.15.3.22"\r\n** end\r\n\r\n'
    assert tl.decode(CISCO, VERSION, buf, "") is None
    assert tl.decode(CISCO, VERSION, buf + b"OK", "") is None  # no CRLF yet: a cut line


def test_cisco_error_block_is_a_device_error_naming_the_xpath():
    buf = (
        b"*r Status (status=Error):\r\n"
        b'*r Status XPath: "Status/RoomAnalytics/PeopleCount/Current"\r\n** end\r\n\r\nERROR\r\n'
    )
    with pytest.raises(DeviceErrorReply, match="PeopleCount"):
        tl.decode(CISCO, VERSION, buf, "")


def test_cisco_idle_call_uses_defaults():
    call = q(
        send="xStatus Call",
        pattern=r"^\*s Call \d+ Status: (?P<call_status>\w+)$",
        defaults={"call_status": "Idle"},
    )
    assert tl.decode(CISCO, call, b"** end\r\n\r\nOK\r\n", "") == {"call_status": "Idle"}
    busy = b"*s Call 3 Status: Connected\r\n** end\r\n\r\nOK\r\n"
    assert tl.decode(CISCO, call, busy, "") == {"call_status": "Connected"}


def test_cisco_complete_reply_without_the_status_is_a_bad_reply():
    with pytest.raises(BadReply, match="does not say what was asked"):
        tl.decode(CISCO, VERSION, b"*s Something Else: 1\r\n** end\r\n\r\nOK\r\n", "")


# --- text lines: Poly, HDX, LG ---------------------------------------------------------


WHOAMI = q(
    send="whoami",
    pattern=r"^Model: (?P<model>.+)$(?:\n.*)*?\n^Software Version: (?P<version>.+)$",
)


def test_poly_reply_completes_when_the_pattern_line_is_complete():
    part = b"Model: Group500\r\nSerial Number: 82\r\nSoftware Version: 6.2"
    assert tl.decode(POLY, WHOAMI, part, "whoami") is None
    assert tl.decode(POLY, WHOAMI, part + b".2\r\n", "whoami") == {
        "model": "Group500",
        "version": "6.2.2",
    }


def test_poly_error_line():
    with pytest.raises(DeviceErrorReply, match="command not found"):
        tl.decode(POLY, WHOAMI, b"error: command not found\r\n", "whoami")


def test_poly_ssh_style_double_cr_is_tolerated():
    call = q(send="getcallstate", pattern=r"^cs: call\[\d+\] (?:.*state\[)?(?P<s>[a-z]+)\]?$")
    assert tl.decode(POLY, call, b"cs: call[1] inactive\r\r\n", "") == {"s": "inactive"}
    connected = b"cs: call[34] speed[384] dialstr[192.168.1.101] state[connected]\r\n"
    assert tl.decode(POLY, call, connected, "") == {"s": "connected"}


def test_hdx_lf_cr_echo_is_not_parsed_even_for_an_invalid_command():
    call = q(send="getcallstate", pattern=r"^cs: call\[\d+\] (?P<s>inactive)$")
    assert tl.decode(HDX, call, b"getcallstate\n\r", "getcallstate") is None
    both = b"getcallstate\n\rcs: call[1] inactive\r\n"
    assert tl.decode(HDX, call, both, "getcallstate") == {"s": "inactive"}
    with pytest.raises(DeviceErrorReply):
        tl.decode(HDX, call, b"bogus\n\rerror: command not found\r\n", "bogus")
    assert tl.without_echo("getcallstate\n\r", HDX, "getcallstate") == ""


LG_POWER = q(
    send="ka {id:02x} ff",
    pattern=r"^a (?P<set_id>[0-9A-Fa-f]{2}) OK(?P<power>[0-9A-Fa-f]{2})$",
    fields={"power": {"map": {"01": "on", "00": "off"}}},
)


def test_lg_reply_ends_with_a_literal_x_and_no_cr():
    assert tl.encode(LG, LG_POWER, 1) == b"ka 01 ff\r"
    assert tl.decode(LG, LG_POWER, b"a 01 OK01", "") is None
    assert tl.decode(LG, LG_POWER, b"a 01 OK01x", "") == {"set_id": "01", "power": "on"}
    assert tl.decode(LG, LG_POWER, b"a 01 OK00x", "")["power"] == "off"
    with pytest.raises(DeviceErrorReply):
        tl.decode(LG, LG_POWER, b"a 01 NG01x", "")


# --- VISCA ------------------------------------------------------------------------------


POWER_INQ = q(send_hex="09 04 00")


def test_visca_power_inquiry_bytes_for_camera_1_and_3():
    assert visca.encode(POWER_INQ, 1) == bytes.fromhex("81 09 04 00 FF")
    assert visca.encode(POWER_INQ, 3) == bytes.fromhex("83 09 04 00 FF")


def test_visca_inquiry_answer_ack_and_completion():
    assert visca.decode(bytes.fromhex("90 50 02 FF"), 1) == b"\x02"
    assert visca.decode(bytes.fromhex("90 50 02"), 1) is None
    assert visca.decode(bytes.fromhex("90 41 FF 90 51 FF"), 1) == b""
    assert visca.decode(bytes.fromhex("B0 50 03 FF"), 3) == b"\x03"


@pytest.mark.parametrize(
    ("packet", "meaning"),
    [("90 60 02 FF", "syntax error"), ("90 61 41 FF", "not executable")],
)
def test_visca_error_packets(packet, meaning):
    with pytest.raises(DeviceErrorReply, match=meaning):
        visca.decode(bytes.fromhex(packet), 1)


@pytest.mark.parametrize(
    "data",
    ["A0 50 02 FF", "13 37 FF", "90 FF", "90 50 " + "01 " * 20],
    ids=["other-address", "garbage", "too-short", "no-terminator"],
)
def test_visca_garbage_is_a_bad_reply(data):
    with pytest.raises(BadReply):
        visca.decode(bytes.fromhex(data), 1)


# --- Samsung MDC ------------------------------------------------------------------------


def test_mdc_power_query_is_the_guides_example_bytes():
    assert mdc.encode(q(send_hex="11"), 1) == bytes.fromhex("AA 11 01 00 12")
    assert mdc.checksum(bytes.fromhex("FF 01 03 41 11 01")) == 0x56


def test_mdc_ack_and_nak_from_the_guide():
    assert mdc.decode(bytes.fromhex("AA FF 01 03 41 11 01 56"), 0x11, 1) == b"\x01"
    with pytest.raises(DeviceErrorReply, match="NAK"):
        mdc.decode(bytes.fromhex("AA FF 01 03 4E 11 01 63"), 0x11, 1)


@pytest.mark.parametrize("cut", [1, 3, 4, 7])
def test_mdc_incomplete_frame_waits(cut):
    assert mdc.decode(bytes.fromhex("AA FF 01 03 41 11 01 56")[:cut], 0x11, 1) is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("AA FF 01 03 41 11 01 57", "checksum"),
        ("13 37 DE AD", "not an MDC frame"),
        ("AA FF 02 03 41 11 01 57", "display 2"),
        ("AA FF 01 03 41 12 01 57", "command 12"),
        ("AA 11 01 00 12", "not a reply"),
    ],
)
def test_mdc_bad_frames(frame, reason):
    with pytest.raises(BadReply, match=reason):
        mdc.decode(bytes.fromhex(frame), 0x11, 1)


def test_mdc_tls_greeting_is_named():
    assert mdc.decode(b"MDCST", 0x11, 1) is None
    with pytest.raises(BadReply, match="TLS"):
        mdc.decode(b"MDCSTART<<TLS>>", 0x11, 1)


# --- PJLink -----------------------------------------------------------------------------


def test_pjlink_greetings_and_the_specs_auth_example():
    assert pjlink.parse_greeting("PJLINK 0") is None
    assert pjlink.parse_greeting("PJLINK 1 498e4a67") == "498e4a67"
    assert pjlink.auth_prefix("498e4a67", "JBMIAProjectorLink") == (
        "5d8409bc1c3fa39749434aa3a5c38682"
    )
    with pytest.raises(BadReply):
        pjlink.parse_greeting("HELLO")


POWR = q(send="%1POWR ?", pattern=r"^(?P<power>[0-3])$")


def test_pjlink_power_reply_and_errors():
    assert pjlink.encode(POWR, "ab") == b"ab%1POWR ?\r"
    assert pjlink.decode(b"%1POWR=1", POWR) is None
    assert pjlink.decode(b"%1POWR=1\r", POWR) == {"power": "1"}
    with pytest.raises(DeviceErrorReply, match="ERR3"):
        pjlink.decode(b"%1POWR=ERR3\r", POWR)
    with pytest.raises(LoginRefused):
        pjlink.decode(b"PJLINK ERRA\r", POWR)
    with pytest.raises(BadReply, match="expected a %1POWR reply"):
        pjlink.decode(b"%1INPT=31\r", POWR)


# --- CEC --------------------------------------------------------------------------------


CEC_POW = q(send="pow 0", pattern=r"^power status: (?P<power>[a-z ]+?)\s*$")


def test_cec_output():
    out = "opening a connection to the CEC adapter...\npower status: standby\n"
    assert cec.parse(out, 0, CEC_POW) == {"power": "standby"}
    with pytest.raises(DeviceNotFound, match="autodetect FAILED"):
        cec.parse("autodetect FAILED\n", 1, CEC_POW)
    with pytest.raises(DeviceNotFound, match="/dev/ttyACM0"):
        cec.parse("unable to open the device on port /dev/ttyACM0\n", 1, CEC_POW)
    with pytest.raises(BadReply, match="exited 1"):
        cec.parse("opening a connection to the CEC adapter...\n", 1, CEC_POW)


# --- decoders never crash on arbitrary bytes --------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_decoders_only_wait_answer_or_raise_bad_reply(data):
    for decode in (
        lambda b: visca.decode(b, 1),
        lambda b: mdc.decode(b, 0x11, 1),
        lambda b: pjlink.decode(b, POWR),
        lambda b: tl.decode(CISCO, VERSION, b, ""),
        lambda b: tl.decode(LG, LG_POWER, b, ""),
    ):
        try:
            result = decode(data)
        except BadReply:
            continue
        assert result is None or isinstance(result, dict | bytes)


# --- verdict rules ----------------------------------------------------------------------


def test_version_comparison():
    assert version_tuple("ce9.15.3.22") == (9, 15, 3, 22)
    assert version_tuple("Release 6.2.2-100") == (6, 2, 2)
    assert version_below("ce9.10.2", "9.15") is True
    assert version_below("ce9.15.3.22", "9.15") is False
    assert version_below("ce10.0", "9.15") is False
    assert version_below("unknown", "9.15") is None


def _profile(**queries):
    return Profile.model_validate(
        {
            "name": "t",
            "vendor": "t",
            "models": ["t"],
            "source": "t",
            "family": {"kind": "text_lines"},
            "transport": {"kind": "serial"},
            "min_firmware": "9.15",
            "queries": queries,
        }
    )


def _values(field, hint, fail):
    return [{"kind": "values", "field": field, "ok": ["Registered"], "fail": fail, "hint": hint}]


REG = {
    "sip": {
        "label": "SIP", "check": "codec", "group": "reg", "send": "a",
        "pattern": "(?P<sip>.*)", "rules": _values("sip", "fix SIP", ["Failed", "Inactive"]),
    },
    "h323": {
        "label": "H.323", "check": "codec", "group": "reg", "required": False, "send": "b",
        "pattern": "(?P<h323>.*)", "rules": _values("h323", "fix H.323", ["Inactive"]),
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("sip", "h323", "status"),
    [
        ("Registered", "Inactive", Status.OK),
        ("Inactive", "Registered", Status.OK),
        ("Failed", "Inactive", Status.FAIL),
    ],
)
def test_a_group_counts_its_best_member(sip, h323, status):
    p = _profile(**REG)
    out = judge(p, [QueryResult("sip", {"sip": sip}), QueryResult("h323", {"h323": h323})], "c")
    assert out.outcome.status is status
    if status is Status.FAIL:
        assert out.outcome.hint == "fix SIP"  # one hint for the failing group


def test_failed_optional_query_is_noted_not_judged_and_required_one_fails():
    p = _profile(**REG)
    err = DeviceTimeout("t on p: no answer to 'h323'", "h")
    out = judge(p, [QueryResult("sip", {"sip": "Registered"}), QueryResult("h323", error=err)], "c")
    assert out.outcome.status is Status.OK
    out = judge(p, [QueryResult("sip", error=err), QueryResult("h323", {"h323": "Inactive"})], "c")
    assert out.outcome.status is Status.FAIL
    assert "no answer to 'h323'" in out.outcome.reason


def test_min_version_and_people_count_rules():
    p = _profile(
        version={
            "label": "firmware", "check": "codec", "send": "v", "pattern": "(?P<version>.*)",
            "rules": [{"kind": "min_version", "field": "version"}],
        },
        people={
            "label": "people", "check": "codec", "send": "p", "pattern": "(?P<people_count>.*)",
            "rules": [{"kind": "number", "field": "people_count", "unknown_below": 0}],
        },
    )  # fmt: skip

    def answers(version, people):
        return [
            QueryResult("version", {"version": version}),
            QueryResult("people", {"people_count": people}),
        ]

    old = judge(p, answers("ce9.10.2", "-1"), "codec")
    assert old.outcome.status is Status.WARN
    assert "below 9.15" in old.outcome.reason
    assert "9.15 or later" in old.outcome.hint
    assert old.outcome.metrics["people_count"] is None
    new = judge(p, answers("ce9.15.3", "4"), "codec")
    assert new.outcome.status is Status.OK
    assert new.outcome.metrics["people_count"] == 4
    assert new.outcome.metrics["reachable"] is True


def test_nothing_answered_is_a_failure():
    p = _profile(**REG)
    err = DeviceTimeout("x", "h")
    out = judge(p, [QueryResult("sip", error=err), QueryResult("h323", error=err)], "c")
    assert out.outcome.status is Status.FAIL
    assert out.outcome.metrics["reachable"] is False


# --- the emulator's responder (pure) ------------------------------------------------------


def test_responder_logs_in_echoes_until_echo_off_and_answers():
    r = Responder(load_recording("cisco-roomos_ce9.15"))
    assert b"".join(a.data for a in r.feed(b"\r\n")) == b"login: "
    assert b"".join(a.data for a in r.feed(b"admin\r\n")) == b"Password: "
    assert b"Login successful" in b"".join(a.data for a in r.feed(b"secret\r\n"))
    echoed = b"".join(a.data for a in r.feed(b"Echo off\r\n"))
    assert echoed == b"Echo off\r\n\r\nOK\r\n"
    reply = b"".join(a.data for a in r.feed(b"xStatus Call\r\n"))
    assert reply == b"** end\r\n\r\nOK\r\n"  # no echo any more


def test_responder_refuses_a_wrong_password():
    r = Responder(load_recording("cisco-roomos_ce9.15"))
    r.feed(b"\r")
    r.feed(b"admin\r")
    assert b"Login incorrect" in b"".join(a.data for a in r.feed(b"wrong\r"))


def test_responder_faults():
    rec = load_recording("samsung-mdc_generic")
    power = bytes.fromhex("AA 11 01 00 12")
    assert Responder(rec, Fault.SILENT).feed(power) == []
    (slow,) = Responder(rec, Fault.SLOW, slow_s=2.5).feed(power)
    assert slow.delay_s == 2.5
    (bad,) = Responder(rec, Fault.BAD_CHECKSUM).feed(power)
    assert bad.data == bytes.fromhex("AA FF 01 03 41 11 01 57")
    (nak,) = Responder(rec, Fault.ERROR_REPLY).feed(power)
    assert nak.data == bytes.fromhex("AA FF 01 03 4E 11 01 63")
    (cut,) = Responder(rec, Fault.DISCONNECT).feed(power)
    assert cut.close and cut.data == bytes.fromhex("AA FF 01 03")
    with pytest.raises(ValueError, match="no checksum"):
        Responder(load_recording("sony-visca_evi-d70"), Fault.BAD_CHECKSUM)


@pytest.mark.parametrize(
    ("decode", "data", "vietnamese"),
    [
        (lambda b: mdc.decode(b, 0x11, 1), "AA FF 01 03 41 11 01 57", "sai tổng kiểm tra MDC"),
        (lambda b: mdc.decode(b, 0x11, 1), "13 37 DE AD", "không phải khung MDC"),
        (lambda b: mdc.decode(b, 0x11, 1), "AA FF 02 03 41 11 01 57", "từ màn hình 2"),
        (lambda b: visca.decode(b, 1), "90 60 02 FF", "camera báo lỗi VISCA 02 (lỗi cú pháp"),
        (lambda b: visca.decode(b, 1), "A0 50 02 FF", "VISCA từ sai địa chỉ"),
        (lambda b: visca.decode(b, 1), "90 70 FF", "gói VISCA không như mong muốn: 90 70 FF"),
    ],
)
def test_wire_level_complaints_reach_a_vietnamese_reader(decode, data, vietnamese):
    """The bytes a device sent are named in the reader's language, hex kept as it was."""
    from agent.messages import render  # noqa: PLC0415

    with pytest.raises(BadReply) as caught:
        decode(bytes.fromhex(data))
    assert caught.value.msg is not None, caught.value.message
    assert vietnamese in render(caught.value.msg, "vi")
