"""The notification queue, its rendering, the channels (webhook, e-mail, Telegram) against
real local servers, and the delivery worker. The receivers: an HTTP server in a thread that
records each request and answers from a script (a webhook receiver, a Telegram Bot API
stand-in), and a real SMTP server (aiosmtpd) with STARTTLS and AUTH LOGIN."""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers the n-th request with script[n] (status, JSON body, or bytes sent as they are);
    the last one after."""

    script: list[tuple[int, dict[str, Any] | bytes]] = field(default_factory=lambda: [(200, {})])
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def keys(self) -> list[str]:
        return [s.headers.get("Idempotency-Key", "") for s in self.seen]


@contextmanager
def http_receiver(receiver: Receiver) -> Iterator[Receiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                receiver.seen.append(Seen(self.path, dict(self.headers), body, time.time()))
                n = len(receiver.seen) - 1
            time.sleep(receiver.delay_s)
            status, answer = receiver.script[min(n, len(receiver.script) - 1)]
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            # The sender may be gone (killed mid-request): nothing to answer then.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "smtp.pem", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    port: int
    ca_file: Path
    mails: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@contextmanager
def smtp_server(tmp: Path, user: str, password: str) -> Iterator[Mailbox]:
    """aiosmtpd on a free port (its Controller(port=0) fails), STARTTLS required, AUTH LOGIN."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415
    from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: PLC0415

    cert, key = self_signed(tmp)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox(free_port(), cert)

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            box.mails.append(envelope.original_content or envelope.content)
            return "250 OK"

    def auth(server: object, session: object, envelope: object, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        if ok:
            box.logins.append(mechanism)
        return AuthResult(success=ok)

    controller = Controller(
        Handler(), hostname="127.0.0.1", port=box.port, tls_context=context,
        require_starttls=True, authenticator=auth, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


# ---- the tests ----------------------------------------------------------------------------

from agent.centre.alerts.channels.webhook import signature  # noqa: E402
from agent.centre.alerts.delivery import Delivery, backoff_s  # noqa: E402
from agent.centre.alerts.model import (  # noqa: E402
    Alert,
    AlertKind,
    Channel,
    ChannelKind,
    Notification,
    NotificationEvent,
    NotificationStatus,
    Severity,
)
from agent.centre.alerts.queue import NotificationQueue  # noqa: E402
from agent.centre.alerts.render import render_notification  # noqa: E402
from agent.centre.alerts.settings import AlertsSettings, DeliverySettings  # noqa: E402
from agent.messages import catalogue, message  # noqa: E402
from tests.fixtures.broker import wait_until  # noqa: E402

T0 = 1_800_000_000.0


def alert(i: int, kind: AlertKind = AlertKind.SITE_DOWN, district: str = "Huyện A") -> Alert:
    return Alert(
        key=f"down-t15:s{i:03d}", rule="down-t15", kind=kind, severity=Severity.WARNING,
        site_id=f"s{i:03d}", site_name=f"Xã số {i}", district=district, since=T0 - 300,
        fired_at=T0, reason=message("notify.kind.site_down"),
    )  # fmt: skip


def note(key: str, kind: ChannelKind, address: str, *, alerts: int = 1, lang: str = "vi",
         event: NotificationEvent = NotificationEvent.RAISED) -> Notification:  # fmt: skip
    return Notification(
        key=key, contact_id="tech", channel=Channel(kind=kind, address=address), language=lang,
        event=event, alerts=tuple(alert(i) for i in range(alerts)), created_at=T0,
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def settings(**sections: dict[str, Any]) -> AlertsSettings:
    base: dict[str, Any] = {"delivery": {"backoff_min_s": 1.0, "backoff_max_s": 8.0}}
    return AlertsSettings.model_validate(base | sections)


def test_queue_keeps_one_row_per_key_claims_due_rows_and_survives_a_reopen(store_location):
    db = store_location  # an SQLite file, then a PostgreSQL database
    q = NotificationQueue(db)
    items = [note(f"k{i}", ChannelKind.WEBHOOK, "http://127.0.0.1:1/") for i in range(3)]
    assert q.enqueue(items) == 3
    assert q.enqueue(items[:2]) == 0  # the same event queued again is the same rows
    due = q.due(T0, lease_s=30)
    assert [n.key for n in due] == ["k0", "k1", "k2"]
    assert q.due(T0 + 29) == []  # claimed: no second sender takes them meanwhile
    assert due[0].id is not None and due[1].id is not None and due[2].id is not None
    q.sent(due[0].id, T0 + 1)
    q.retry(due[1].id, "HTTP 500", T0 + 100)
    q.failed(due[2].id, "HTTP 404", T0 + 2)
    q.close()
    q = NotificationQueue(db)
    assert q.backlog() == 1
    assert [n.key for n in q.due(T0 + 100)] == ["k1"]  # the lease of the others is moot
    recent = q.recent(10)
    assert [(n.key, n.status, n.attempts) for n in recent] == [
        ("k2", NotificationStatus.FAILED, 1),
        ("k0", NotificationStatus.SENT, 1),
    ]
    assert recent[1].alerts == items[0].alerts  # the reason message comes back whole
    q.close()


def test_an_unreadable_row_is_given_up_and_does_not_hold_the_others_up(tmp_path):
    db = tmp_path / "centre.sqlite"
    q = NotificationQueue(db)
    q.enqueue([note(f"k{i}", ChannelKind.WEBHOOK, "http://127.0.0.1:1/") for i in range(3)])
    q._db.execute("UPDATE notifications SET body = '{}' WHERE id = 2")  # an older build's row
    assert [n.key for n in q.due(T0, lease_s=30)] == ["k0", "k2"]
    assert q.backlog() == 2
    assert [n.key for n in q.recent(10)] == []  # unreadable: not listed, but not pending
    row = q._db.execute("SELECT status, last_error FROM notifications WHERE id = 2").fetchone()
    assert row[0] == NotificationStatus.FAILED and row[1].startswith("unreadable")
    q.close()


def test_render_lists_the_group_in_the_readers_language_and_fits_telegram():
    n = note("k", ChannelKind.TELEGRAM, "42", alerts=300)
    vi = render_notification(n, tz=datetime.UTC)
    down = "điểm cầu mất liên lạc trước phiên họp"
    assert vi.subject == f"[CẢNH BÁO] {down}: 300 điểm cầu tại Huyện A"
    assert len(vi.text) <= 4096
    assert "- Xã số 0: điểm cầu mất liên lạc trước phiên họp (từ 2027-01-15 07:55)" in vi.text
    shown = vi.text.count("\n- ")
    assert 10 < shown < 300
    assert f"... và {300 - shown} điểm cầu khác" in vi.text
    en = render_notification(n.model_copy(update={"language": "en"}), tz=datetime.UTC)
    assert en.subject == "[ALERT] site not reachable before a session: 300 sites in Huyện A"
    assert en.body["alerts"][0]["reason"] == "site not reachable before a session"
    short = render_notification(note("k", ChannelKind.EMAIL, "a@b", alerts=1, lang="en"))
    assert "centre incidents ack down-t15:s000" in short.text and "more" not in short.text


def test_a_site_name_with_a_line_break_still_makes_a_one_line_subject():
    n = note("k", ChannelKind.EMAIL, "a@example.org")
    a = n.alerts[0].model_copy(update={"site_name": "UBND xã\r\nBcc: x@evil"})
    got = render_notification(n.model_copy(update={"alerts": (a,)}))
    assert "\n" not in got.subject and "\r" not in got.subject
    assert "UBND xã Bcc: x@evil" in got.subject


def test_every_event_kind_and_severity_has_its_words_in_both_languages():
    ids = catalogue()
    names = [f"notify.event.{e.value}" for e in NotificationEvent]
    names += [f"notify.kind.{k.value}" for k in AlertKind]
    names += [f"notify.severity.{s.value}" for s in Severity]
    for name in names:
        assert {"en", "vi"} <= set(ids[name]), name


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    s = DeliverySettings(backoff_min_s=2, backoff_max_s=30)
    assert [backoff_s(a, s, lambda: 1.0) for a in (1, 2, 3, 4, 5, 9)] == [2, 4, 8, 16, 30, 30]
    assert backoff_s(3, s, lambda: 0.0) == 4


def test_webhook_is_signed_keeps_its_key_across_retries_and_is_sent_once_after_a_500(tmp_path):
    receiver = Receiver(script=[(500, {}), (200, {})])
    clock = Clock()
    with http_receiver(receiver):
        q = NotificationQueue(tmp_path / "c.sqlite")
        q.enqueue([note("key-1", ChannelKind.WEBHOOK, receiver.url + "/hook")])
        worker = Delivery(settings(webhook={"secret": "s3cret"}), tmp_path / "c.sqlite",
                          clock=clock, rnd=lambda: 1.0)  # fmt: skip
        assert worker.run_once(q) == 1
        (n,) = q.due(T0 + 1)  # retried after the first backoff (1 s), not before
        assert n.attempts == 1 and "500" in n.last_error and q.due(T0 + 0.9) == []
        clock.now = T0 + 1
        assert worker.run_once(q) == 1
        assert worker.run_once(q) == 0
    assert q.backlog() == 0 and q.recent(1)[0].status is NotificationStatus.SENT
    assert receiver.keys() == ["key-1", "key-1"]
    for seen in receiver.seen:
        assert seen.headers["X-Edge-Signature"] == signature("s3cret", seen.body)
        assert seen.json()["alerts"][0]["site_id"] == "s000"


def test_a_4xx_is_given_up_at_once_and_a_bad_row_does_not_stop_the_others(tmp_path):
    receiver = Receiver(script=[(404, {"error": "no such hook"})])
    with http_receiver(receiver):
        q = NotificationQueue(tmp_path / "c.sqlite")
        q.enqueue([
            note("bad-url", ChannelKind.WEBHOOK, "ftp://example.org/x"),
            note("gone", ChannelKind.WEBHOOK, receiver.url),
            note("tg-no-token", ChannelKind.TELEGRAM, "42"),
        ])  # fmt: skip
        worker = Delivery(settings(), tmp_path / "c.sqlite", clock=Clock())
        assert worker.run_once(q) == 3
    assert q.backlog() == 0
    errors = {n.key: n.last_error for n in q.recent(5)}
    assert all(n.status is NotificationStatus.FAILED for n in q.recent(5))
    assert "HTTP 404" in errors["gone"] and "4xx" in errors["gone"]
    assert "cannot be used" in errors["bad-url"]
    assert "alerts.telegram.token" in errors["tg-no-token"]


def test_a_token_or_password_in_a_url_never_reaches_the_stored_error(tmp_path, caplog):
    q = NotificationQueue(tmp_path / "c.sqlite")
    q.enqueue([
        note("tg", ChannelKind.TELEGRAM, "42"),
        note("hook", ChannelKind.WEBHOOK, "http://ops:s3cret-pw@127.0.0.1:9/hook"),
    ])  # fmt: skip
    tg = {"base_url": "http://127.0.0.1:9", "token": "123:AAsecret token"}  # a pasted space
    worker = Delivery(settings(telegram=tg), tmp_path / "c.sqlite", clock=Clock())
    worker.run_once(q)
    stored = " ".join(
        str(r[0]) for r in q._db.execute("SELECT last_error FROM notifications").fetchall()
    )
    said = stored + caplog.text
    assert "AAsecret" not in said and "s3cret-pw" not in said, said
    assert "127.0.0.1:9" in stored


def test_an_unreachable_receiver_is_retried_until_max_attempts_then_failed(tmp_path):
    q = NotificationQueue(tmp_path / "c.sqlite")
    q.enqueue([note("k", ChannelKind.WEBHOOK, f"http://127.0.0.1:{free_port()}/")])
    clock = Clock()
    worker = Delivery(settings(delivery={"max_attempts": 3, "backoff_min_s": 1}),
                      tmp_path / "c.sqlite", clock=clock)  # fmt: skip
    for _ in range(3):
        assert worker.run_once(q) == 1
        clock.now += 10
    (n,) = q.recent(1)
    assert n.status is NotificationStatus.FAILED and n.attempts == 3
    assert "cannot reach" in n.last_error and "after 3 attempts" in n.last_error


def test_telegram_429_waits_the_retry_after_it_asked_for(tmp_path):
    answer_429 = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
                  "parameters": {"retry_after": 7}}  # fmt: skip
    receiver = Receiver(script=[(429, answer_429), (200, {"ok": True, "result": {}})])
    clock = Clock()
    with http_receiver(receiver):
        q = NotificationQueue(tmp_path / "c.sqlite")
        q.enqueue([note("k", ChannelKind.TELEGRAM, "-100123", alerts=2)])
        s = settings(telegram={"base_url": receiver.url, "token": "123:ABC"})
        worker = Delivery(s, tmp_path / "c.sqlite", clock=clock, rnd=lambda: 1.0)
        worker.run_once(q)
        assert q.due(T0 + 6.9) == []  # not the 1 s backoff: the 7 s it asked for
        clock.now = T0 + 7
        assert worker.run_once(q) == 1
    assert q.backlog() == 0
    assert [s.path for s in receiver.seen] == ["/bot123:ABC/sendMessage"] * 2
    sent = receiver.seen[1].json()
    assert sent["chat_id"] == "-100123" and sent["text"].startswith("cảnh báo, điểm cầu")


def test_a_telegram_answer_that_is_not_json_is_shown_cut_not_a_crash(tmp_path):
    # 2xx, not Telegram's JSON: a proxy's page, cut at 200 bytes inside a two-byte letter.
    page = ("<p>Lỗi máy chủ trung gian:  " + "ố" * 100 + "</p>").encode()  # 33 + 3 x 100
    with pytest.raises(UnicodeDecodeError):
        page[:200].decode()  # the cut the stored error is made from falls inside a letter
    receiver = Receiver(script=[(200, page)])
    with http_receiver(receiver):
        q = NotificationQueue(tmp_path / "c.sqlite")
        q.enqueue([note("k", ChannelKind.TELEGRAM, "-100123")])
        s = settings(telegram={"base_url": receiver.url, "token": "123:ABC"})
        Delivery(s, tmp_path / "c.sqlite", clock=Clock()).run_once(q)
        (n,) = q.due(T0 + 3600)
    assert n.status is NotificationStatus.PENDING and n.attempts == 1  # tried again later
    assert "<p>Lỗi máy chủ trung gian:  ốốố" in n.last_error
    assert "unexpected" not in n.last_error.lower()


def test_a_database_away_when_the_worker_starts_delays_the_notifications_only(tmp_path, caplog):
    later = tmp_path / "not-yet" / "c.sqlite"
    later.parent.write_text("")  # a file where its folder goes: no database can open there
    receiver = Receiver()
    with http_receiver(receiver):
        worker = Delivery(settings(delivery={"poll_s": 0.1}), later).start()
        try:
            time.sleep(0.5)  # several polls without a database
            later.parent.unlink()
            q = NotificationQueue(later)
            q.enqueue([note("k", ChannelKind.WEBHOOK, receiver.url)])
            q.close()
            assert wait_until(lambda: len(receiver.seen) == 1, 5), caplog.text
        finally:
            worker.stop()
    assert caplog.text.count("notification queue not readable") == 1
    assert "Traceback" not in caplog.text


def test_email_over_starttls_with_login_in_vietnamese(tmp_path):
    with smtp_server(tmp_path, "desk", "s3cret") as box:
        s = settings(email={"host": "127.0.0.1", "port": box.port, "ca_file": str(box.ca_file),
                            "username": "desk", "password": "s3cret",
                            "from_addr": "centre@tinh.example"})  # fmt: skip
        q = NotificationQueue(tmp_path / "c.sqlite")
        q.enqueue([note("mail-1", ChannelKind.EMAIL, "tech@huyen.example", alerts=3)])
        Delivery(s, tmp_path / "c.sqlite", clock=Clock()).run_once(q)
        assert q.recent(1)[0].status is NotificationStatus.SENT, q.recent(1)[0].last_error
    assert box.logins == ["LOGIN"] or box.logins == ["PLAIN"]
    (raw,) = box.mails
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Message-ID"] == "<mail-1@edge-agent.notify>"
    down = "điểm cầu mất liên lạc trước phiên họp"
    assert mail["Subject"] == f"[CẢNH BÁO] {down}: 3 điểm cầu tại Huyện A"
    assert "Xã số 2" in mail.get_content()


def test_an_accented_smtp_password_is_a_clear_error_not_a_retry_loop(tmp_path):
    with smtp_server(tmp_path, "desk", "mật-khẩu") as box:
        s = settings(email={"host": "127.0.0.1", "port": box.port, "ca_file": str(box.ca_file),
                            "username": "desk", "password": "mật-khẩu"})  # fmt: skip
        q = NotificationQueue(tmp_path / "c.sqlite")
        q.enqueue([note("mail-1", ChannelKind.EMAIL, "tech@huyen.example")])
        Delivery(s, tmp_path / "c.sqlite", clock=Clock()).run_once(q)
    (n,) = q.recent(1)
    assert n.status is NotificationStatus.FAILED and n.attempts == 1
    assert "outside ASCII" in n.last_error and box.mails == []


def test_the_deadman_pings_on_its_schedule_signed(tmp_path):
    receiver = Receiver()
    clock = Clock()
    with http_receiver(receiver):
        s = settings(deadman={"url": receiver.url + "/alive", "every_s": 60},
                     webhook={"secret": "k"})  # fmt: skip
        worker = Delivery(s, tmp_path / "c.sqlite", clock=clock)
        q = NotificationQueue(tmp_path / "c.sqlite")
        for step in (0, 30, 59, 60, 90, 125):
            clock.now = T0 + step
            worker.run_once(q)
    assert [round(s.json()["at"] - T0) for s in receiver.seen] == [0, 60, 125]
    assert all(s.headers["X-Edge-Signature"] == signature("k", s.body) for s in receiver.seen)


def test_a_regions_alert_is_named_as_the_region_and_two_are_counted_as_regions():
    def cut(region: str, sites: int) -> Alert:
        return Alert(key=f"region-down:region:{region}", rule="region-down",
                     kind=AlertKind.REGION_DOWN, severity=Severity.CRITICAL,
                     site_id=f"region:{region}", site_name=region, district="", tier="region",
                     since=T0, fired_at=T0 + 60,
                     reason=message("alerts.region_down", region=region, sites=sites))  # fmt: skip

    one = note("k", ChannelKind.TELEGRAM, "42").model_copy(update={"alerts": (cut("r001", 212),)})
    vi = render_notification(one, tz=datetime.UTC)
    assert vi.subject == "[CẢNH BÁO] máy chủ MQTT vùng mất kết nối với trung tâm: vùng r001"
    assert "- vùng r001: máy chủ MQTT vùng r001 mất kết nối với trung tâm: 212 điểm cầu" in vi.text
    two = one.model_copy(update={"alerts": (cut("r001", 212), cut("r002", 90)),
                                 "language": "en"})  # fmt: skip
    en = render_notification(two, tz=datetime.UTC)
    assert en.subject == "[ALERT] a regional broker cut off from the centre: 2 regions"
    assert "- region r002: regional broker r002 cut off from the centre: 90 sites" in en.text
    assert [a["site_id"] for a in en.body["alerts"]] == ["region:r001", "region:r002"]
