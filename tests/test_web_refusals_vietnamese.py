"""The centre's refusals reach the operator's page, and the technician's terminal, in
Vietnamese: through the real centre app (HTTP, login, CSRF) and the real account store."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.centre.web.accounts import AccountError, Accounts, Role
from agent.centre.web.commands import Commander
from agent.centre.web.server import parse_listen
from agent.errors import ConfigError
from agent.messages import render
from tests.test_dashboard import (
    Client,
    _dashboard,
    filled,
    operator_page_with_commands,
    settings_for,
)

__all__ = ["filled"]  # the fixture, used by name


def _refusal(c: Client, body: dict[str, object]) -> dict[str, object]:
    status, data, _ = c.call("POST", "/api/command", body)
    assert status == 400, data
    return data


def test_a_refused_command_is_said_in_the_pages_language(filled, tmp_path: Path) -> None:
    with operator_page_with_commands(tmp_path) as (dash, c):
        data = _refusal(c, {"action": "format-disk", "sites": ["c1"]})
        assert data["code"] == "web.action_not_offered"
        assert data["error_by_lang"]["vi"].startswith("thao tác 'format-disk': trang chỉ cho")
        data = _refusal(c, {"action": "identify", "sites": []})
        assert data["error_by_lang"] == {
            "en": "no site chosen",
            "vi": "chưa chọn điểm cầu nào",
        }
        assert dash.services.commander._requests.empty()


def test_commands_off_for_a_missing_key_is_said_in_vietnamese(filled, tmp_path: Path) -> None:
    key = tmp_path / "missing.key"
    settings = settings_for(tmp_path, command_key=str(key))
    dash = _dashboard(settings)
    dash.services.commander = Commander(settings, lambda *_: None)
    try:
        c = Client(dash.url)
        c.login("op")
        _, me, _ = c.call("GET", "/api/me")
        off = f"không gửi được lệnh: khóa ký lệnh {key}: không tìm thấy"
        assert me["commands_off_by_lang"]["vi"].startswith(off), me
        assert me["can_command"] is False
        data = _refusal(c, {"action": "identify", "sites": ["c1"]})
        assert data["error_by_lang"]["vi"].startswith(off)
    finally:
        dash.stop()


def test_account_and_listen_errors_carry_vietnamese(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "web.db")
    try:
        with pytest.raises(AccountError) as caught:
            accounts.add("op", "short", Role.OPERATOR)
        assert caught.value.msg is not None
        assert render(caught.value.msg, "vi") == "mật khẩu: tối thiểu 8 ký tự"
        accounts.add("op", "long enough password", Role.OPERATOR)
        with pytest.raises(AccountError) as caught:
            accounts.add("op", "long enough password", Role.OPERATOR)
        assert caught.value.msg is not None
        assert render(caught.value.msg, "vi").startswith("người dùng op đã có")
    finally:
        accounts.close()
    with pytest.raises(ConfigError) as refused:
        parse_listen("nowhere")
    assert refused.value.msg is not None and refused.value.hint_msg is not None
    assert render(refused.value.msg, "vi") == "--http 'nowhere': cần dạng HOST:PORT"
    assert render(refused.value.hint_msg, "vi") == "ví dụ: --http 127.0.0.1:8080"
