"""The centre's web dashboard without a browser: accounts, sessions, CSRF, login limits, the
fleet JSON and detail against a real SQLite store, the event stream, the `centre user` CLI,
and (with a real mosquitto and a real agent) a command from the API answered live.

The web server is the real one (uvicorn on 127.0.0.1, port 0), spoken to with urllib."""

from __future__ import annotations

import contextlib
import http.cookiejar
import io
import json
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from agent.centre import fleet
from agent.centre.settings import CentreSettings
from agent.centre.store import Incoming, Store
from agent.centre.web import views
from agent.centre.web.accounts import Accounts, LoginLimiter, Role
from agent.centre.web.server import Dashboard, parse_listen
from agent.checks.model import Status
from agent.cli import main
from agent.contract.payloads import PAYLOADS, Envelope
from agent.errors import ConfigError
from agent.messages import catalogue
from agent.sim.fleet_site import SimSite
from tests.commands_kit import KEY_ID, CommandAgent, commands_config
from tests.fixtures.broker import wait_until

PASSWORD = "correct horse battery"  # a throwaway test account


def _payload(message: tuple[str, bytes, bool]) -> Envelope:
    _topic, raw, _ = message
    kind = json.loads(raw)["schema"].split("/")[1]
    return PAYLOADS[kind].model_validate_json(raw)


def feed(store: Store, *messages: tuple[str, bytes, bool]) -> None:
    """Store the messages and record condition changes, as the ingest does after a batch."""
    touched = store.apply_batch(Incoming(_payload(m), False, time.time()) for m in messages)
    store.record_conditions(time.time(), 3.0, 5.0, 30.0, touched)


def settings_for(tmp_path: Path, **extra: Any) -> CentreSettings:
    return CentreSettings.model_validate(
        {"db_path": str(tmp_path / "centre.sqlite"), "report_interval_s": 5.0, **extra}
    )


class Client:
    """A browser stand-in: a cookie jar, JSON in and out, the CSRF token once logged in."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:  # fmt: skip
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        if self.csrf:
            hdrs["X-CSRF-Token"] = self.csrf
        hdrs |= headers or {}
        req = urllib.request.Request(self.base + path, data, hdrs, method=method)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null"), resp.headers
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null"), err.headers

    def login(self, name: str, password: str = PASSWORD) -> tuple[int, Any]:
        status, data, _ = self.call("POST", "/api/login", {"name": name, "password": password})
        if status == 200:
            self.csrf = data["csrf"]
        return status, data


@pytest.fixture
def filled(tmp_path: Path) -> tuple[CentreSettings, dict[str, SimSite]]:
    settings = settings_for(tmp_path)
    sites = {
        "p1": SimSite("p1", tier="province"),
        "c1": SimSite("c1", parent="d1"),
        "c2": SimSite("c2", parent="d1"),
        "c3": SimSite("c3", parent="d1"),
    }
    sites["c2"].statuses["camera"] = Status.FAIL
    store = Store(settings.db_path)
    for s in sites.values():
        feed(store, *s.birth())
    feed(store, sites["c3"].availability("offline", "connection lost (will)"))
    feed(store, sites["c1"].attendance("s-1", 20), sites["c2"].attendance("s-1", 25))
    store.close()
    accounts = Accounts(settings.db_path)
    accounts.add("op", PASSWORD, Role.OPERATOR)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    return settings, sites


@pytest.fixture
def web(filled: tuple[CentreSettings, dict[str, SimSite]]) -> Iterator[Dashboard]:
    dash = Dashboard(filled[0], "127.0.0.1:0", with_broker=False).start()
    yield dash
    dash.stop()


# ---- accounts ----------------------------------------------------------------------------


def test_accounts_hash_passwords_and_keep_only_token_digests(tmp_path):
    accounts = Accounts(tmp_path / "c.sqlite")
    accounts.add("anh", PASSWORD, Role.OPERATOR)
    assert accounts.verify("anh", PASSWORD) is Role.OPERATOR
    assert accounts.verify("anh", PASSWORD + "x") is None
    assert accounts.verify("nobody", PASSWORD) is None
    token, session = accounts.open_session("anh", 60)
    assert accounts.session(token) == session and session.can_command
    dump = "\n".join(sqlite3.connect(tmp_path / "c.sqlite").iterdump())
    assert PASSWORD not in dump and token not in dump and "$argon2id$" in dump
    # a changed password ends the open sessions; removing the user too
    accounts.add("anh", PASSWORD + "2", Role.VIEWER, replace=True)
    assert accounts.session(token) is None
    token, session = accounts.open_session("anh", 60)
    assert not session.can_command
    assert accounts.remove("anh") and accounts.session(token) is None
    assert not accounts.remove("anh")


def test_accounts_refuse_bad_names_short_passwords_and_duplicates(store_location):
    from agent.centre.web.accounts import AccountError  # noqa: PLC0415

    accounts = Accounts(store_location)  # an SQLite file, then a PostgreSQL database
    with pytest.raises(AccountError, match="user name"):
        accounts.add("a b", PASSWORD, Role.VIEWER)
    with pytest.raises(AccountError, match="at least 8"):
        accounts.add("ab", "short", Role.VIEWER)
    accounts.add("ab", PASSWORD, Role.VIEWER)
    with pytest.raises(AccountError, match="exists"):
        accounts.add("ab", PASSWORD, Role.OPERATOR)


def test_sessions_expire(store_location):
    accounts = Accounts(store_location)
    accounts.add("anh", PASSWORD, Role.VIEWER)
    token, _ = accounts.open_session("anh", 0.2)
    assert accounts.session(token) is not None
    time.sleep(0.3)
    assert accounts.session(token) is None
    assert accounts.session("") is None and accounts.session("forged") is None


def test_login_limiter_blocks_a_name_from_an_address_then_the_address_then_forgets():
    limiter = LoginLimiter(per_account=3, per_address=5, window_s=10)
    for i in range(3):
        assert limiter.blocked("a", "x", now=i) is None
        limiter.failed("a", "x", now=i)
    block = limiter.blocked("a", "x", now=3)
    assert block is not None and block.scope == "account" and block.retry_after_s == 7
    assert limiter.blocked("b", "x", now=3) is None  # another name from the same address
    assert limiter.blocked("a", "y", now=3) is None  # the same name from another address
    limiter.failed("b", "x", now=4)
    limiter.failed("c", "x", now=5)
    block = limiter.blocked("d", "x", now=5)
    assert block is not None and block.scope == "address"
    limiter.succeeded("a", "x")  # a success forgets that name's failures, not the address's
    assert limiter.blocked("a", "x", now=5) is not None
    assert limiter.blocked("a", "x", now=16) is None  # the window has passed


# ---- pure views ----------------------------------------------------------------------------


def test_tiles_use_the_fleet_condition_and_diff_only_changes():
    now = time.time()
    rows = [
        fleet.SiteRow("a", availability="online", last_seen=now, verdict="ready"),
        fleet.SiteRow("b", availability="offline", avail_reason="connection lost (will)"),
    ]
    tiles = views.tiles(rows, now, 3.0)
    assert tiles["a"]["c"] == "ready" and tiles["b"]["c"] == "offline"
    assert tiles["b"]["why"].startswith("offline: connection lost")
    assert views.changed(tiles, tiles) == []
    later = views.tiles([rows[0], fleet.SiteRow("b", availability="online", last_seen=now,
                                                verdict="fault")], now, 3.0)  # fmt: skip
    assert [t["id"] for t in views.changed(tiles, later)] == ["b"]
    counters = views.counters(later, views.Attendance("s", 11938, 12100, 500))
    assert counters["counts"]["fault"] == 1 and counters["total"] == 2
    assert counters["attendance"]["rate"] == 0.9866


def test_running_attendance_gives_the_report_totals_without_rereading():
    from agent.centre import report  # noqa: PLC0415
    from agent.centre.store import AttendanceRow  # noqa: PLC0415

    rng = random.Random(7)
    rows = []
    for _ in range(400):
        site = f"s{rng.randrange(12)}"
        rows.append(AttendanceRow(
            site, "ses", 1000.0 + rng.uniform(0, 600),  # samples arrive out of time order
            rng.choice([None, rng.randrange(40)]), rng.choice([None, 30, 35]),
            rng.choice([None, None, rng.randrange(45)]), None,
        ))  # fmt: skip
    meta = {f"s{i}": ("commune", 33) for i in range(12)}
    running = views.Running("ses")
    for rowid, row in enumerate(rows, 1):
        running.add(rowid, row)
    whole = report.session_report("ses", sorted(rows, key=lambda r: r.ts), meta)
    folded = report.session_report("ses", list(running.rows.values()), meta)
    assert views.attendance(folded) == views.attendance(whole)
    assert running.rowid == 400


def test_parse_listen():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", "host:", ":80", "h:99999"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


# ---- the HTTP API --------------------------------------------------------------------------


def test_api_needs_login_and_sets_a_strict_httponly_cookie(web):
    c = Client(web.url)
    assert c.call("GET", "/api/fleet")[0] == 401
    assert c.login("op", "wrong password")[0] == 401
    assert c.login("ghost")[0] == 401
    status, _, headers = c.call("POST", "/api/login", {"name": "op", "password": PASSWORD})
    assert status == 200
    cookie = headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    status, page, headers = c.call("GET", "/api/me")
    assert status == 200 and page["role"] == "operator"
    # no broker here: why commands are off, in the page's language too
    assert page["commands_off"] == "no command connection"
    assert page["commands_off_by_lang"] == {
        "en": "commands are off: no command connection",
        "vi": "không gửi được lệnh: trung tâm chưa kết nối để gửi lệnh",
    }
    # the page itself and its static files are public (no data in them)
    with urllib.request.urlopen(web.url, timeout=5) as resp:
        assert b"app.js" in resp.read()
        assert "default-src 'self'" in resp.headers["content-security-policy"]


def test_the_page_gets_its_texts_from_the_one_catalogue(web):
    """Served before login (the login form needs them), made from agent/locale/messages/:
    the page's (its alerts' too) and the fleet's ids in both languages, nothing else."""
    with urllib.request.urlopen(web.url + "texts.json", timeout=5) as resp:
        texts = json.loads(resp.read())
    areas = ("page.", "page_alerts.", "fleet.")
    mine = {i: e for i, e in catalogue().items() if i.startswith(areas)}
    assert texts.keys() == mine.keys()
    assert texts["page.login.wrong"] == {
        "en": "wrong name or password",
        "vi": "sai tên tài khoản hoặc mật khẩu",
    }
    assert texts["fleet.problem.lost"]["en_one"] == "{count} report lost (seq gap)"
    # every id the page's script and markup name is among them
    static = Path(__file__).resolve().parents[1] / "agent/centre/web/static"
    script = (static / "app.js").read_text()
    named = set(re.findall(r'"((?:page|page_alerts|fleet)\.[a-z_.]+[a-z_])"', script))
    named |= set(re.findall(r'data-i18n[-a-z]*="([^"]+)"', (static / "index.html").read_text()))
    prefixes = {n for n in named if n.endswith(".")}
    assert len(named - prefixes) > 20 and named - prefixes - texts.keys() == set()


def test_fleet_json_matches_centre_status(web, filled, capsys, tmp_path):
    c = Client(web.url)
    c.login("view")
    status, data, _ = c.call("GET", "/api/fleet")
    assert status == 200
    conds = {t["id"]: t["c"] for t in data["tiles"]}
    assert conds == {"p1": "ready", "c1": "ready", "c2": "fault", "c3": "offline"}
    counts = data["counters"]["counts"]
    assert (counts["ready"], counts["fault"], counts["offline"]) == (2, 1, 1)
    att = data["counters"]["attendance"]
    # p1 (ready) and c3 (offline) are summoned 25 each and sent no sample: absent, 0 attended
    assert (att["session"], att["counted"], att["expected"], att["absent"]) == ("s-1", 45, 100, 2)
    # the same answer as `centre status`
    (tmp_path / "centre.toml").write_text(
        f'db_path = "{filled[0].db_path}"\nreport_interval_s = 5.0\n'
    )
    capsys.readouterr()
    main(["centre", "status", "--config", str(tmp_path / "centre.toml"), "--json"])
    status_json = json.loads(capsys.readouterr().out)
    assert {n["site_id"]: n["condition"] for n in status_json["not_ready"]} == {
        "c2": "fault",
        "c3": "offline",
    }


def test_site_detail_has_components_history_attendance(web):
    c = Client(web.url)
    c.login("view")
    status, d, _ = c.call("GET", "/api/site/c2")
    assert status == 200
    camera = next(x for x in d["components"] if x["name"] == "camera")
    assert camera["status"] == "fail" and camera["reason"] == "camera: simulated fail"
    assert camera["hint"] == "check it"
    assert [v["verdict"] for v in d["verdicts"]] == ["fault"]
    assert d["attendance"]["session"] == "s-1" and d["attendance"]["points"][0]["count"] == 25
    assert d["attendance"]["expected"] == 25
    assert c.call("GET", "/api/site/nowhere")[0] == 404


def page_says(error: dict[str, Any]) -> str:
    """The error's id; the page gets it in both languages, the English as `error`."""
    code = str(error.get("code"))
    said = error["error_by_lang"]
    assert said["en"] == error["error"] == catalogue()[code]["en"].format(**error), error
    assert said["vi"] == catalogue()[code]["vi"].format(**error) != said["en"], error
    return code


def test_posts_need_json_and_the_csrf_token_and_viewers_cannot_command(web):
    c = Client(web.url)
    c.login("view")
    token = c.csrf
    c.csrf = ""
    assert c.call("POST", "/api/command", {"action": "identify", "sites": ["c1"]})[0] == 403
    c.csrf = "not-the-token"
    status, data, _ = c.call("POST", "/api/command", {"action": "identify", "sites": ["c1"]})
    assert status == 403 and page_says(data) == "page.error.csrf"
    c.csrf = token
    status, data, _ = c.call("POST", "/api/command", {"action": "identify", "sites": ["c1"]})
    assert status == 403 and "viewer" in data["error"] and page_says(data) == "page.error.viewer"
    status, me, _ = c.call("GET", "/api/me")
    assert me["can_command"] is False
    # a form post (what a cross-site page could send) is refused before any password check
    req = urllib.request.Request(
        web.url + "api/login", b"name=op&password=x", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 415
    # logout ends the session server-side
    assert c.call("POST", "/api/logout", {})[0] == 200
    assert c.call("GET", "/api/fleet")[0] == 401


def test_repeated_failed_logins_are_refused_for_a_while(web):
    c = Client(web.url)
    for _ in range(5):
        status, data = c.login("op", "wrong password")
        assert status == 401 and page_says(data) == "page.login.wrong"
        assert data["error"] == "wrong name or password"
    status, data, headers = c.call("POST", "/api/login", {"name": "op", "password": PASSWORD})
    assert status == 429 and page_says(data) == "page.login.throttled"  # even the right password
    assert data["error_by_lang"]["vi"].endswith("thử lại sau 5 phút"), data
    assert 290 <= int(headers["Retry-After"]) <= 300
    # one person's typos do not lock out the others behind the same address
    assert c.login("view")[0] == 200


def _dashboard(settings: CentreSettings) -> Dashboard:
    return Dashboard(settings, "127.0.0.1:0", with_broker=False).start()


def test_many_failures_from_one_address_hit_the_higher_address_cap(filled, tmp_path):
    settings = settings_for(tmp_path, web_login_failures_per_address=4)
    dash = _dashboard(settings)
    try:
        c = Client(dash.url)
        for name in ("a", "b", "c", "d"):
            assert c.login(name, "wrong password")[0] == 401
        status, data = c.login("op")
        assert status == 429 and page_says(data) == "page.login.throttled_address"
    finally:
        dash.stop()


@pytest.mark.parametrize(("proxies", "forged_counts"), [([], False), (["127.0.0.1"], True)])
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    filled, tmp_path, proxies, forged_counts
):
    settings = settings_for(tmp_path, web_login_failures_per_address=2,
                            web_trusted_proxies=proxies)  # fmt: skip
    dash = _dashboard(settings)
    try:
        c = Client(dash.url)
        for n in (1, 2):  # two failures, each claiming another client address
            forged = {"X-Forwarded-For": f"198.51.100.{n}"}
            status, _, _ = c.call("POST", "/api/login", {"name": f"u{n}", "password": "x"}, forged)
            assert status == 401
        forged = {"X-Forwarded-For": "198.51.100.3"}
        status, data, _ = c.call("POST", "/api/login", {"name": "op", "password": PASSWORD}, forged)
        # untrusted: both failures count against 127.0.0.1, the address really seen
        assert status == (200 if forged_counts else 429), data
    finally:
        dash.stop()


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path):
    from pydantic import ValidationError  # noqa: PLC0415

    assert settings_for(tmp_path, web_trusted_proxies=["10.0.0.0/8", "::1"]).web_trusted_proxies
    with pytest.raises(ValidationError, match=r"proxy\.example"):
        settings_for(tmp_path, web_trusted_proxies=["proxy.example"])


def _sse_events(url: str, cookie_jar: http.cookiejar.CookieJar, out: list[tuple[str, Any]],
                stop: threading.Event) -> None:  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookie_jar))
    with opener.open(url, timeout=30) as resp:
        event = ""
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[6:])))
            if stop.is_set():
                return


def test_event_stream_sends_changed_tiles_in_batches(web, filled):
    settings, sites = filled
    c = Client(web.url)
    c.login("view")
    got: list[tuple[str, Any]] = []
    stop = threading.Event()
    reader = threading.Thread(
        target=_sse_events, args=(web.url + "api/events", c.jar, got, stop), daemon=True
    )
    reader.start()
    assert wait_until(lambda: any(e == "hello" for e, _ in got), 5)
    time.sleep(0.6)  # a tick with nothing new: nothing sent
    got.clear()
    store = Store(settings.db_path)
    sites["c1"].statuses["microphone"] = Status.WARN
    sites["c3"].boot += 1  # back after a restart
    feed(store, sites["c1"].state(), sites["c3"].availability("online"), sites["c3"].state())
    store.close()

    def seen() -> dict[str, str]:
        return {t["id"]: t["c"] for e, d in got if e == "tiles" for t in d["tiles"]}

    assert wait_until(lambda: seen() == {"c1": "degraded", "c3": "ready"}, 5), got
    tiles_events = [d for e, d in got if e == "tiles"]
    assert len(tiles_events) == 1  # one batch, not one event per site
    assert tiles_events[0]["counters"]["counts"]["offline"] == 0
    stop.set()


# ---- the CLI -------------------------------------------------------------------------------


def test_user_cli_reads_the_password_from_stdin_never_argv(tmp_path, capsys, monkeypatch):
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{tmp_path / "c.sqlite"}"\n')
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["centre", "user", "add", "lan", "--role", "viewer", "--config", str(config)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["centre", "user", "add", "minh", "--role", "operator", "--config",
                 str(config)]) == 0  # fmt: skip
    capsys.readouterr()
    main(["centre", "user", "list", "--json", "--config", str(config)])
    users = json.loads(capsys.readouterr().out)
    assert [(u["name"], u["role"]) for u in users] == [("lan", "viewer"), ("minh", "operator")]
    assert Accounts(tmp_path / "c.sqlite").verify("minh", PASSWORD) is Role.OPERATOR
    assert main(["centre", "user", "remove", "lan", "--config", str(config)]) == 0
    assert main(["centre", "user", "remove", "lan", "--config", str(config)]) != 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["centre", "user", "add", "x", "--role", "viewer", "--config", str(config)]) != 0


# ---- a command through a real broker to a real agent -----------------------------------------


def write_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


@pytest.mark.broker
def test_a_command_from_the_api_reaches_the_site_and_its_replies_stream_back(
    broker, tmp_path, filled
):
    from agent.centre.ingest import Ingest  # noqa: PLC0415

    key = write_key(tmp_path / "centre.key")
    settings = settings_for(
        tmp_path,
        broker=broker.broker_settings("centre"),
        command_key=str(tmp_path / "centre.key"),
        key_id=KEY_ID,
        retained_wait_s=0.3,
    )
    ingest = Ingest(settings).start()
    agent = CommandAgent(commands_config(broker, tmp_path / "agent", key, site_id="s1")).start()
    dash = Dashboard(settings, "127.0.0.1:0").start()
    try:
        assert dash.services.commander is not None
        assert dash.services.commander.connected.wait(5)
        c = Client(dash.url)
        c.login("op")
        got: list[tuple[str, Any]] = []
        stop = threading.Event()
        threading.Thread(target=_sse_events, args=(dash.url + "api/events", c.jar, got, stop),
                         daemon=True).start()  # fmt: skip
        assert wait_until(lambda: any(e == "hello" for e, _ in got), 5)
        assert wait_until(lambda: agent.agent.link.status().connected, 10)
        # The page sends only to sites the centre has heard of: wait for the ingest to store it.
        assert wait_until(lambda: c.call("GET", "/api/site/s1")[0] == 200, 10)
        time.sleep(0.2)
        status, data, _ = c.call("POST", "/api/command", {"action": "run-checks",
                                                           "sites": ["s1"]})  # fmt: skip
        assert status == 202, data

        def replies() -> list[str]:
            return [d["status"] for e, d in got if e == "reply" and d["site_id"] == "s1"]

        assert wait_until(lambda: "succeeded" in replies(), 15), got
        assert replies()[0] == "sent" and "accepted" in replies()
        final = next(d for e, d in got if e == "reply" and d["status"] == "succeeded")
        assert final["operator"] == "op" and final["command_id"] == data["command_id"]
        assert final["summary"].startswith("verdict=")
        # kept: the site's detail lists the replies, newest first
        _, detail, _ = c.call("GET", "/api/site/s1")
        assert detail["replies"][0]["status"] == "succeeded"
        # an action the page does not offer is refused before anything is signed
        status, data, _ = c.call("POST", "/api/command", {"action": "reboot-host",
                                                           "sites": ["s1"]})  # fmt: skip
        assert status == 400 and "offers" in data["error"]
        stop.set()
    finally:
        dash.stop()
        agent.stop()
        ingest.stop()


@pytest.mark.broker
def test_serve_with_http_runs_ingest_and_dashboard_in_one_process(broker, tmp_path):
    config = tmp_path / "centre.toml"
    config.write_text(
        f'db_path = "{tmp_path / "c.sqlite"}"\nretained_wait_s = 0.2\n'
        f'command_key = "{tmp_path / "none.key"}"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker.port}\n'
    )
    serve = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--http", "127.0.0.1:0", "--seconds", "2.5"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert serve.stdout is not None
    lines = [serve.stdout.readline() for _ in range(2)]
    assert lines[0].startswith("centre: storing") and "dashboard on http://127.0.0.1:" in lines[1]
    url = lines[1].split("dashboard on ")[1].strip()
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert b"/static/app.js" in resp.read()
        assert resp.headers["x-content-type-options"] == "nosniff"
    assert serve.wait(15) == 0
    assert "stopped" in serve.stdout.read()


def test_without_a_key_the_page_says_commands_are_off(filled, tmp_path):
    settings = settings_for(tmp_path, command_key=str(tmp_path / "missing.key"))
    from agent.centre.web.commands import Commander, CommandRefused  # noqa: PLC0415

    commander = Commander(settings, lambda *_: None)
    assert "not found" in commander.unavailable
    with pytest.raises(CommandRefused, match="commands are off"):
        commander.submit("op", "identify", ["c1"])
    commander.stop()


def test_the_page_refuses_commands_to_site_ids_the_centre_never_heard_of(filled, tmp_path):
    from agent.centre.web.commands import Commander  # noqa: PLC0415

    write_key(tmp_path / "centre.key")
    settings = settings_for(tmp_path, command_key=str(tmp_path / "centre.key"))
    dash = _dashboard(settings)
    # Not started: requests are queued, never sent (no broker needed to see the refusal).
    dash.services.commander = Commander(settings, lambda *_: None)
    try:
        c = Client(dash.url)
        c.login("op")
        body = {"action": "identify", "sites": ["c1", "nowhere", "c1x"]}
        status, data, _ = c.call("POST", "/api/command", body)
        assert status == 400 and data["code"] == "page.send.unknown"
        assert data["error_by_lang"]["vi"].startswith(
            "trung tâm chưa từng liên lạc với nowhere, c1x"
        )
        assert data["ids"] == ["nowhere", "c1x"] and "nowhere, c1x" in data["error"]
        assert dash.services.commander._requests.empty()  # nothing queued
        status, data, _ = c.call("POST", "/api/command", {"action": "identify", "sites": ["c1"]})
        assert status == 202, data
    finally:
        dash.stop()


def test_concurrent_wrong_logins_cannot_outrun_the_limit(web):
    """The password hash takes tens of ms on a thread: 20 wrong passwords sent at once for
    one name must still meet the cap of 5, not all be checked before any has failed."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    def attempt(_: int) -> int:
        return Client(web.url).login("op", "wrong password")[0]

    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(attempt, range(20)))
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 15, statuses
    # The right password from another name still works: only "op" from here is locked.
    assert Client(web.url).login("view")[0] == 200


@contextlib.contextmanager
def operator_page_with_commands(tmp_path: Path) -> Iterator[tuple[Dashboard, Client]]:
    """The dashboard with a commander whose requests are queued but never sent, and an
    operator signed in to it."""
    from agent.centre.web.commands import Commander  # noqa: PLC0415

    write_key(tmp_path / "centre.key")
    settings = settings_for(tmp_path, command_key=str(tmp_path / "centre.key"))
    dash = _dashboard(settings)
    dash.services.commander = Commander(settings, lambda *_: None)
    try:
        c = Client(dash.url)
        c.login("op")
        yield dash, c
    finally:
        dash.stop()


def test_hostile_site_lists_are_refused_before_anything_is_queued(filled, tmp_path):
    with operator_page_with_commands(tmp_path) as (dash, c):
        # A lone surrogate (valid JSON escape, not text SQLite can store), a non-string id.
        for sites in (["\ud800"], ["c1", {}], ["c1", None], ["c\x00"]):
            status, data, _ = c.call("POST", "/api/command", {"action": "identify", "sites": sites})
            assert status == 400, (sites, status, data)
            assert dash.services.commander._requests.empty(), sites  # nothing queued
