"""Wall screens (display tokens) against the real web server and SQLite accounts: issued and
revoked from the CLI, a one-time link traded for a read-only display session that outlives
the operators' 12 h limit, 403 on every command route (read from the app's own routes, so a
route added later is covered), and a revoked screen's open event stream ends within seconds.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from agent.centre.web import live
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.app import create_app
from agent.centre.web.server import Dashboard
from agent.cli import main
from tests.fixtures.broker import wait_until
from tests.test_dashboard import Client, filled, page_says, web  # noqa: F401 - fixtures

PUBLIC_POSTS = {"/api/login", "/api/display"}  # no session yet: nothing to refuse by role
TWELVE_HOURS = 12 * 3600


def command_routes(dash: Dashboard) -> list[tuple[str, str]]:
    """Every (method, path) of the app that changes something: any method but GET/HEAD,
    except logging in and out."""
    app = create_app(dash.services)
    out = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"GET", "HEAD"}):
            if route.path not in PUBLIC_POSTS | {"/api/logout"}:
                out.append((method, route.path.replace("{site_id}", "c1")))
    return out


def issue(config: Path, name: str, capsys: Any, *extra: str) -> str:
    capsys.readouterr()
    assert main(["centre", "display", "issue", name, "--config", str(config), *extra]) == 0
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:8080/wall#token=")
    return url.split("#token=", 1)[1]


def config_for(dash: Dashboard, tmp_path: Path) -> Path:
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{dash.settings.db_path}"\n')
    return config


def wall(dash: Dashboard, invite: str) -> tuple[Client, int, Any]:
    c = Client(dash.url)
    status, data, _ = c.call("POST", "/api/display", {"token": invite})
    if status == 200:
        c.csrf = data["csrf"]
    return c, status, data


def test_a_viewer_and_a_display_get_403_on_every_command_route(web, tmp_path, capsys):  # noqa: F811
    routes = command_routes(web)
    assert ("POST", "/api/command") in routes  # the enumeration sees the command route
    viewer = Client(web.url)
    assert viewer.login("view")[0] == 200
    screen, status, me = wall(web, issue(config_for(web, tmp_path), "wall-1", capsys))
    assert status == 200 and me["role"] == "display" and me["can_command"] is False
    assert me["expires"] is None  # until revoked
    body = {"action": "identify", "sites": ["c1"]}
    for method, path in routes:
        v_status, v_data, _ = viewer.call(method, path, body)
        d_status, d_data, _ = screen.call(method, path, body)
        assert v_status == 403, (method, path, v_data)
        assert d_status == 403 and page_says(d_data) == "page.error.display", (method, path)
    # a display reads everything an operator reads
    for path in ("/api/me", "/api/fleet", "/api/site/c1"):
        assert screen.call("GET", path)[0] == 200, path
    # the page serves /wall (the link the CLI prints) as itself
    with urllib.request.urlopen(web.url + "wall", timeout=5) as resp:
        assert b'id="centre-banner"' in resp.read()


def test_an_invitation_opens_one_screen_once_and_revoke_ends_it(web, tmp_path, capsys):  # noqa: F811
    config = config_for(web, tmp_path)
    invite = issue(config, "wall-1", capsys)
    screen, status, _ = wall(web, invite)
    assert status == 200
    _, again, data = wall(web, invite)  # the link is spent: a copy of it opens nothing
    assert again == 401 and page_says(data) == "page.display.invalid"
    # issuing a name again needs --replace
    assert main(["centre", "display", "issue", "wall-1", "--config", str(config)]) != 0
    capsys.readouterr()
    assert main(["centre", "display", "list", "--json", "--config", str(config)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(d["name"], d["invited"], d["opened"] is not None) for d in listed] == [
        ("wall-1", False, True)
    ]
    # the database keeps digests only
    raw = (web.settings.db_path).read_bytes() + Path(f"{web.settings.db_path}-wal").read_bytes()
    token = next(c.value for c in screen.jar if c.name == "ea_session")
    assert invite.encode() not in raw and token.encode() not in raw
    assert main(["centre", "display", "revoke", "wall-1", "--config", str(config)]) == 0
    assert screen.call("GET", "/api/fleet")[0] == 401
    assert main(["centre", "display", "revoke", "wall-1", "--config", str(config)]) != 0


def test_a_display_session_outlives_the_12_hour_limit(filled):  # noqa: F811
    settings, _ = filled
    accounts = Accounts(settings.db_path)
    try:
        later = time.time() + TWELVE_HOURS + 3600
        token, _session = accounts.open_session("op", settings.web_session_hours * 3600)
        opened = accounts.open_display(accounts.issue_display("wall-1"))
        assert opened is not None
        screen_token, _ = opened
        assert accounts.session(token) is not None
        assert accounts.session(token, now=later) is None  # the operator must log in again
        screen = accounts.session(screen_token, now=later)
        assert screen is not None and screen.role is Role.DISPLAY and not screen.can_command
        assert settings.web_session_hours <= 12
    finally:
        accounts.close()


def test_a_revoked_screen_loses_its_open_event_stream_within_seconds(
    web,  # noqa: F811
    tmp_path,
    capsys,
    monkeypatch,
):
    screen, status, _ = wall(web, issue(config_for(web, tmp_path), "wall-1", capsys))
    assert status == 200
    ended = threading.Event()
    got: list[bytes] = []

    def read() -> None:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(screen.jar))
        with opener.open(web.url + "api/events", timeout=30) as resp:
            for line in resp:
                got.append(line)
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    assert wait_until(lambda: any(b"event: hello" in line for line in got), 5)
    t0 = time.monotonic()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["centre", "display", "revoke", "wall-1", "--config",
                 str(config_for(web, tmp_path))]) == 0  # fmt: skip
    assert ended.wait(live.ALLOWED_EVERY_S + 3), "the stream stayed open after the revoke"
    took = time.monotonic() - t0
    print(f"revoked screen's event stream closed after {took:.2f} s")
    assert took < live.HEARTBEAT_S
    assert screen.call("GET", "/api/events")[0] == 401


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "wall/1"])
def test_bad_display_names_are_refused_with_a_hint(tmp_path, capsys, name):
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{tmp_path / "c.sqlite"}"\n')
    assert main(["centre", "display", "issue", name, "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert "wall screen name" in err and "Traceback" not in err
