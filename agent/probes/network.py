"""Network path check: TCP connect round-trip samples to each target (the broker, the MCU),
and optionally ICMP through the system `ping` where the site allows it."""

from __future__ import annotations

import errno
import re
import socket
import subprocess
import time

from agent.checks import live
from agent.checks.model import Outcome
from agent.checks.network_metrics import PathStats, judge_network
from agent.config import NetTarget, NetworkSettings, Settings
from agent.messages import Message, message

_PING_RTT = re.compile(r"time[=<]([\d.]+) ms")


def _connect_error(exc: OSError) -> Message:
    """Why a connect failed, in words a reader's language has (strerror is English)."""
    if isinstance(exc, socket.gaierror):
        return message("network.error.bad_name")
    if isinstance(exc, ConnectionRefusedError):
        return message("network.error.refused")
    if isinstance(exc, TimeoutError):
        return message("network.error.timeout")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return message("network.error.no_route")
    return message("network.error.other", error=exc.strerror or type(exc).__name__)


def tcp_samples(target: NetTarget, cfg: NetworkSettings, *, brief: bool = False) -> PathStats:
    """Time `samples` TCP handshakes; a refused or timed-out connect counts as lost. `brief`
    (the live watch, every few seconds): a first connect that times out ends the look, so a
    silent MCU costs one timeout per look, not `samples` of them."""
    rtts: list[float] = []
    error: str | Message = ""
    sent = 0
    for i in range(cfg.samples):
        if i:
            time.sleep(cfg.interval_s)
        start = time.perf_counter()
        sent += 1
        try:
            with socket.create_connection((target.host, target.port), cfg.connect_timeout_s):
                rtts.append((time.perf_counter() - start) * 1000.0)
        except OSError as exc:
            error = _connect_error(exc)
            if brief and not rtts and isinstance(exc, TimeoutError):
                break
    return PathStats(f"{target.name}_tcp", sent, tuple(rtts), error)


def icmp_samples(target: NetTarget, cfg: NetworkSettings) -> PathStats:
    try:
        proc = subprocess.run(
            ["ping", "-n", "-c", str(cfg.samples), "-i", "0.2", "-W", "1", target.host],
            capture_output=True,
            text=True,
            timeout=cfg.samples * 1.5 + 2,
            check=False,
        )
        rtts = tuple(float(m) for m in _PING_RTT.findall(proc.stdout))
        said_last = proc.stderr.strip().splitlines()
        error: str | Message = ""
        if not rtts:
            error = said_last[-1] if said_last else message("network.error.no_reply")
    except (OSError, subprocess.TimeoutExpired) as exc:
        rtts, error = (), message("network.error.no_ping", error=str(exc))
    return PathStats(f"{target.name}_icmp", cfg.samples, rtts, error)


def check_network(settings: Settings) -> Outcome:
    cfg = settings.network
    paths = [tcp_samples(t, cfg) for t in cfg.targets]
    if cfg.icmp:
        paths += [icmp_samples(t, cfg) for t in cfg.targets]
    return judge_network(paths, cfg)


def sample_mcu(cfg: NetworkSettings) -> tuple[live.PathStats, ...]:
    """One look at the path to each `role = "mcu"` target, for the live watch: the same TCP
    samples as the check, the figures only."""
    looks = []
    for target in cfg.targets:
        if target.role != "mcu":
            continue
        stats = tcp_samples(target, cfg, brief=True)
        looks.append(
            live.PathStats(
                target=target.name,
                loss_pct=stats.loss_pct,
                rtt_ms=stats.rtt_ms,
                jitter_ms=stats.jitter_ms,
            )
        )
    return tuple(looks)
