"""A firmware profile's verdict in the reader's language: the shipped profiles name their hints
by catalogue id and use labels and value words the catalogue has; a site's own profile's
plain text is shown as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checks.model import Status
from agent.config import PathSettings
from agent.messages import catalogue, render
from agent.profiles.loader import list_profiles, load_profile
from agent.profiles.model import MinVersionRule, NumberRule, ValuesRule
from agent.profiles.session import QueryResult
from agent.profiles.verdict import judge, label_words

PROFILES = PathSettings().profiles_dir
_PROPER = {"SIP", "H.323"}  # protocol names, the same in every language


@pytest.mark.parametrize("name", list_profiles(PROFILES))
def test_shipped_profiles_say_their_hints_and_labels_in_both_languages(name: str) -> None:
    profile = load_profile(PROFILES, name)
    for query in profile.queries.values():
        if query.label not in _PROPER:
            assert label_words(query.label).id != "profile.text", query.label
        for rule in query.rules:
            if isinstance(rule, ValuesRule | MinVersionRule | NumberRule) and rule.hint:
                assert rule.hint in catalogue(), (name, rule.hint)


def test_a_projector_in_standby_reads_in_vietnamese() -> None:
    profile = load_profile(PROFILES, "pjlink")
    result = QueryResult("power", {"power": "standby"})
    outcome = judge(profile, [result], "display pjlink on 127.0.0.1:4352").outcome
    assert outcome.status is Status.FAIL
    assert outcome.reason == "display pjlink on 127.0.0.1:4352: power standby"
    assert outcome.hint.startswith("switch the projector on")
    assert outcome.reason_msg is not None and outcome.hint_msg is not None
    assert render(outcome.reason_msg, "vi") == "display pjlink on 127.0.0.1:4352: nguồn chế độ chờ"
    assert render(outcome.hint_msg, "vi").startswith("bật máy chiếu")


def test_old_firmware_hint_and_a_sites_own_words(tmp_path: Path) -> None:
    profile = load_profile(PROFILES, "cisco-roomos")
    old = QueryResult("version", {"version": "ce8.3.1"})
    outcome = judge(profile, [old], "codec").outcome
    assert outcome.status is Status.WARN
    assert outcome.hint == "update the codec's software (RoomOS/CE) to 9.15 or later"
    assert outcome.hint_msg is not None
    assert render(outcome.hint_msg, "vi") == (
        "cập nhật phần mềm của codec (RoomOS/CE) lên 9.15 hoặc mới hơn"
    )
    # A profile written at the site: its label and hint as its author wrote them.
    own = (
        (PROFILES / "pjlink.toml")
        .read_text()
        .replace('label = "power"', 'label = "nguồn máy chiếu"')
        .replace('hint = "profile.hint.projector_on"', 'hint = "bật máy chiếu lên"')
    )
    (tmp_path / "pjlink.toml").write_text(own)
    mine = load_profile(tmp_path, "pjlink")
    outcome = judge(mine, [QueryResult("power", {"power": "standby"})], "display").outcome
    assert outcome.reason_msg is not None and outcome.hint_msg is not None
    assert render(outcome.reason_msg, "vi") == "display: nguồn máy chiếu chế độ chờ"
    assert render(outcome.hint_msg, "vi") == "bật máy chiếu lên"
