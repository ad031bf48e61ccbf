"""agent.checks holds the verdict rules only: each module imports nothing that reaches a
device, a file, a socket, a process or a thread, so every rule is testable with plain values."""

import ast
from pathlib import Path

import agent.checks

CHECKS = Path(agent.checks.__file__).parent
# What pure logic may lean on: values, maths, models, typed errors and the message
# catalogues.
ALLOWED = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "json",
    "math",
    "statistics",
    "typing",
    "numpy",
    "pydantic",
    "agent.checks",
    "agent.config",
    "agent.errors",
    "agent.i18n",
    "agent.messages",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _allowed(name: str) -> bool:
    return any(name == a or name.startswith(a + ".") for a in ALLOWED)


def test_checks_modules_import_only_pure_things():
    modules = sorted(CHECKS.glob("*.py"))
    assert len(modules) >= 7
    impure = {
        p.name: sorted(n for n in _imports(p) if not _allowed(n))
        for p in modules
        if any(not _allowed(n) for n in _imports(p))
    }
    assert impure == {}


def test_the_display_verdict_and_edid_decoder_live_with_the_other_verdicts():
    assert (CHECKS / "display_connector.py").is_file()
    assert (CHECKS / "edid.py").is_file()
    for path in (CHECKS.parent / "probes").glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert not defined & {"judge_connector", "decode_edid"}, path.name
