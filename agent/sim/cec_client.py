"""A stand-in for libCEC's `cec-client` that plays a recording (no CEC adapter exists here).

The agent runs `cec-client -s -d 1 [PORT]` as a real subprocess with the command on stdin;
`install_shim(dir, "hdmi-cec_libcec6", fault)` writes an executable `cec-client` into `dir`
that runs this module instead, so putting `dir` first on PATH makes the real code path talk
to the emulator: real pipes, real exit codes, real timeouts.

    python -m agent.sim.cec_client --recording hdmi-cec_libcec6 [--fault silent] [cec args]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from agent.sim.recording import GARBAGE, Fault, load_recording

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cec-client (emulator)")
    parser.add_argument("--recording", required=True)
    parser.add_argument("--fault", choices=[f.value for f in Fault])
    parser.add_argument("--slow-s", type=float, default=1.0)
    args, _cec_args = parser.parse_known_args(argv)
    rec = load_recording(args.recording)
    fault = Fault(args.fault) if args.fault else None
    if fault is Fault.BAD_CHECKSUM:
        parser.error("cec-client output has no checksum")
    command = sys.stdin.readline().strip()
    exchange = rec.lookup(command.encode("latin-1"))
    reply = exchange.reply_bytes() if exchange else b""
    out = sys.stdout.buffer
    if fault is Fault.SILENT:
        time.sleep(3600)
        return 0
    if fault is Fault.SLOW:
        time.sleep(args.slow_s)
    if fault is Fault.GARBAGE:
        reply = GARBAGE
    elif fault in (Fault.PARTIAL, Fault.DISCONNECT):
        reply = reply[: len(reply) // 2]
    elif fault is Fault.ERROR_REPLY or exchange is None:
        out.write(rec.default_error() or b"")
        out.flush()
        return rec.exit_code_on_error
    out.write(reply)
    out.flush()
    return 1 if fault is Fault.DISCONNECT else 0


def install_shim(
    directory: Path, recording: str, fault: Fault | str | None = None, *, slow_s: float = 1.0
) -> Path:
    """Write an executable `cec-client` into `directory` that plays `recording`; return its
    path. Put `directory` first on PATH for the agent to run it."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "cec-client"
    fault_arg = f" --fault {Fault(fault).value}" if fault else ""
    shim.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{_REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" '
        f"-m agent.sim.cec_client --recording {recording}{fault_arg} --slow-s {slow_s} "
        '"$@"\n'
    )
    shim.chmod(0o755)
    return shim


if __name__ == "__main__":
    sys.exit(main())
