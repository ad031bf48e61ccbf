"""Network path statistics and verdict. Pure: RTT samples in, outcome out."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from agent.checks.model import MetricValue, Outcome, Status, said, worst_status
from agent.config import NetworkSettings
from agent.messages import Message, message


@dataclass(frozen=True)
class PathStats:
    name: str
    sent: int
    rtts_ms: tuple[float, ...]  # one per answered probe, in order
    error: str | Message = ""  # the last connection error, for the reason line

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - len(self.rtts_ms)) / self.sent if self.sent else 100.0

    @property
    def rtt_ms(self) -> float | None:
        return statistics.median(self.rtts_ms) if self.rtts_ms else None

    @property
    def jitter_ms(self) -> float | None:
        """Mean absolute difference of consecutive RTTs (RFC 3550's idea, unsmoothed)."""
        if len(self.rtts_ms) < 2:
            return 0.0 if self.rtts_ms else None
        pairs = zip(self.rtts_ms, self.rtts_ms[1:], strict=False)
        return statistics.fmean(abs(b - a) for a, b in pairs)


def _judge_path(stats: PathStats, cfg: NetworkSettings) -> tuple[Status, Message]:
    rtt, jitter, loss = stats.rtt_ms, stats.jitter_ms, stats.loss_pct
    if rtt is None:
        if stats.error:
            return Status.FAIL, message(
                "network.unreachable_error", path=stats.name, error=stats.error
            )
        return Status.FAIL, message("network.unreachable", path=stats.name)
    summary = message("network.path", path=stats.name, rtt=rtt, jitter=jitter or 0, loss=loss)
    if loss >= cfg.fail_loss_pct or rtt >= cfg.fail_rtt_ms:
        return Status.FAIL, summary
    if loss >= cfg.warn_loss_pct or rtt >= cfg.warn_rtt_ms or (jitter or 0) >= cfg.warn_jitter_ms:
        return Status.WARN, summary
    return Status.OK, summary


def judge_network(paths: Sequence[PathStats], cfg: NetworkSettings) -> Outcome:
    if not paths:
        return said(
            Status.SKIPPED, message("network.no_targets"), message("network.hint.add_targets")
        )
    verdicts = [_judge_path(p, cfg) for p in paths]
    metrics: dict[str, MetricValue] = {}
    for p in paths:
        metrics[f"{p.name}_rtt_ms"] = round(p.rtt_ms, 2) if p.rtt_ms is not None else None
        metrics[f"{p.name}_jitter_ms"] = round(p.jitter_ms, 2) if p.jitter_ms is not None else None
        metrics[f"{p.name}_loss_pct"] = round(p.loss_pct, 1)
    status = worst_status(v[0] for v in verdicts)
    hint = {
        Status.FAIL: message("network.hint.down"),
        Status.WARN: message("network.hint.slow"),
    }.get(status)
    reason = message("network.paths", paths=[v[1] for v in verdicts])
    return said(status, reason, hint, metrics)
