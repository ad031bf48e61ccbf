"""Dependencies follow the products: the centre never loads the site's device stack (OpenCV,
numpy, PortAudio, pyserial), so a centre machine can do without it (centre-requirements.txt);
the site daemon never loads the centre's web stack. Read from the real processes with
`python -X importtime`, which names every module a process imports on its stderr."""

from __future__ import annotations

import importlib.metadata as md
import json
import signal
import subprocess
import sys
import tomllib
import urllib.request

import pytest
import setuptools
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures.broker import ROOT, agent_config, dump_toml, wait_until

SITE_ONLY = {"cv2", "numpy", "sounddevice", "serial"}
WEB_ONLY = {"starlette", "uvicorn", "argon2", "prometheus_client"}
SITE_ONLY_DISTRIBUTIONS = {"pyserial", "sounddevice", "opencv-python-headless", "numpy"}


def imported(importtime_output: str) -> set[str]:
    """Every module a `-X importtime` run imported (its stderr also carries the logs)."""
    names = set()
    for line in importtime_output.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name)
    return names


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions those modules come from (the standard library has none)."""
    owners = md.packages_distributions()
    return {canonicalize_name(d) for p in packages(modules) for d in owners.get(p, ())}


def centre_requirements() -> list[Requirement]:
    lines = (ROOT / "centre-requirements.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def with_dependencies(wanted: list[Requirement]) -> set[str]:
    """The distributions a plain `pip install WANTED` brings, as installed here: with the
    extras each names (`psycopg[binary]` brings psycopg-binary)."""
    found: set[tuple[str, str]] = set()
    todo = [(canonicalize_name(r.name), extra) for r in wanted for extra in {"", *r.extras}]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in found:
            continue
        found.add((name, extra))
        for spec in md.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(canonicalize_name(req.name), e) for e in {"", *req.extras}]
    return {name for name, _ in found}


def test_centre_requirements_are_the_site_packages_minus_devices_plus_the_web_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(spec)
        for spec in project["dependencies"] + project["optional-dependencies"]["centre"]
    ]
    names = {canonicalize_name(r.name) for r in wanted}
    assert names >= SITE_ONLY_DISTRIBUTIONS  # the site keeps them
    expected = sorted(str(r) for r in wanted if r.name not in SITE_ONLY_DISTRIBUTIONS)
    assert sorted(str(r) for r in centre_requirements()) == expected


def test_the_wheel_leaves_the_simulator_out():
    # As setuptools reads [tool.setuptools.packages.find] (namespaces on by default).
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = find["packages"]["find"]
    found = setuptools.find_namespace_packages(
        str(ROOT), include=find["include"], exclude=find.get("exclude", ())
    )
    assert {"agent.runtime", "agent.centre.web", "agent.centre.web.static"} <= set(found)
    assert [p for p in found if p == "agent.sim" or p.startswith("agent.sim.")] == []


def python(*args: str) -> list[str]:
    return [sys.executable, "-X", "importtime", "-m", "agent", *args]


@pytest.mark.broker
def test_the_centre_loads_no_device_stack_and_the_site_no_web_stack(broker, tmp_path):
    config = tmp_path / "centre.toml"
    config.write_text(
        f'db_path = "{tmp_path / "c.sqlite"}"\nretained_wait_s = 0.2\n'
        f'command_key = "{tmp_path / "none.key"}"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker.port}\n'
    )
    site_config = tmp_path / "agent.toml"
    site_config.write_text(dump_toml(agent_config(broker, tmp_path / "state")))
    centre_err, site_err = tmp_path / "centre.err", tmp_path / "site.err"
    with centre_err.open("w") as err:
        serve = subprocess.Popen(
            python("centre", "serve", "--config", str(config), "--http", "127.0.0.1:0",
                   "--seconds", "60"),
            stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT,
        )  # fmt: skip
    with site_err.open("w") as err:
        site = subprocess.Popen(
            python("--config", str(site_config), "run"), stdout=subprocess.DEVNULL, stderr=err,
            cwd=ROOT,
        )  # fmt: skip
    try:
        assert serve.stdout is not None
        lines = [serve.stdout.readline() for _ in range(2)]
        assert "dashboard on http://127.0.0.1:" in lines[1], lines
        url = lines[1].split("dashboard on ")[1].strip()
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert b"/static/app.js" in resp.read()

        status_runs: list[subprocess.CompletedProcess[str]] = []

        def centre_sees_the_site() -> bool:
            status_runs.append(subprocess.run(
                python("centre", "status", "--config", str(config), "--json"),
                capture_output=True, text=True, cwd=ROOT, timeout=20, check=False,
            ))  # fmt: skip
            out = status_runs[-1].stdout
            return out.startswith("{") and json.loads(out)["total"] == 1

        # The site's reports crossed the broker and the centre parsed and stored them.
        assert wait_until(centre_sees_the_site, 30, step=0.2), status_runs[-1].stderr
        site.send_signal(signal.SIGTERM)
        assert site.wait(15) == 0
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0
        assert "report(s) stored" in serve.stdout.read()
    finally:
        for proc in (site, serve):
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)

    centre = imported(centre_err.read_text())
    assert "agent.centre.web.server" in centre and "agent.centre.ingest" in centre  # measured
    assert packages(centre) & SITE_ONLY == set()
    status = imported(status_runs[-1].stderr)
    assert "agent.centre.store" in status
    assert packages(status) & SITE_ONLY == set()
    # A centre installed with --no-deps plus centre-requirements.txt has all it imported.
    # (setuptools: its _distutils_hack is loaded by a .pth file in every virtualenv.)
    installable = with_dependencies(centre_requirements())
    installable |= {"edge-agent", "setuptools"}
    assert distributions(centre | status) - installable == set()

    site_modules = imported(site_err.read_text())
    assert "agent.runtime.daemon" in site_modules
    assert packages(site_modules) & WEB_ONLY == set()
    # The self-test ran in its worker process: the daemon itself keeps the device stack out too.
    assert packages(site_modules) & SITE_ONLY == set()
