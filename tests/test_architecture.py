"""docs/architecture.md's import rules, read from the code itself (every `import` of every
module under agent/, lazy ones inside functions included), so the page cannot drift."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parent.parent / "agent"

# Every module may use these: the settings, the component list, the typed errors, the
# message catalogues, the libraries' validation texts as messages.
BASE = {"config", "components", "errors", "i18n", "messages", "validation"}

# What each part of agent/ may import besides BASE (a package, or one module of it).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "i18n": set(),
    "messages": set(),
    "validation": set(),
    "components": set(),
    # config gathers each package's own settings section
    "config": {"contract.topics", "attendance.settings", "led.patterns", "schedule.model"},
    "contract": {"checks.model", "checks.live"},
    "checks": set(),
    "schedule": set(),
    "system": set(),
    "profiles": {"checks"},
    "led": {"checks.model"},
    "transport": {"contract"},
    "probes": {"checks", "profiles"},
    "selftest": {"checks", "probes", "system"},
    "attendance": {"contract", "checks", "probes", "schedule", "selftest", "system"},
    "commands": {
        "checks.model",
        "contract",
        "led",
        "profiles",
        "schedule",
        "selftest",
        "transport",
    },
    "runtime": {
        "attendance",
        "checks",
        "commands",
        "contract",
        "led",
        "probes",
        "profiles",
        "schedule",
        "selftest",
        "system",
        "transport",
    },
    "centre": {"contract", "schedule.model", "transport"},
    "sim": {"centre.keys", "centre.web.accounts", "checks", "contract", "runtime", "transport"},
    "cli": {"*"},
    "__main__": {"cli"},
}

# Third-party packages that belong to one edge each.
THIRD_PARTY: dict[str, set[str]] = {
    "paho": {"transport.mqtt"},
    "cv2": {"checks", "probes", "attendance", "sim", "cli.attendance"},
    "sounddevice": {"probes.microphone", "probes.inventory", "sim"},
    "serial": {"profiles", "probes", "sim"},
    "starlette": {"centre.web"},
    "uvicorn": {"centre.web"},
    "argon2": {"centre.web"},
    "prometheus_client": {"centre.web"},
    "weasyprint": {"centre.report.document"},
    "psycopg": {"centre.store.postgres"},
}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(AGENT.rglob("*.py")):
        parts = path.relative_to(AGENT).with_suffix("").parts
        yield ".".join(p for p in parts if p != "__init__"), path


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "agent":  # from agent import __version__
                yield from (f"agent.{a.name}" for a in node.names if a.name != "__version__")
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _part(module: str) -> str:
    return module.split(".", 1)[0]


def _covered(target: str, allowed: set[str]) -> bool:
    return "*" in allowed or any(target == a or target.startswith(a + ".") for a in allowed)


def test_every_part_of_agent_has_a_rule() -> None:
    parts = {_part(m) for m, _ in _modules() if m}
    assert parts - {""} <= set(ALLOWED), sorted(parts - set(ALLOWED))


@pytest.mark.parametrize(("module", "path"), [(m, p) for m, p in _modules() if m], ids=str)
def test_imports_follow_the_layers(module: str, path: Path) -> None:
    me = _part(module)
    wrong = []
    for imported in _imports(path):
        top = imported.split(".")[0]
        if top == "agent":
            target = imported.removeprefix("agent").removeprefix(".")
            if not target or _part(target) in BASE | {me}:
                continue
            if not _covered(target, ALLOWED[me]):
                wrong.append(imported)
        elif top in THIRD_PARTY and not _covered(module, THIRD_PARTY[top]):
            wrong.append(imported)
    assert not wrong, f"agent.{module} imports {wrong}: see docs/architecture.md"
