"""No user-facing sentence bypasses the message catalogue.

A scan of agent/'s source for English written straight to a user: a literal given to
print() or to a stream's write(), given to one of our typed errors (their message and hint
reach the technician or the operator), given as a result's or an outcome's reason, hint or
detail, or given to argparse as help, description or metavar.
What the user reads must be an id of agent/locale/messages/ rendered in their language
(`t()`, `message()`), so a literal with words in any of those places is a bypass.

Not scanned, on purpose: log calls (journald, for engineers, English by design) and the
simulator under agent/sim (a developer's tool that ships only with a checkout). A literal
made only of names a Vietnamese sentence keeps as they are (MQTT, LED...), format fields,
punctuation or a command to type is not a sentence.
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

AGENT = Path(__file__).resolve().parent.parent / "agent"
# Developers' tools, not a user's: the simulator, `python -m agent.i18n` (catalogue files),
# `python -m agent.contract.schemas` (writes the JSON schemas), the catalogue loader's errors.
SKIP = {
    AGENT / "sim", AGENT / "i18n.py", AGENT / "contract" / "schemas.py", AGENT / "messages.py",
}  # fmt: skip

# Words a Vietnamese sentence uses as they are: names, units, protocols.
NAMES = {
    "mqtt", "led", "edid", "utc", "json", "toml", "http", "https", "usb", "ip", "id", "pid",
    "ok", "edge", "agent", "fps", "db", "ms", "mb", "hdmi", "dp", "pjlink", "visca", "cec",
    "rtsp", "tcp", "udp", "tls", "ssh", "api", "cpu", "ram", "url", "utf",
}  # fmt: skip
_NOT_WORDS = re.compile(
    r"\{[^{}]*\}|%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdfrx]|%[sdr]|`[^`]*`|--?[\w-]+"
    r"|^\s*(?:edge-agent|export) .*"  # a command line to type, shown as it is
)
_WORD = re.compile(r"[A-Za-z]{2,}")
_ARGPARSE_TEXT = {"help", "description", "metavar", "epilog", "title", "usage"}
_ERROR_SUFFIXES = ("Error", "Rejected", "NotFound", "Timeout", "Reply", "Refused", "Running")


def _words(node: ast.expr) -> list[str]:
    """The words of a sentence in a literal or f-string (not inside its {fields})."""
    parts: list[str] = []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        parts.append(node.value)
    elif isinstance(node, ast.JoinedStr):
        parts += [v.value for v in node.values if isinstance(v, ast.Constant)]
    elif isinstance(node, ast.BinOp):  # "a" + "b", "text %s" % x
        return _words(node.left) + (_words(node.right) if isinstance(node.op, ast.Add) else [])
    text = _NOT_WORDS.sub(" ", " ".join(parts))
    return [w for w in _WORD.findall(text) if w.lower() not in NAMES]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


# Literals in those places that are not for a user to read, each with its reason.
NOT_FOR_USERS = {
    # the value written to the LED's sysfs trigger file
    ("led/driver.py", "timer"),
    # paho cannot carry the message: said in the log and kept aside in the outbox, never shown
    ("transport/mqtt.py", "topic"),
}


def _bypasses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: list[str] = []

    def flag(node: ast.expr, what: str) -> None:
        words = _words(node)
        rel_agent = str(path.relative_to(AGENT)) if AGENT in path.parents else path.name
        if words and (rel_agent, " ".join(words)) in NOT_FOR_USERS:
            return
        if words:
            rel = path.relative_to(AGENT.parent) if AGENT in path.parents else path.name
            found.append(f"{rel}:{node.lineno}: {what}: {' '.join(words[:6])}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in ("print", "write"):
                for arg in node.args:
                    flag(arg, name)
            elif name in ("add_argument", "add_parser", "add_subparsers", "ArgumentParser"):
                for kw in node.keywords:
                    if kw.arg in _ARGPARSE_TEXT:
                        flag(kw.value, f"{name}({kw.arg}=)")
            elif name.endswith(_ERROR_SUFFIXES) and name not in _BUILTIN_ERRORS:
                for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                    flag(arg, name)
            else:  # a result's or an outcome's reason, hint or detail
                for kw in node.keywords:
                    if kw.arg in ("reason", "hint", "detail"):
                        flag(kw.value, f"{name}({kw.arg}=)")
    return found


# Python's own exceptions are for programmers (a bug, a broken invariant), not for users.
_BUILTIN_ERRORS = {n for n in dir(builtins) if n.endswith("Error")}


def _sources() -> list[Path]:
    return [
        p for p in sorted(AGENT.rglob("*.py")) if not any(p == s or s in p.parents for s in SKIP)
    ]


def test_the_scan_sees_a_bypass(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    code = (
        "import sys\n"
        "from agent.errors import ConfigError\n"
        "def f(p, parser):\n"
        "    sys.stderr.write(f'config file {p} not found\\n')\n"
        "    parser.add_argument('--x', help='how many people')\n"
        "    sys.stdout.write(f'{p}: MQTT {p}\\n')\n"
        "    raise ConfigError('broken', hint=f'fix {p}')\n"
        "    return Outcome(ok=False, reason='device busy', hint=H)\n"
    )
    sample.write_text(code)
    found = _bypasses(sample)
    assert sorted(line.split(": ", 1)[1] for line in found) == [
        "ConfigError: broken",
        "ConfigError: fix",
        "Outcome(reason=): device busy",
        "add_argument(help=): how many people",
        "write: config file not found",
    ]


def test_no_user_facing_sentence_bypasses_the_catalogue() -> None:
    found = [line for path in _sources() for line in _bypasses(path)]
    assert found == [], "\n".join(found)
