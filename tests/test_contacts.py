"""The contact directory: the real SQLite table, the checks on what enters it, the CSV file
(all or nothing), and `centre contacts ...` run as real processes, in English and
Vietnamese."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.centre.alerts.contacts import ContactError, ContactStore, make_contact, parse_contacts
from agent.centre.alerts.model import Channel, ChannelKind, Contact, QuietHours
from agent.centre.roster import parse_roster
from agent.centre.store import Store
from agent.cli import main
from tests.test_cli_vietnamese import _SUB_COMMAND, assert_vietnamese, vi_env

ROOT = Path(__file__).resolve().parent.parent


def tech(cid: str = "tech-ls", **extra: Any) -> Contact:
    data = {
        "id": cid, "name": "Anh Tuấn", "districts": ["hb-ls"],
        "channels": [{"kind": "email", "address": "tuan@hoabinh.gov.vn"}],
    } | extra  # fmt: skip
    return make_contact(data)


# ---- the table --------------------------------------------------------------------------


def test_put_get_list_remove_across_connections(store_location: Path | str) -> None:
    db = store_location  # an SQLite file, then a PostgreSQL database
    store = ContactStore(db)
    store.put(tech())
    store.put(tech("desk", level=2, districts=[], quiet=QuietHours(start=22, end=6)))
    store.put(tech(name="Chị Lan"))  # the same id: replaced
    store.close()
    again = ContactStore(db)  # another process's view: what was committed
    assert [c.id for c in again.list()] == ["desk", "tech-ls"]
    assert again.get("tech-ls") == tech(name="Chị Lan")
    desk = again.get("desk")
    assert desk is not None and desk.quiet == QuietHours(start=22, end=6) and desk.level == 2
    assert again.get("nobody") is None
    assert again.remove("desk") is True
    assert again.remove("desk") is False
    assert [c.id for c in again.list()] == ["tech-ls"]
    again.close()


def test_a_damaged_row_is_left_out_and_the_rest_still_read(tmp_path: Path) -> None:
    db = tmp_path / "centre.sqlite"
    store = ContactStore(db)
    store.put(tech())
    raw = sqlite3.connect(db)
    raw.execute("INSERT INTO contacts VALUES ('broken', '{\"id\": 3}', 0)")
    raw.commit()
    raw.close()
    assert [c.id for c in store.list()] == ["tech-ls"]
    assert store.get("broken") is None
    store.close()


def test_put_refuses_a_bad_address_even_from_a_model_built_elsewhere(tmp_path: Path) -> None:
    store = ContactStore(tmp_path / "centre.sqlite")
    bad = tech().model_copy(
        update={"channels": (Channel(kind=ChannelKind.WEBHOOK, address="ftp://hb.vn/x"),)}
    )
    with pytest.raises(ContactError, match="not an http or https URL"):
        store.put(bad)
    assert store.list() == []
    store.close()


@pytest.mark.parametrize(
    ("kind", "address", "ok"),
    [
        ("email", "tuan@hoabinh.gov.vn", True),
        ("email", "desk@localhost", True),
        ("email", "tuan at hoabinh.gov.vn", False),
        ("email", "Tuấn <tuan@hoabinh.gov.vn>", False),
        ("email", "tuan@", False),
        ("webhook", "https://hooks.hoabinh.gov.vn/alerts", True),
        ("webhook", "http://127.0.0.1:8080/x", True),
        ("webhook", "ftp://hoabinh.gov.vn/x", False),
        ("webhook", "hooks.hoabinh.gov.vn/alerts", False),
        ("webhook", "https://", False),
        ("telegram", "123456789", True),
        ("telegram", "-1001234567890", True),
        ("telegram", "@hoabinh_desk", True),
        ("telegram", "hoabinh_desk", False),
        ("telegram", "12.5", False),
    ],
)
def test_channel_addresses(kind: str, address: str, ok: bool) -> None:
    data = {"id": "x", "name": "X", "channels": [{"kind": kind, "address": address}]}
    if ok:
        assert make_contact(data).channels[0].address == address
    else:
        with pytest.raises(ContactError) as caught:
            make_contact(data)
        assert caught.value.hint  # the fix is said


@pytest.mark.parametrize(
    ("data", "says", "fix"),
    [
        ({"id": "Tech LS"}, "id: String should match", "lower-case letters without accents"),
        ({"name": ""}, "name: String should have at least 1 character", "with --name"),
        ({"level": 4}, "level: Input should be less than or equal to 3", "2 (province desk)"),
        ({"language": "fr"}, "language: String should match", "vi or en"),
        ({"channels": []}, "has no channel", "--email, --webhook or --telegram"),
        ({"tiers": ["village"]}, "tier not known: village", "province, district, commune"),
    ],
)
def test_model_refusals_name_the_field_and_its_fix(
    data: dict[str, Any], says: str, fix: str
) -> None:
    base = {"id": "x", "name": "X", "channels": [{"kind": "telegram", "address": "1"}]}
    with pytest.raises(ContactError, match=says) as caught:
        make_contact(base | data)
    assert fix in caught.value.hint


# ---- the CSV file -----------------------------------------------------------------------

HEADER = "id,name,level,districts,tiers,min_severity,email,webhook,telegram,lang,quiet,enabled\n"
GOOD = (
    HEADER + "tech-ls,Anh Tuấn,1,hb-ls,,,tuan@hoabinh.gov.vn,,123456,vi,22-6,\n"
    'tech-mc,"Chị Lan, Mai Châu",1,hb-mc;hb-tl,commune,critical,lan@hoabinh.gov.vn,,,en,,yes\n'
    "desk,Trực ban tỉnh,2,,,,,https://hooks.hoabinh.gov.vn/a,@hoabinh_desk,,,no\n"
)


def test_a_good_file() -> None:
    ls, mc, desk = parse_contacts(GOOD.encode("utf-8-sig"))  # a spreadsheet's BOM too
    assert ls.quiet == QuietHours(start=22, end=6)
    assert [c.kind for c in ls.channels] == ["email", "telegram"]
    assert mc.name == "Chị Lan, Mai Châu" and mc.districts == ("hb-mc", "hb-tl")
    assert mc.tiers == ("commune",) and mc.min_severity == "critical" and mc.language == "en"
    assert desk.level == 2 and not desk.enabled and len(desk.channels) == 2


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("tech-x,X,1,,,,not-an-address,,,,,", "line 5: 'not-an-address' is not an e-mail"),
        ("tech-x,X,1,,,,,,,,25-6,", "line 5: quiet hours '25-6'"),
        ("tech-x,X,9,,,,,,1,,,", "line 5: contact 'tech-x' cannot be stored: level:"),
        ("tech-x,X,1,,,,,,,,,", "line 5: contact 'tech-x' has no channel"),
        ("tech-x,X,1,,,,,,1,,,maybe", "line 5: 'maybe' is neither yes nor no"),
        ("tech-ls,X,1,,,,,,1,,,", "line 5: contact 'tech-ls' is already on line 2"),
        ("tech-x,X,1,,,,,,1,,", "line 5 has 11 fields where the first line names 12"),
    ],
)
def test_a_bad_line_is_named(line: str, says: str) -> None:
    with pytest.raises(ContactError) as caught:
        parse_contacts((GOOD + line + "\n").encode())
    assert says in str(caught.value)
    assert caught.value.hint


def test_a_bad_header_says_the_columns() -> None:
    with pytest.raises(ContactError, match="missing name; not known mail") as caught:
        parse_contacts(b"id,mail\nx,y\n")
    assert "id,name,level" in caught.value.hint


# ---- the command line -------------------------------------------------------------------


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = env or {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "agent", "centre", "contacts", *args,
         "--config", str(tmp_path / "c.toml")],
        check=False, capture_output=True, text=True, timeout=60,
        env=env | {"PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture
def centre(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "c.toml").write_text(f'db_path = "{tmp_path / "centre.sqlite"}"\n')
    Store(tmp_path / "centre.sqlite").close()  # as `centre serve` makes it
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    return tmp_path


@pytest.fixture
def run(centre: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    """The command in this process (a real process for each is slow): (code, out, err)."""

    def call(*args: str) -> tuple[int, str, str]:
        code = main(["centre", "contacts", *args, "--config", str(centre / "c.toml")])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def listed(run: Any) -> dict[str, dict[str, Any]]:
    code, out, err = run("list", "--json")
    assert code == 0, err
    return {c["id"]: c for c in json.loads(out)}


def test_add_list_disable_enable_remove(run: Any) -> None:
    tech_args = ["--name", "Anh Tuấn", "--district", "hb-ls", "--email", "tuan@hoabinh.gov.vn"]
    code, out, err = run("add", "tech-ls", *tech_args, "--telegram", "123456", "--quiet", "22-6")
    assert (code, out) == (0, "contact tech-ls added\n"), err
    desk_args = ["--name", "Trực ban", "--level", "2", "--min-severity", "critical"]
    hook = "https://hooks.hoabinh.gov.vn/a"
    assert run("add", "desk", *desk_args, "--webhook", hook, "--lang", "en")[0] == 0
    got = listed(run)
    assert got["tech-ls"]["quiet"] == {"start": 22, "end": 6}
    assert got["tech-ls"]["language"] == "vi"
    assert [c["kind"] for c in got["tech-ls"]["channels"]] == ["email", "telegram"]
    assert (got["desk"]["level"], got["desk"]["language"]) == (2, "en")
    table = run("list")[1]
    assert "tech-ls" in table and "hooks.hoabinh.gov.vn" in table
    assert run("add", "desk", "--name", "Desk", "--telegram", "1") == (
        0, "contact desk replaced\n", "")  # fmt: skip
    assert run("disable", "desk")[0] == 0
    assert listed(run)["desk"]["enabled"] is False
    assert run("enable", "desk")[0] == 0
    assert listed(run)["desk"]["enabled"] is True
    assert run("remove", "desk")[0] == 0
    assert list(listed(run)) == ["tech-ls"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add", "x", "--name", "X", "--webhook", "ftp://x"), "is not an http or https URL"),
        (("add", "x", "--name", "X", "--email", "a b@c"), "is not an e-mail address"),
        (("add", "x", "--name", "X", "--telegram", "abc"), "is not a Telegram chat id"),
        (("add", "x", "--name", "X"), "has no channel"),
        (("add", "x", "--name", "X", "--telegram", "1", "--quiet", "22"), "quiet hours '22'"),
        (("add", "X Y", "--name", "X", "--telegram", "1"), "cannot be stored: id:"),
        (("show", "nobody"), "no contact 'nobody'"),
        (("remove", "nobody"), "no contact 'nobody'"),
        (("enable", "nobody"), "no contact 'nobody'"),
        (("import", "/nowhere.csv"), "/nowhere.csv: cannot read the file"),
    ],
)
def test_bad_input_is_refused_with_its_fix(run: Any, args: tuple[str, ...], says: str) -> None:
    code, out, err = run(*args)
    assert code == 2, (out, err)
    assert says in err and "; " in err  # the fix follows


def test_a_config_naming_no_centre_store_makes_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(f'db_path = "{tmp_path / "elsewhere" / "centre.sqlite"}"\n')
    for args in (("add", "c1", "--name", "A", "--email", "a@b.vn"), ("show", "c1")):
        code = main(["centre", "contacts", *args, "--config", str(wrong)])
        err = capsys.readouterr().err
        assert code == 3, err  # a settings error, as from `centre alerts`
        assert "centre.sqlite: not found; start `edge-agent centre serve` first" in err
    assert not (tmp_path / "elsewhere").exists()


def test_bad_input_in_a_real_process_has_no_traceback(centre: Path) -> None:
    out = cli(centre, "add", "x", "--name", "X", "--webhook", "ftp://x")
    assert out.returncode == 2
    assert out.stderr.startswith("edge-agent: 'ftp://x' is not an http or https URL; give ")
    assert "Traceback" not in out.stderr


def test_import_is_all_or_nothing(centre: Path, run: Any) -> None:
    bad = centre / "bad.csv"
    bad.write_text(GOOD + "tech-x,X,1,,,,,https://,,,,\n", encoding="utf-8")
    code, _, err = run("import", str(bad))
    assert code == 2
    assert "line 5: 'https://' is not an http or https URL" in err
    assert listed(run) == {}  # the three good lines before it were not stored either
    good = centre / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    code, out, err = run("import", str(good))
    assert out == "contacts: 3 added, 0 replaced; 3 in the directory\n", err
    assert sorted(listed(run)) == ["desk", "tech-ls", "tech-mc"]
    assert run("import", str(good))[1] == "contacts: 0 added, 3 replaced; 3 in the directory\n"


ROSTER = (
    "id,name,tier,parent,summoned\n"
    "hb,Tỉnh Hòa Bình,province,,\n"
    "hb-ls,Huyện Lạc Sơn,district,hb,\n"
    "hb-ls-qt,Xã Quyết Thắng,commune,hb-ls,\n"
    "hb-ls-vs,Xã Văn Sơn,commune,hb-ls,\n"
    "hb-mc,Huyện Mai Châu,district,hb,\n"
    "hb-mc-pc,Xã Pà Cò,commune,hb-mc,\n"
)


def test_show_counts_the_sites_covered_from_the_roster(centre: Path, run: Any) -> None:
    store = Store(centre / "centre.sqlite")
    store.import_roster(parse_roster(ROSTER.encode()), 0.0)
    store.close()
    put = ContactStore(centre / "centre.sqlite")
    put.put(tech())
    put.put(tech("tech-ls-communes", tiers=["commune"]))
    put.put(tech("desk", level=2, districts=[]))
    put.close()
    shown = json.loads(run("show", "tech-ls", "--json")[1])
    assert shown["sites"] == {"hb-ls": ["hb-ls", "hb-ls-qt", "hb-ls-vs"]}
    shown = json.loads(run("show", "tech-ls-communes", "--json")[1])
    assert shown["sites"] == {"hb-ls": ["hb-ls-qt", "hb-ls-vs"]}
    _, out, err = run("show", "desk")
    assert "covers 6 sites: told of their critical alerts" in out, err
    assert "hb-mc: hb-mc, hb-mc-pc" in out


def test_vietnamese(centre: Path) -> None:
    names = ("edge-agent centre contacts", "Anh Tuấn", "Telegram", "CSV", "UTF-8")
    out = cli(centre, "add", "tech-ls", "--name", "Anh Tuấn", "--email", "tuan@hoabinh.gov.vn",
              env=vi_env())  # fmt: skip
    assert out.returncode == 0
    assert_vietnamese(out.stdout, names)
    for args in (("list",), ("show", "tech-ls"), ("disable", "tech-ls"), ("remove", "tech-ls")):
        out = cli(centre, *args, env=vi_env())
        assert out.returncode == 0, out.stderr
        assert_vietnamese(out.stdout, names)
    for args in (
        ("add", "x", "--name", "X", "--telegram", "abc"),
        ("add", "x", "--name", "X", "--email", "a b@c", "--quiet", "7-7"),
        ("add", "x", "--name", "X"),
        ("show", "nobody"),
    ):
        out = cli(centre, *args, env=vi_env())
        assert out.returncode == 2
        assert_vietnamese(out.stderr, names)
    bad = centre / "bad.csv"
    bad.write_text(GOOD + "tech-x,X,1,,,,,,,,,\n", encoding="utf-8")
    out = cli(centre, "import", str(bad), "--lang", "vi", env=vi_env(LANG="C.UTF-8"))
    assert out.returncode == 2
    assert_vietnamese(out.stderr, names)


@pytest.mark.parametrize("command", [(), ("add",), ("import",)])
def test_help_in_vietnamese(centre: Path, command: tuple[str, ...]) -> None:
    done = cli(centre, *command, "-h", env=vi_env())
    assert done.returncode == 0, done.stderr
    # The sub-commands' names in the list are what one types, not words of a sentence.
    text = "\n".join(_SUB_COMMAND.sub(" ", line) for line in done.stdout.splitlines())
    names = (
        " ".join(("edge-agent centre contacts", *command)),
        *("{en,vi}", "{warning,critical}", "Telegram", "CSV"),
    )
    assert_vietnamese(text, names)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"id,name,telegram\nx,X,1\ny,\xff,2\n", "line 3 is not UTF-8 text"),
        (b'id,name,telegram\nx,"X,1\n', "line 2 is not valid CSV"),
        (b"id,name,telegram\n\n", "lists no contact"),
        (b"", "missing id, name"),
    ],
)
def test_a_file_that_is_not_a_contacts_csv(data: bytes, says: str) -> None:
    with pytest.raises(ContactError, match=says) as caught:
        parse_contacts(data)
    assert caught.value.hint
